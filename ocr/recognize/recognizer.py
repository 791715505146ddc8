"""The line recogniser: weights loaded once, batched inference with width bucketing.

    rec = Recognizer.load()                      # model="fast" | "accurate" | "auto" (the cascade)
    results = rec.recognize([line_image, ...])   # numpy / PIL / path / bytes

Lines are sorted by width and run in batches of similar widths, so a batch of
32 lines pays for little padding and costs far less than 32 single calls.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ocr.detect.geometry import is_tall, rotate
from ocr.decode import LineDecoding, beam_search_labels, decoding_of, greedy_decode_batch
from ocr.engines import (CHECKSUMS_NAME, BuildOnce, TorchBehindEngine, choose_engine, cpu_session, current_export,
                         set_torch_threads, usable_cores, verify_checksum)
from ocr.errors import ModelLoadError
from ocr.imageio import load_image
from ocr.recognize.charset import Charset
from ocr.recognize.language import CharLanguageModel, default_language_model
from ocr.recognize.lexicon import Lexicon, corrected_labels, default_lexicon
from ocr.recognize.lineprep import STRIDE_X, PreparedLine, batch_array, prepare_line
from ocr.recognize.lm_choice import LEXICON_MARGIN, LM_BEAM_WIDTH, LM_DEFAULT, LM_WEIGHT
from ocr.recognize.models import SPECS, ModelSpec, check_model
from ocr.recognize.plates import EDGE_MARKS, PROVINCES, plate_text
from ocr.results import LineResult
from ocr.settings import WEIGHTS_DIR

if TYPE_CHECKING:  # torch is imported only where the torch model runs: the ONNX path needs none of it
    from ocr.recognize.cascade import CascadeRecognizer
    from ocr.recognize.network import CRNN
    from ocr.recognize.network_accurate import AccurateCRNN

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = WEIGHTS_DIR / SPECS["fast"].weights
DEFAULT_CHARSET = WEIGHTS_DIR / SPECS["fast"].charset
CHECKSUMS = WEIGHTS_DIR / CHECKSUMS_NAME


#: a line whose every frame gives its best class at least this much is not searched: a runner-up below
#: 0.05 loses to the best by over 3 nats, more than the language model's bonus at its weight moves (on the
#: validation slice a 0.95 gate gave the very readings of searching every line, at 2/3 of the lines searched)
SURE_FRAME = 0.95


def needs_search(probs: np.ndarray) -> bool:
    """Whether some frame leaves another class a chance; on the others the search would return the
    greedy reading, so it is skipped."""
    return bool(probs.shape[0]) and bool((probs.max(axis=1) < SURE_FRAME).any())


#: a plate's unsure first place gets a province only if some frame there gives one at least this probability,
#: and a dropped province only if at least ``MIN_PROVINCE_FRAMES`` frames (half a character) precede the letter.
#: Synthetic plates (blue and green, tilted, skewed, with margins): 93% / 97% of the right guesses (fast /
#: accurate) had evidence >= 1e-3; rendered non-plates of the same grammar (``A-12345``, ``G·45210``) at most 7e-8
MIN_PROVINCE_EVIDENCE = 1e-3
MIN_PROVINCE_FRAMES = 3

#: a tall image read at least this confidently upright keeps that reading (a single tall character: ``1``, ``/``)
TURN_BELOW = 0.9
#: a turned reading must be this much more confident than the upright one to replace it. On the 500 tall crops
#: of ``../shared/train`` (single characters in XFUND / SROIE, words on their side in IC15) these two cost the
#: single characters 0.8-1.9 char points and read the IC15 words at 43.4 instead of 10.1 char % (fast model)
TURN_MARGIN = 0.1


#: a line whose gray levels span less than this holds no ink (flat paper, a 1x1 image)
BLANK_SPREAD = 12


def is_blank(rgb: np.ndarray) -> bool:
    """Whether the 1st..99th percentile of gray levels spans less than ``BLANK_SPREAD``."""
    if rgb.dtype != np.uint8:
        gray = rgb.mean(axis=2) if rgb.ndim == 3 else rgb
        lo, hi = np.percentile(gray, (1, 99))
        return float(hi - lo) < BLANK_SPREAD
    # uint8 (every loaded image): channel sums are integers, so a histogram gives the exact order
    # statistics np.percentile would interpolate between, ~3x faster (0.73 -> 0.2 ms a word crop)
    channels = rgb.shape[2] if rgb.ndim == 3 else 1
    levels = rgb.sum(axis=2, dtype=np.uint16) if rgb.ndim == 3 else rgb
    cumulative = np.cumsum(np.bincount(levels.ravel(), minlength=256 * channels))
    n = int(cumulative[-1])

    def percentile(q: float) -> float:
        position = (n - 1) * q / 100.0
        below = int(np.floor(position))
        lo = int(np.searchsorted(cumulative, below, side="right"))
        hi = int(np.searchsorted(cumulative, min(below + 1, n - 1), side="right"))
        return (lo + (hi - lo) * (position - below)) / channels

    return percentile(99) - percentile(1) < BLANK_SPREAD


def default_files(model: str) -> tuple[Path, Path]:
    """The weights and charset ``Recognizer.load(model=...)`` reads unless told otherwise: for the fast
    model ``DEFAULT_WEIGHTS`` / ``DEFAULT_CHARSET`` (which tools and tests may point elsewhere)."""
    if model == "fast":
        return DEFAULT_WEIGHTS, DEFAULT_CHARSET
    return WEIGHTS_DIR / SPECS[model].weights, WEIGHTS_DIR / SPECS[model].charset


def load_crnn(weights: Path, verify: bool = True) -> "CRNN | AccurateCRNN":
    check_crnn_weights(weights, verify)
    return _read_crnn(weights)


def check_crnn_weights(weights: Path, verify: bool = True) -> str | None:
    """Refuse missing or corrupt weights; return their SHA-256 when verified (hashed once,
    reused by the export check)."""
    if not weights.exists():
        raise ModelLoadError(f"weights file not found: {weights} (see weights/README.md to rebuild it)")
    return verify_checksum(weights) if verify else None


def _read_crnn(weights: Path) -> "CRNN | AccurateCRNN":
    """The network a weights file holds: ``"arch": "crnn_accurate"`` is the accurate CRNN, else the fast one."""
    import torch

    from ocr.recognize.network import CRNN, CRNNConfig
    from ocr.recognize.network_accurate import AccurateCRNN, AccurateCRNNConfig

    try:
        state = torch.load(weights, map_location="cpu", weights_only=False)
        if state.get("arch") == AccurateCRNN.arch:
            model: CRNN | AccurateCRNN = AccurateCRNN(AccurateCRNNConfig(**state["config"]))
        else:
            model = CRNN(CRNNConfig(**state["config"]))
        model.load_state_dict(state["state_dict"])
    except Exception as exc:  # any unreadable/foreign file is the same failure for the user
        raise ModelLoadError(f"weights file {weights} could not be loaded: {exc.__class__.__name__}") from exc
    return model.eval()


class OnnxEngine:
    """onnxruntime session over the exported CRNN (``python -m training.export``): faster on CPU.

    With several cores (``workers``), several batches run at once, each on one core: a second,
    one-thread session (made on first use) is called from ``workers`` threads. The convolutions of a
    48 px line are too small to share two cores well: on the lines of four ``examples/`` pages at
    2 threads the fast model read each page in 0.82-0.85 of the time of one two-thread session
    (118-249 vs 144-300 ms, best of 5). One batch alone still gets every thread (a single long line:
    15.7 ms at 2 threads vs 18.3 at 1). The second session keeps its own memory arena (without one it was
    slower and peaked as high): the pages benchmark at 2 threads peaked 17 MB higher with the fast model,
    89 MB with auto (two models)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = path
        self.session = cpu_session(path, threads)  # no spin-waiting threads: see cpu_session
        classes = self.session.get_outputs()[0].shape[-1]
        self.num_classes: int | None = classes if isinstance(classes, int) else None
        self.workers = threads or usable_cores()
        self._per_core = BuildOnce(build=self._start_per_core)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": batch})[0]

    def _start_per_core(self) -> tuple[Any, ThreadPoolExecutor]:
        return cpu_session(self.path, 1), ThreadPoolExecutor(self.workers, thread_name_prefix="ocr-recognize")

    def map_batches(self, read: Callable[[Callable[[np.ndarray], np.ndarray]], Any], jobs: Sequence[Any],
                    costs: Sequence[float]) -> list[Any]:
        """``read(forward, job)`` for every job, in order; several at once on the one-thread session
        (the costliest first, so the workers finish together) when there are several jobs and cores."""
        if self.workers < 2 or len(jobs) < 2:
            return [read(self, job) for job in jobs]
        session, pool = self._per_core.get()

        def forward(batch: np.ndarray) -> np.ndarray:
            return session.run(None, {"x": batch})[0]

        order = sorted(range(len(jobs)), key=lambda k: -costs[k])
        futures = {k: pool.submit(read, forward, jobs[k]) for k in order}
        return [futures[k].result() for k in range(len(jobs))]


EXPORT_HINT = "run python -m training.export"


def onnx_engine_for(weights: Path, threads: int | None, weights_sha256: str | None = None) -> OnnxEngine | None:
    """The ONNX engine if onnxruntime is installed and ``weights``' export is intact and current."""
    return current_export(weights, lambda path: OnnxEngine(path, threads), EXPORT_HINT,
                          weights_sha256)


class Recognizer(TorchBehindEngine):
    """Reads text lines. Thread-safe: inference holds a lock around the shared model.

    ``engine`` runs recognition: the torch model, or its onnxruntime export
    (same probabilities within 1e-4, faster on CPU). ``model`` is always the
    float torch CRNN: explanations need its gradients. Beside an engine it is
    built on first use (``build``), so reading text never imports torch
    (1.0 s and ~190 MB a process, measured).
    """

    def __init__(self, model: "CRNN | AccurateCRNN | None", charset: Charset, *, threads: int | None = None,
                 batch_size: int = 32, max_width_ratio: float = 1.6, max_batch_columns: int | None = None,
                 engine: OnnxEngine | None = None, build: Callable[[], "CRNN | AccurateCRNN"] | None = None,
                 decoder: str = "greedy", beam_width: int = LM_BEAM_WIDTH, spec: ModelSpec = SPECS["fast"],
                 pad_min_width: int | None = None, lm: bool | None = None, lm_weight: float | None = None,
                 lexicon_margin: float | None = None, word_list: bool = True, turn_tall: bool = True,
                 tail_frames: int | None = None, decode_padding: bool | None = None) -> None:
        """``model``, or ``engine`` with ``build`` (makes the torch model on first use of ``.model``).

        ``spec``: which network this is (its name, padding, batch bound and Grad-CAM layer);
        ``pad_min_width`` / ``max_batch_columns`` / ``tail_frames`` / ``decode_padding`` override the spec's.
        ``lm``: decode with the character language model by default (None: as chosen on the validation slice, ``lm_choice``);
        every ``recognize`` call may say otherwise; with it, the word list corrects Latin words where the frames
        allow (``ocr.recognize.lexicon``) if ``lexicon_margin`` (None: as chosen, ``lm_choice``) is set and ``word_list``
        (False: never, the ablation) is on. ``turn_tall``: read tall images turned where that reads
        them better (``_turned_where_better``)."""
        if model is None and (engine is None or build is None):
            raise ValueError("Recognizer needs a model, or engine= and build=")
        classes = model.config.num_classes if model is not None else engine.num_classes  # type: ignore[union-attr]
        if classes is not None and charset.num_classes != classes:
            raise ModelLoadError(f"charset has {charset.num_classes} classes, model {classes}")
        self.charset = charset
        # the plate provinces this charset can write, with their classes (both shipped charsets: all, tested)
        self._provinces = [p for p in PROVINCES if p in charset]
        self._province_classes = charset.encode("".join(self._provinces))
        self.batch_size = batch_size
        self.max_width_ratio = max_width_ratio
        # activations cost ~65 KB per padded input column (onnxruntime, measured: batch 32 of lines up
        # to 800 px peaked at 1.8 GB RSS, batch 4 at 0.29 GB) while the time per line is flat in the
        # batch size (compute-bound CNN), so batches are bounded in columns, not only in lines
        self.max_batch_columns = max_batch_columns or spec.max_batch_columns
        self.spec = spec
        self.pad_min_width = pad_min_width or spec.pad_min_width
        self.tail_frames = spec.tail_frames if tail_frames is None else tail_frames
        self.decode_padding = spec.decode_padding if decode_padding is None else decode_padding
        self._lock = threading.Lock()
        self.engine = engine
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', not {decoder!r}")
        self.decoder = decoder  # "beam": beam search without the language model (``lm`` adds it)
        self.beam_width = beam_width
        self.lm_default = LM_DEFAULT.get(spec.name, False) if lm is None else bool(lm)
        self.lm_weight = LM_WEIGHT.get(spec.name, 0.2) if lm_weight is None else lm_weight
        chosen = LEXICON_MARGIN.get(spec.name) if lexicon_margin is None else lexicon_margin
        self.lexicon_margin = chosen if word_list else None
        #: the language model and word list decoded with (None: the shipped ones, read once per process); a study
        #: of candidate ones (``training.choose_lm_text``) sets them here
        self.language_model: CharLanguageModel | None = None
        self.lexicon: Lexicon | None = None
        self.threads = threads
        self.turn_tall = turn_tall
        self._model: BuildOnce["CRNN"] = (BuildOnce(value=self._prepare(model)) if model is not None
                                          else BuildOnce(build=lambda: self._prepare(build())))  # type: ignore[misc]

    def prepare(self, rgb: np.ndarray) -> PreparedLine:
        """A line image as this network reads it (its padding and tail frames): inference and explanations alike."""
        min_steps = self.pad_min_width // STRIDE_X if self.decode_padding else 0
        return prepare_line(rgb, pad_to=self.pad_min_width, tail_frames=self.tail_frames, min_steps=min_steps)

    def _prepare(self, model: "CRNN") -> "CRNN":
        set_torch_threads(self.threads)
        return model.eval()

    @property
    def model_name(self) -> str:
        """``"fast"`` or ``"accurate"``: the name every line this recogniser reads carries."""
        return self.spec.name

    @property
    def cam_layer(self) -> str:
        return self.spec.cam_layer

    @property
    def first_stage(self) -> "Recognizer":
        """What reads every line first (itself; a cascade's is its fast recogniser)."""
        return self

    def refine(self, images: Sequence[Any], results: list[LineResult], lm: bool | None = None) -> list[LineResult]:
        """Nothing to re-read: a single model's readings are final (a cascade re-reads the unsure ones)."""
        return results

    def for_model(self, name: str | None) -> "Recognizer":
        """The recogniser of the network named ``name`` (``None``: this one)."""
        if name not in (None, self.model_name):
            raise ValueError(f"this recogniser is the {self.model_name} model, not {name!r}")
        return self

    def torch_models(self) -> list[Any]:
        """The torch networks built so far (explanations hook them; ``[]`` before the first)."""
        return [self.model] if self.model_built else []

    @classmethod
    def load(cls, weights: Path | str | None = None, charset: Path | str | None = None, *, model: str = "fast",
             threads: int | None = None, engine: str = "auto", **kwargs: Any) -> "Recognizer | CascadeRecognizer":
        """``model``: "fast", "accurate" or "auto" (the cascade of both, ``ocr.recognize.cascade``);
        ``engine``: "auto" (onnxruntime when its export is current, else torch), "torch" or "onnx"."""
        if check_model(model) == "auto":
            if weights or charset:
                raise ValueError("model='auto' reads with the shipped weights of both models: give no weights")
            from ocr.recognize.cascade import CascadeRecognizer

            return CascadeRecognizer.load(threads=threads, engine=engine, **kwargs)
        spec = SPECS[model]
        default_weights, default_charset = default_files(model)
        weights = Path(weights) if weights else default_weights
        charset_path = Path(charset) if charset else default_charset
        if not charset_path.exists():
            raise ModelLoadError(f"charset file not found: {charset_path}")
        digest = check_crnn_weights(weights)
        onnx_engine = choose_engine(engine, weights, lambda path: OnnxEngine(path, threads), EXPORT_HINT, digest)
        if onnx_engine is None:
            return cls(_read_crnn(weights), Charset.load(charset_path), threads=threads, spec=spec, **kwargs)
        # the export was made from exactly these (checked) weights, so reading them later cannot fail
        return cls(None, Charset.load(charset_path), threads=threads, engine=onnx_engine,
                   build=lambda: _read_crnn(weights), spec=spec, **kwargs)

    # ------------------------------------------------------------ batching

    def _buckets(self, prepared: list[PreparedLine]) -> list[list[int]]:
        """Indices grouped into batches of similar width (sorted; a batch never spans a
        width ratio above ``max_width_ratio``, exceeds ``batch_size`` lines or, padded, exceeds
        ``max_batch_columns`` -- one line always fits)."""
        order = sorted(range(len(prepared)), key=lambda i: prepared[i].width)
        batches: list[list[int]] = []
        for i in order:
            padded = prepared[i].padded_width  # the widest so far: the batch's padded width
            if (batches and len(batches[-1]) < self.batch_size
                    and (len(batches[-1]) + 1) * padded <= self.max_batch_columns
                    and prepared[i].width <= self.max_width_ratio * prepared[batches[-1][0]].width):
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        if self.engine is not None:
            return self.engine(batch)
        import torch

        model = self.model
        with self._lock, torch.inference_mode():
            return model(torch.from_numpy(batch)).softmax(-1).numpy()

    def probabilities(self, images: Sequence[Any]) -> list[tuple[np.ndarray, PreparedLine]]:
        """Per-line frame probabilities [T_valid, C] and the prepared input, in input order."""
        prepared = [self.prepare(load_image(img)) for img in images]
        out: list[tuple[np.ndarray, PreparedLine] | None] = [None] * len(prepared)
        for idx in self._buckets(prepared):
            probs = self._forward(batch_array([prepared[i] for i in idx]))
            for row, i in enumerate(idx):
                out[i] = (probs[row, : prepared[i].steps], prepared[i])
        return out  # type: ignore[return-value]

    def uses_lm(self, lm: bool | None = None) -> bool:
        """Whether a ``recognize(..., lm=lm)`` call decodes with the language model."""
        return self.lm_default if lm is None else bool(lm)

    def recognize(self, images: Sequence[Any], lm: bool | None = None) -> list[LineResult]:
        """Read each line image. ``lm``: beam search with the character language model
        (None: this recogniser's default, ``uses_lm``)."""
        rgbs = [load_image(img) for img in images]
        if not rgbs:
            return []
        results: list[LineResult | None] = [None] * len(rgbs)
        for i, rgb in enumerate(rgbs):
            if is_blank(rgb):  # nothing drawn: say so instead of letting the model guess at noise
                results[i] = LineResult("", 1.0, [], rgb.shape[1], rgb.shape[0], self.model_name)
        todo = [i for i in range(len(rgbs)) if results[i] is None]
        prepared = {i: self.prepare(rgbs[i]) for i in todo}
        scorer = self._scorer(lm)
        lexicon = None
        if self.uses_lm(lm) and self.lexicon_margin is not None:
            lexicon = self.lexicon if self.lexicon is not None else default_lexicon()
        batches = [[todo[b] for b in bucket] for bucket in self._buckets([prepared[i] for i in todo])]

        def read(forward: Callable[[np.ndarray], np.ndarray], idx: list[int]) -> list[LineDecoding]:
            return self._read_batch(forward, [prepared[i] for i in idx], [rgbs[i].shape[1] for i in idx], scorer,
                                    lexicon)

        if self.engine is None:  # torch: one model behind a lock, nothing to run side by side
            decodings = [read(self._forward, idx) for idx in batches]
        else:
            costs = [len(idx) * max(prepared[i].width for i in idx) for idx in batches]
            decodings = self.engine.map_batches(read, batches, costs)
        for idx, decoded in zip(batches, decodings):
            for line, i in zip(decoded, idx):
                h, w = rgbs[i].shape[:2]
                results[i] = LineResult(line.text, line.confidence, line.chars, w, h, self.model_name)
        return self._turned_where_better(rgbs, results, lm)  # type: ignore[arg-type]

    def _read_batch(self, forward: Callable[[np.ndarray], np.ndarray], lines: list[PreparedLine],
                    widths: list[int], scorer: Any, lexicon: Lexicon | None = None) -> list[LineDecoding]:
        """One batch through the network and the decoder (greedy; the search where a frame is unsure; Latin words
        checked against ``lexicon``; plates in their written form). ``widths``: the lines' image widths, for their
        characters' x ranges."""
        probs = forward(batch_array(lines))
        steps = [min(line.steps, probs.shape[1]) for line in lines]
        decoded = greedy_decode_batch(probs, self.charset, scales=[line.scale for line in lines], widths=widths,
                                      valid_steps=steps)
        for row, line in enumerate(lines):
            frames = probs[row, : steps[row]]
            if scorer is not False and needs_search(frames):
                decoded[row] = self._searched(frames, decoded[row], scorer, line.scale, widths[row])
            if lexicon is not None:
                decoded[row] = self._worded(frames, decoded[row], lexicon, line.scale, widths[row])
            decoded[row] = self._as_plate(frames, decoded[row], line.scale, widths[row])
        return decoded

    def _turned_where_better(self, rgbs: list[np.ndarray], results: list[LineResult],
                             lm: bool | None) -> list[LineResult]:
        """A tall image (``ocr.detect.geometry.is_tall``) read unsurely (below ``TURN_BELOW``) is a vertical
        line or a word on its side: it is read again turned 90 degrees counter-clockwise (and clockwise, if that
        is unsure too), and the more confident turned reading replaces the upright one if it reads something and
        is ``TURN_MARGIN`` more confident
        (an empty reading's confidence is how sure the model is of seeing nothing: a bar turned flat).
        Rules chosen on the 500 tall crops of ``../shared/train`` (model card, "Vertical lines")."""
        unsure = [i for i, (rgb, res) in enumerate(zip(rgbs, results))
                  if self.turn_tall and is_tall(*rgb.shape[:2]) and res.confidence < TURN_BELOW]
        if not unsure:
            return results
        # a turned tall image is wide, so these readings are never turned again. Counter-clockwise first (how
        # the networks were trained on vertical lines); clockwise only where that is unsure too
        ccw = self.recognize([rotate(rgbs[i], 90) for i in unsure], lm=lm)
        again = [k for k, res in enumerate(ccw) if res.confidence < TURN_BELOW]
        cw = dict(zip(again, self.recognize([rotate(rgbs[unsure[k]], 270) for k in again], lm=lm)))
        for k, i in enumerate(unsure):
            angle, best = (270, cw[k]) if k in cw and cw[k].confidence > ccw[k].confidence else (90, ccw[k])
            if best.text and best.confidence >= results[i].confidence + TURN_MARGIN:
                h, w = rgbs[i].shape[:2]
                results[i] = replace(best, width=w, height=h, turned=angle)
        return results

    def _searched(self, probs: np.ndarray, greedy: LineDecoding, scorer: Any, scale: float,
                  width: int) -> LineDecoding:
        """The beam search's reading of one line; the greedy decoding itself when they agree (most lines:
        its spans are already there, no alignment needed)."""
        labels = beam_search_labels(probs, self.charset, beam_width=self.beam_width, scorer=scorer,
                                    scorer_weight=self.lm_weight)
        return self._relaid(probs, greedy, labels, scale, width)

    def _relaid(self, probs: np.ndarray, line: LineDecoding, labels: Sequence[int] | None, scale: float,
                width: int) -> LineDecoding:
        """``labels`` (a decoder's changed reading of ``line``) laid on the frames, so confidences, boxes and
        explanations refer to its characters; ``line`` itself when nothing changed (None or the same classes) or
        the frames cannot hold the new reading."""
        if labels is None or list(labels) == [c.index for c in line.chars]:
            return line
        relaid = decoding_of(probs, labels, self.charset, scale=scale, image_width=width)
        return line if relaid is None else relaid

    def _worded(self, probs: np.ndarray, line: LineDecoding, lexicon: Lexicon, scale: float,
                width: int) -> LineDecoding:
        """The line with its misread Latin words corrected where the frames allow it (``ocr.recognize.lexicon``),
        its characters laid on the frames again; the line itself when nothing changes."""
        labels = corrected_labels(probs, line, self.charset, lexicon, self.lexicon_margin)  # type: ignore[arg-type]
        return self._relaid(probs, line, labels, scale, width)

    def _as_plate(self, probs: np.ndarray, line: LineDecoding, scale: float, width: int) -> LineDecoding:
        """A licence plate's reading in its written form (``ocr.recognize.plates``), its characters laid
        on the frames again so confidences, boxes and explanations refer to them; any other line as read."""
        def province_guess(replaces_first: bool) -> str:
            first = next(c for c in line.chars if not c.char.isspace() and c.char not in EDGE_MARKS)
            frames = probs[first.t_start : first.t_end + 1] if replaces_first else probs[: first.t_start]
            if not self._provinces or len(frames) < (1 if replaces_first else MIN_PROVINCE_FRAMES):
                return ""
            evidence = frames[:, self._province_classes].max(axis=0)  # each province's best frame
            best = int(evidence.argmax())
            return self._provinces[best] if evidence[best] >= MIN_PROVINCE_EVIDENCE else ""

        written = plate_text(line.text, province_guess)
        return self._relaid(probs, line, None if written is None else self.charset.encode(written), scale, width)

    def _scorer(self, lm: bool | None) -> Any:
        """False: greedy decoding; None: beam search alone; else the language model to search with."""
        if self.uses_lm(lm):
            return self.language_model if self.language_model is not None else default_language_model()
        return None if self.decoder == "beam" else False

    def recognize_one(self, image: Any) -> LineResult:
        return self.recognize([image])[0]
