"""Error attribution: where a line was misread and the measurable reasons why.

    report = attribute_errors(recognizer, image, truth="价税合计")
    report.cer, report.summary, report.to_dict()

The prediction is aligned to the ground truth with edit operations
(:func:`align`, a Levenshtein backtrace: ``match`` / ``substitute`` /
``insert`` / ``delete``; "insert" means the model read a character that is not
in the truth, "delete" that it missed one). Every error is then located in the
image and examined:

* **where**: substitutions and insertions take the predicted character's CTC
  span. A deleted character has no span of its own, so the *true* text is
  force-aligned to the frame probabilities (:func:`ocr.decode.forced_align`):
  that says where the model itself would put the missing character. When the
  forced alignment is impossible (too few frames) or the character is outside
  the charset, the gap between the neighbouring characters is used instead.
  ``location`` says which one was used.
* **what the model saw there**: the top classes averaged over those frames,
  the blank's share, and the true character's probability (its class mean
  over the frames; ``None`` when it is not in the charset).
* **why**, from numbers measured on the glyph region (the character's cell:
  from midway to its left neighbour to midway to its right one). Each
  :class:`Diagnosis` carries the value that triggered it and the threshold:

  ``out_of_charset``  the true character is not in the model's vocabulary;
  ``low_contrast``    p95 - p5 of the gray levels in the region is small (for sparse
                      glyphs such as 一: median ink vs median paper level);
  ``blur``            variance of the Laplacian (region scaled to the model's
                      48 px line height, divided by the contrast squared) is low;
  ``background_lines`` a straight horizontal or vertical rule crosses the region
                      (morphological opening with kernels longer than any glyph stroke);
  ``watermark_or_colour`` coloured pixels unlike the paper, or mid-grey pixels
                      away from any stroke (an overlay), cover part of the region;
  ``crowded``         no empty ink column separates the character from a
                      neighbour, or its cell is far narrower than the line's median;
  ``low_confidence_throughout`` the whole line's confidence is low;
  ``close_runner_up`` the true character came second, close behind the winner.

Thresholds are module constants below, each with the reason for its value.
The measurements are also returned when they trigger nothing, so a UI can
show them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any, Sequence

import cv2
import numpy as np

from explain.alignment import as_read
from ocr.recognize.charset import BLANK, Charset
from ocr.decode import forced_align
from ocr.imageio import load_image, to_gray
from ocr.recognize.lineprep import INPUT_HEIGHT, STRIDE_X

__all__ = [
    "EditOp",
    "Diagnosis",
    "CharError",
    "ErrorReport",
    "align",
    "attribute_errors",
    "DIAGNOSES",
]

# ---------------------------------------------------------------- thresholds

#: gray spread (p95-p5; ink vs paper median for sparse glyphs like 一) below which a glyph is "low contrast":
#: the model gets raw intensities (no stretching), and below ~1/4 of the range strokes sink into noise/JPEG
LOW_CONTRAST_SPREAD = 64.0
#: blur score (var of Laplacian at 48 px height / spread^2) below which strokes count as blurred:
#: clean renders score ~0.06-0.12, Gaussian sigma >= ~1.5 px at 48 px height scores < 0.02
BLUR_SHARPNESS = 0.02
#: no blur verdict when the region has less contrast than this: there are no edges to measure
BLUR_MIN_SPREAD = 12.0
#: a horizontal rule must run this many line heights: longer than any glyph stroke (a CJK glyph is < 1 height
#: wide) and than the strokes of neighbours that heavy blur merges into one band (~2 heights)
H_LINE_LENGTH = 3.0
#: ...but never more than this share of the line's width, so short lines (a word or two) can show a rule too
H_LINE_MAX_SHARE = 0.6
#: a run across this share of the width is a rule even in a blurred line (text starts and ends inside padding)
FULL_RULE_SHARE = 0.9
#: a vertical rule must cover this share of the line height: glyphs leave the line's padding blank
V_LINE_COVER = 0.92
#: chroma (max-min of RGB) above the paper's own that counts a pixel as coloured: above JPEG chroma noise,
#: below a 35 % stamp-red overlay on white (~35)
COLOUR_CHROMA = 24.0
#: share of coloured pixels in the glyph region that flags colour: a few stray pixels do not matter
COLOUR_FRACTION = 0.04
#: stroke chroma above which the text itself counts as coloured (stamp red ~150; gray ink under JPEG < 20)
INK_CHROMA = 60.0
#: share of mid-grey pixels away from any stroke that flags an overlay (anti-aliasing hugs the strokes)
MIDGREY_FRACTION = 0.06
#: a cell narrower than this share of the line's median cell is squeezed (half-width digits are ~0.55)
CROWDED_WIDTH_RATIO = 0.45
#: a column whose ink is at most this share of the line height still counts as empty (speckle)
EMPTY_COLUMN_INK = 0.03
#: line confidence (geometric mean of character confidences) below which the whole read is doubtful
LOW_LINE_CONFIDENCE = 0.6
#: the true character within this probability of the winner is a near miss (e.g. 元 vs 无)
CLOSE_RUNNER_UP_MARGIN = 0.3
#: candidates listed per error
TOP_K = 5

DIAGNOSES = ("out_of_charset", "low_contrast", "blur", "background_lines", "watermark_or_colour", "crowded",
             "low_confidence_throughout", "close_runner_up")


# ---------------------------------------------------------------- edit alignment


@dataclass(frozen=True)
class EditOp:
    """One step of the alignment. ``pred_index``/``truth_index`` are positions in the strings
    (``None`` where the op consumes nothing of that string); for a ``delete``, ``pred_index`` is
    ``None`` and ``pred_pos`` is the prediction position the missing character belongs before."""

    op: str  # "match" | "substitute" | "insert" | "delete"
    pred_index: int | None
    truth_index: int | None
    pred_char: str
    true_char: str
    pred_pos: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _distance_table(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    n, m = len(a), len(b)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        ai = a[i - 1]
        row, prev = d[i], d[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ai != b[j - 1]))
    return d


def align(pred: Sequence[str], truth: Sequence[str]) -> list[EditOp]:
    """Minimal edit script turning ``truth`` into ``pred``, in reading order.

    ``insert``: a predicted character with no true counterpart; ``delete``: a true
    character the prediction lacks. On ties the backtrace prefers match/substitute,
    then delete, then insert, so equal-cost scripts come out the same every time.
    """
    d = _distance_table(pred, truth)
    i, j = len(pred), len(truth)
    ops: list[EditOp] = []
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (pred[i - 1] != truth[j - 1]):
            kind = "match" if pred[i - 1] == truth[j - 1] else "substitute"
            ops.append(EditOp(kind, i - 1, j - 1, pred[i - 1], truth[j - 1], i - 1))
            i, j = i - 1, j - 1
        elif j > 0 and d[i, j] == d[i, j - 1] + 1:
            ops.append(EditOp("delete", None, j - 1, "", truth[j - 1], i))
            j -= 1
        else:
            ops.append(EditOp("insert", i - 1, None, pred[i - 1], "", i - 1))
            i -= 1
    ops.reverse()
    return ops


# ---------------------------------------------------------------- report types


@dataclass
class Diagnosis:
    name: str
    value: float | str | None  # the measurement that triggered it
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        v = round(self.value, 4) if isinstance(self.value, float) else self.value
        return {"name": self.name, "value": v, "threshold": self.threshold, "detail": self.detail}


@dataclass
class CharError:
    op: str  # "substitute" | "insert" | "delete"
    pred_index: int | None
    truth_index: int | None
    pred_char: str
    true_char: str
    x_range: tuple[float, float]  # image pixels where the error sits
    location: str  # "predicted_span" | "forced_alignment" | "gap"
    frames: tuple[int, int] | None  # inclusive CTC time steps behind x_range
    region: tuple[float, float]  # the glyph cell the image measurements were taken on
    true_x_range: tuple[float, float] | None  # where the forced alignment puts the true char
    candidates: list[tuple[str, float]]  # top classes over the frames (blank excluded), best first
    true_prob: float | None  # mean prob of the true char's class over the frames
    true_rank: int | None  # 1-based rank of the true char among all classes incl. blank
    pred_prob: float | None  # mean prob of the predicted char's class over the frames
    blank_prob: float | None
    diagnoses: list[Diagnosis] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def diagnosis_names(self) -> list[str]:
        return [d.name for d in self.diagnoses]

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        return {
            "op": self.op,
            "pred_index": self.pred_index,
            "truth_index": self.truth_index,
            "pred_char": self.pred_char,
            "true_char": self.true_char,
            "x_range": [round(self.x_range[0], 1), round(self.x_range[1], 1)],
            "location": self.location,
            "frames": list(self.frames) if self.frames else None,
            "region": [round(self.region[0], 1), round(self.region[1], 1)],
            "true_x_range": [round(v, 1) for v in self.true_x_range] if self.true_x_range else None,
            "candidates": [[c, round(p, 4)] for c, p in self.candidates],
            "true_prob": r(self.true_prob),
            "true_rank": self.true_rank,
            "pred_prob": r(self.pred_prob),
            "blank_prob": r(self.blank_prob),
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "measurements": {k: r(v) for k, v in self.measurements.items()},
        }


@dataclass
class ErrorReport:
    prediction: str
    truth: str
    confidence: float
    cer: float  # edit distance / len(truth) (1.0 for a non-empty reading of an empty truth)
    distance: int
    ops: list[EditOp]  # the full alignment, matches included
    errors: list[CharError]
    summary: dict[str, int]  # errors per diagnosis, "undiagnosed", and per op
    line_measurements: dict[str, float]
    forced_alignment: bool  # whether the truth could be force-aligned
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "prediction": self.prediction,
            "truth": self.truth,
            "confidence": round(self.confidence, 4),
            "cer": round(self.cer, 4),
            "distance": self.distance,
            "ops": [o.to_dict() for o in self.ops],
            "errors": [e.to_dict() for e in self.errors],
            "summary": dict(self.summary),
            "line_measurements": {k: round(float(v), 4) for k, v in self.line_measurements.items()},
            "forced_alignment": self.forced_alignment,
            "width": self.width,
            "height": self.height,
        }


# ---------------------------------------------------------------- image measurements


class _LineImage:
    """The line's gray/colour planes plus an ink mask with ruled lines split off, computed once.

    ``g`` is the gray image with the polarity made dark-ink-on-light (light text on a dark
    background is inverted), so every measure below reads the same way for both.
    """

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.gray = to_gray(rgb)
        self.h, self.w = self.gray.shape
        lo, hi = np.percentile(self.gray, [5, 95])
        self.spread = float(hi - lo)
        self.dark_text = float(np.median(self.gray)) >= (lo + hi) / 2  # paper brighter than the ink midpoint
        self.g = self.gray if self.dark_text else 255 - self.gray
        chroma = rgb.max(axis=2).astype(np.float32) - rgb.min(axis=2).astype(np.float32)
        self.paper_chroma = float(np.median(chroma))
        self.chroma = chroma - self.paper_chroma  # relative to the paper's own tint
        self.ink = self._binarise()
        self.h_lines, self.v_lines, self.full_h_lines = self._rules()
        self.glyph_ink = self.ink & ~(self.h_lines | self.v_lines)
        paper = ~cv2.dilate(self.ink.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        pv = self.g[paper].astype(np.float32) if paper.any() else self.g.ravel().astype(np.float32)
        self.paper_level = float(np.median(pv))
        self.paper_noise = float(1.4826 * np.median(np.abs(pv - self.paper_level)))
        self.ink_level = float(np.median(self.g[self.glyph_ink])) if self.glyph_ink.any() else self.paper_level

    def _binarise(self) -> np.ndarray:
        if self.spread < BLUR_MIN_SPREAD:
            return np.zeros_like(self.gray, dtype=bool)
        thr, _ = cv2.threshold(self.g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        return self.g < thr

    def _rules(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ink8 = self.ink.astype(np.uint8)
        none = np.zeros_like(self.ink)

        def opened(kernel: tuple[int, int]) -> np.ndarray:
            return cv2.morphologyEx(ink8, cv2.MORPH_OPEN, np.ones(kernel, np.uint8)) > 0

        length = int(round(min(H_LINE_LENGTH * self.h, H_LINE_MAX_SHARE * self.w)))
        # too short a run to tell a rule from a stroke: no verdict
        h_lines = opened((1, length)) if length >= 1.2 * self.h else none
        full = int(round(FULL_RULE_SHARE * self.w))
        full_h = opened((1, full)) if full >= 1.2 * self.h else none
        v_lines = opened((max(int(math.ceil(V_LINE_COVER * self.h)), 3), 1))
        return h_lines | full_h, v_lines, full_h

    def cols(self, x0: float, x1: float) -> tuple[int, int]:
        a = int(max(0, min(self.w - 1, math.floor(x0))))
        b = int(max(a + 1, min(self.w, math.ceil(x1))))
        return a, b

    # -- per-region measures

    def contrast(self, a: int, b: int) -> float:
        """Ink vs paper in the region: p95-p5 of the gray levels, or, when strokes cover under
        5 % of it (一, -, .), the gap between the median ink and median paper levels."""
        g = self.g[:, a:b]
        lo, hi = np.percentile(g, [5, 95])
        ink = self.glyph_ink[:, a:b]
        if 0 < ink.mean() < 0.05:
            return float(max(hi - lo, np.median(g[~ink]) - np.median(g[ink])))
        return float(hi - lo)

    def sharpness(self, a: int, b: int, spread: float) -> float:
        crop = self.gray[:, a:b].astype(np.float32)
        fh = INPUT_HEIGHT / max(self.h, 1)
        new_w = max(3, int(round((b - a) * fh)))
        interp = cv2.INTER_AREA if fh < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (new_w, INPUT_HEIGHT), interpolation=interp)
        lap = cv2.Laplacian(crop, cv2.CV_32F)
        return float(lap.var() / max(spread, 1.0) ** 2)

    def rules_in(self, a: int, b: int, blurred: bool) -> dict[str, float]:
        # blur smears neighbouring strokes into long bands: then only a full-width run is a rule
        hl = (self.full_h_lines if blurred else self.h_lines)[:, a:b]
        vl = self.v_lines[:, a:b]
        rows = np.flatnonzero(hl.any(axis=1))
        return {
            "h_line_rows": float(rows.size),
            "h_line_cover": float(hl.any(axis=0).mean()) if rows.size else 0.0,
            "v_line_cols": float(vl.any(axis=0).sum()),
        }

    def colour(self, a: int, b: int) -> dict[str, float]:
        """Colour and overlay evidence in the region, strokes' own anti-aliased rims left out.

        ``overlay_colour``: share of the region's non-stroke pixels whose chroma differs from the
        paper's (a stamp or watermark, whatever the paper's own tint); ``ink_chroma``: the strokes'
        median chroma (coloured text); ``overlay_grey``: share of mid-grey pixels away from strokes.
        """
        reach = max(2, int(round(3 * self.h / INPUT_HEIGHT)))
        near = cv2.dilate(self.ink.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))[:, a:b] > 0
        rel = self.chroma[:, a:b]
        overlay_colour = float(((np.abs(rel) > COLOUR_CHROMA) & ~near).mean())
        ink = self.glyph_ink[:, a:b]
        ink_chroma = float(np.median(rel[ink] + self.paper_chroma)) if ink.any() else 0.0
        out = {"overlay_colour": overlay_colour, "ink_chroma": ink_chroma, "overlay_grey": 0.0}
        span = self.paper_level - self.ink_level
        if span >= BLUR_MIN_SPREAD:
            g = self.g[:, a:b].astype(np.float32)
            upper = min(self.ink_level + 0.85 * span, self.paper_level - 3 * self.paper_noise - 4)
            mid = (g > self.ink_level + 0.25 * span) & (g < upper)
            out["overlay_grey"] = float((mid & ~near).mean())
        return out

    def min_gap_ink(self, x0: float, x1: float) -> float | None:
        """Least ink (share of height) in any column between two x positions; None if no columns."""
        a, b = self.cols(min(x0, x1), max(x0, x1))
        if b - a < 1:
            return None
        cols = self.glyph_ink[:, a:b].sum(axis=0) / max(self.h, 1)
        return float(cols.min())


# ---------------------------------------------------------------- helpers


def _cells(centres: Sequence[float], width: float, height: float) -> list[tuple[float, float]]:
    """Each position's cell: from midway to the left neighbour to midway to the right one."""
    n = len(centres)
    out = []
    for k, c in enumerate(centres):
        left = (centres[k - 1] + c) / 2 if k > 0 else None
        right = (c + centres[k + 1]) / 2 if k + 1 < n else None
        half_default = 0.45 * height
        if left is None and right is None:
            left, right = c - half_default, c + half_default
        elif left is None:
            left = c - min(right - c, half_default) if right > c else c - half_default
        elif right is None:
            right = c + min(c - left, half_default) if c > left else c + half_default
        out.append((max(0.0, left), min(float(width), right)))
    return out


class _Frames:
    """Frame <-> pixel mapping and frame statistics of one line's probabilities."""

    def __init__(self, probs: np.ndarray, scale: float, width: int) -> None:
        self.probs = probs
        self.scale = scale
        self.width = width
        self.n = probs.shape[0]

    def x_range(self, t0: int, t1: int) -> tuple[float, float]:
        x0 = t0 * STRIDE_X * self.scale
        x1 = (t1 + 1) * STRIDE_X * self.scale
        return float(min(max(x0, 0.0), self.width)), float(min(max(x1, 0.0), self.width))

    def frames_of(self, x0: float, x1: float) -> tuple[int, int] | None:
        if self.n == 0:
            return None
        px = STRIDE_X * self.scale
        t0 = int(math.floor(x0 / px))
        t1 = int(math.ceil(x1 / px)) - 1
        t0 = min(max(t0, 0), self.n - 1)
        t1 = min(max(t1, t0), self.n - 1)
        return t0, t1

    def mean(self, frames: tuple[int, int]) -> np.ndarray:
        return self.probs[frames[0] : frames[1] + 1].mean(axis=0, dtype=np.float64)


def _top(avg: np.ndarray, charset: Charset, k: int) -> list[tuple[str, float]]:
    q = avg.copy()
    q[BLANK] = -1.0
    k = min(k, q.shape[0] - 1)
    idx = np.argpartition(-q, k - 1)[:k]
    idx = idx[np.argsort(-q[idx], kind="stable")]
    return [(charset.char(int(i)), float(min(1.0, max(0.0, q[i])))) for i in idx]


def _class(charset: Charset, char: str) -> int | None:
    enc = charset.encode(char) if char else []
    return enc[0] if len(enc) == 1 and len(char) == 1 else None


# ---------------------------------------------------------------- the entry point


def attribute_errors(recognizer: Any, image: Any, truth: str, *, result: Any = None,
                     top_k: int = TOP_K) -> ErrorReport:
    """Read ``image`` (anything :func:`ocr.imageio.load_image` takes), compare with ``truth``
    and explain every error. ``result``: a :class:`~ocr.recognize.recognizer.LineResult` already
    computed for this image, to skip a second decode."""
    rgb, result = as_read(recognizer, load_image(image), result)
    charset: Charset = recognizer.charset
    if result is None:
        result = recognizer.recognize_one(rgb)
    probs, prepared = recognizer.probabilities([rgb])[0]
    h, w = rgb.shape[:2]
    frames = _Frames(np.asarray(probs), prepared.scale, w)
    line = _LineImage(rgb)
    pred = result.text
    spans = list(result.chars)
    if len(spans) != len(pred):  # a decoder that does not return spans: no per-char positions
        spans = []

    ops = align(pred, truth)
    distance = sum(op.op != "match" for op in ops)
    cer = distance / len(truth) if truth else float(len(pred) > 0)

    # where the model would put each true character (None for characters outside the charset)
    label_pos = [k for k, c in enumerate(truth) if c in charset]
    fa = forced_align(frames.probs, charset.encode(truth)) if label_pos else []
    truth_frames: list[tuple[int, int] | None] = [None] * len(truth)
    for k, span in zip(label_pos, fa):
        truth_frames[k] = span
    aligned = bool(fa) or not label_pos

    pred_centres = [(s.x_start + s.x_end) / 2 for s in spans]
    pred_cells = _cells(pred_centres, w, h)
    truth_centres_x = _truth_centres(truth, truth_frames, frames, ops, spans, w)
    truth_cells = _cells(truth_centres_x, w, h)
    median_pred = median([b - a for a, b in pred_cells]) if len(pred_cells) >= 2 else None
    median_truth = median([b - a for a, b in truth_cells]) if len(truth_cells) >= 2 else None

    errors: list[CharError] = []
    for op in ops:
        if op.op == "match":
            continue
        true_x = None
        if op.truth_index is not None and truth_frames[op.truth_index] is not None:
            true_x = frames.x_range(*truth_frames[op.truth_index])
        if op.op in ("substitute", "insert") and spans:
            span = spans[op.pred_index]
            x_range, location = (span.x_start, span.x_end), "predicted_span"
            fr: tuple[int, int] | None = (span.t_start, span.t_end)
            region = pred_cells[op.pred_index]
            centres, k, med = pred_centres, op.pred_index, median_pred
        elif op.op == "delete" and truth_frames[op.truth_index] is not None:
            fr = truth_frames[op.truth_index]
            x_range, location = frames.x_range(*fr), "forced_alignment"
            region = truth_cells[op.truth_index]
            centres, k, med = truth_centres_x, op.truth_index, median_truth
        else:  # a deletion with no alignment: the gap between the neighbouring predicted spans
            x_range = _gap(op, spans, w)
            location = "gap"
            fr = frames.frames_of(*x_range) if x_range[1] > x_range[0] else None
            if op.truth_index is not None and op.truth_index < len(truth_cells):
                region = truth_cells[op.truth_index]
                centres, k, med = truth_centres_x, op.truth_index, median_truth
            else:
                region = x_range
                centres, k, med = [], -1, None
        if region[1] - region[0] < 1:
            region = (max(0.0, x_range[0] - 0.45 * h), min(float(w), x_range[1] + 0.45 * h))
        errors.append(_examine(op, charset, frames, fr, x_range, location, region, true_x, line,
                               centres, k, med, result.confidence, top_k))

    summary = _summary(errors)

    line_measurements = {"contrast": line.spread, "line_confidence": float(result.confidence)}
    if line.spread >= BLUR_MIN_SPREAD:
        line_measurements["sharpness"] = line.sharpness(0, w, line.spread)
    return ErrorReport(pred, truth, float(result.confidence), float(cer), int(distance), ops, errors, summary,
                       line_measurements, aligned, w, h)


def _summary(errors: list[CharError]) -> dict[str, int]:
    """Errors per diagnosis, ``undiagnosed``, and per edit operation."""
    summary: dict[str, int] = {name: 0 for name in DIAGNOSES}
    summary["undiagnosed"] = 0
    for kind in ("substitute", "insert", "delete"):
        summary[kind] = 0
    for e in errors:
        summary[e.op] += 1
        for d in e.diagnoses:
            summary[d.name] += 1
        if not e.diagnoses:
            summary["undiagnosed"] += 1
    return summary


def _gap(op: EditOp, spans: Sequence[Any], width: int) -> tuple[float, float]:
    """Pixels between the predicted characters around a deletion (whole line if none were read)."""
    if not spans:
        return 0.0, float(width)
    pos = op.pred_pos
    left = spans[pos - 1].x_end if pos > 0 else 0.0
    right = spans[pos].x_start if pos < len(spans) else float(width)
    if right < left:
        left, right = right, left
    return float(left), float(right)


def _truth_centres(truth: str, truth_frames: list[tuple[int, int] | None], frames: _Frames,
                   ops: list[EditOp], spans: Sequence[Any], width: int) -> list[float]:
    """An x centre for every true character: forced alignment, else its matched/substituted
    predicted span, else interpolated between known neighbours (or the gap)."""
    known: list[float | None] = [None] * len(truth)
    for k, fr in enumerate(truth_frames):
        if fr is not None:
            x0, x1 = frames.x_range(*fr)
            known[k] = (x0 + x1) / 2
    for op in ops:
        if op.truth_index is not None and known[op.truth_index] is None:
            if op.pred_index is not None and spans:
                s = spans[op.pred_index]
                known[op.truth_index] = (s.x_start + s.x_end) / 2
            else:
                a, b = _gap(op, spans, width)
                known[op.truth_index] = (a + b) / 2
    return [0.0 if v is None else float(v) for v in known]


def _examine(op: EditOp, charset: Charset, frames: _Frames, fr: tuple[int, int] | None,
             x_range: tuple[float, float], location: str, region: tuple[float, float],
             true_x: tuple[float, float] | None, line: _LineImage, centres: Sequence[float], k: int,
             median_cell: float | None, line_conf: float, top_k: int) -> CharError:
    """One error: the model's probabilities over its frames, and every diagnosis that applies, in order."""
    true_cls = _class(charset, op.true_char) if op.true_char else None
    pred_cls = _class(charset, op.pred_char) if op.pred_char else None
    candidates: list[tuple[str, float]] = []
    true_prob = pred_prob = blank_prob = None
    true_rank = None
    avg = None
    if fr is not None and frames.n:
        avg = frames.mean(fr)
        candidates = _top(avg, charset, top_k)
        blank_prob = float(avg[BLANK])
        if true_cls is not None:
            true_prob = float(avg[true_cls])
            true_rank = int((avg > avg[true_cls]).sum()) + 1
        if pred_cls is not None:
            pred_prob = float(avg[pred_cls])

    diagnoses: list[Diagnosis] = []
    m: dict[str, float] = {}
    a, b = line.cols(*region)
    if op.true_char and op.true_char not in charset:
        diagnoses.append(Diagnosis("out_of_charset", f"U+{ord(op.true_char[0]):04X}", None,
                                   f"{op.true_char!r} is not among the model's {len(charset)} characters"))
    if not (op.true_char or op.pred_char).isspace():
        blurred = _look(line, a, b, diagnoses, m)
        if 0 <= k < len(centres):
            _crowding(line, a, b, region, centres, k, median_cell, blurred, diagnoses, m)
    m["line_confidence"] = float(line_conf)
    if line_conf < LOW_LINE_CONFIDENCE:
        diagnoses.append(Diagnosis("low_confidence_throughout", float(line_conf), LOW_LINE_CONFIDENCE,
                                   f"the whole line was read with confidence {line_conf:.2f}"))
    if avg is not None and true_cls is not None:
        _runner_up(op, charset, avg, true_cls, true_rank, diagnoses, m)
    return CharError(op.op, op.pred_index, op.truth_index, op.pred_char, op.true_char,
                     (float(x_range[0]), float(x_range[1])), location, fr,
                     (float(region[0]), float(region[1])), true_x, candidates, true_prob, true_rank,
                     pred_prob, blank_prob, diagnoses, m)


def _look(line: _LineImage, a: int, b: int, diagnoses: list[Diagnosis], m: dict[str, float]) -> bool:
    """Contrast, blur, ruled lines and colour in the glyph's columns ``a:b``; whether it is blurred."""
    spread = line.contrast(a, b)
    m["contrast"] = spread
    if spread < LOW_CONTRAST_SPREAD:
        diagnoses.append(Diagnosis("low_contrast", spread, LOW_CONTRAST_SPREAD,
                                   f"ink/paper gray spread {spread:.0f} of 255 in the glyph region"))
    blurred = False
    if spread >= BLUR_MIN_SPREAD:
        sharp = line.sharpness(a, b, spread)
        m["sharpness"] = sharp
        if sharp < BLUR_SHARPNESS:
            blurred = True
            diagnoses.append(Diagnosis("blur", sharp, BLUR_SHARPNESS,
                                       f"Laplacian variance / contrast^2 = {sharp:.4f} at 48 px line height"))
    rules = line.rules_in(a, b, blurred)
    m.update(rules)
    if rules["h_line_rows"] > 0 or rules["v_line_cols"] > 0:
        parts = []
        if rules["h_line_rows"]:
            parts.append(f"{rules['h_line_rows']:.0f} px rows of horizontal rule across "
                         f"{100 * rules['h_line_cover']:.0f}% of the region")
        if rules["v_line_cols"]:
            parts.append(f"{rules['v_line_cols']:.0f} px columns of vertical rule")
        diagnoses.append(Diagnosis("background_lines", rules["h_line_rows"] + rules["v_line_cols"], 0.0,
                                   "; ".join(parts)))
    _colour(line.colour(a, b), blurred, diagnoses, m)
    return blurred


def _colour(col: dict[str, float], blurred: bool, diagnoses: list[Diagnosis], m: dict[str, float]) -> None:
    """A stamp, a watermark or coloured strokes over the glyph."""
    m.update(col)
    if col["overlay_colour"] > COLOUR_FRACTION:
        diagnoses.append(Diagnosis("watermark_or_colour", col["overlay_colour"], COLOUR_FRACTION,
                                   f"{100 * col['overlay_colour']:.0f}% of the region is coloured unlike "
                                   "the paper, away from the strokes (stamp or watermark)"))
    elif col["ink_chroma"] > INK_CHROMA:
        diagnoses.append(Diagnosis("watermark_or_colour", col["ink_chroma"], INK_CHROMA,
                                   f"the strokes are coloured (chroma {col['ink_chroma']:.0f} of 255)"))
    elif (col["overlay_grey"] > MIDGREY_FRACTION and not blurred
          and "background_lines" not in [d.name for d in diagnoses]):
        diagnoses.append(Diagnosis("watermark_or_colour", col["overlay_grey"], MIDGREY_FRACTION,
                                   f"{100 * col['overlay_grey']:.0f}% of the region is mid-grey away from "
                                   "any stroke (an overlay)"))


def _crowding(line: _LineImage, a: int, b: int, region: tuple[float, float], centres: Sequence[float], k: int,
              median_cell: float | None, blurred: bool, diagnoses: list[Diagnosis], m: dict[str, float]) -> None:
    """Crowding: no empty column towards a neighbour, or a squeezed cell."""
    gaps = []
    if k > 0:
        gaps.append(line.min_gap_ink(centres[k - 1], centres[k]))
    if k + 1 < len(centres):
        gaps.append(line.min_gap_ink(centres[k], centres[k + 1]))
    gaps = [g for g in gaps if g is not None]
    width_ratio = (region[1] - region[0]) / median_cell if median_cell else None
    if gaps:
        m["neighbour_gap_ink"] = max(gaps)
    if width_ratio is not None:
        m["cell_width_ratio"] = width_ratio
    has_ink = line.glyph_ink[:, a:b].any()
    # blur bleeds ink across the gaps between glyphs: then only the width test speaks
    if gaps and has_ink and not blurred and max(gaps) > EMPTY_COLUMN_INK:
        diagnoses.append(Diagnosis("crowded", max(gaps), EMPTY_COLUMN_INK,
                                   "no empty column between this character and a neighbour "
                                   f"(least ink in a column {100 * max(gaps):.0f}% of the height)"))
    elif width_ratio is not None and width_ratio < CROWDED_WIDTH_RATIO:
        diagnoses.append(Diagnosis("crowded", width_ratio, CROWDED_WIDTH_RATIO,
                                   f"cell {width_ratio:.2f}x the line's median character width"))


def _runner_up(op: EditOp, charset: Charset, avg: np.ndarray, true_cls: int, true_rank: int | None,
               diagnoses: list[Diagnosis], m: dict[str, float]) -> None:
    """The true character came a close second over these frames."""
    order = np.argsort(-avg, kind="stable")
    winner = int(order[0])
    # 0 when the true char is best on average over the frames, yet was not decoded there
    runner_gap = float(avg[winner] - avg[true_cls])
    m["runner_up_gap"] = runner_gap
    if true_rank == 2 and runner_gap <= CLOSE_RUNNER_UP_MARGIN:
        win = charset.char(winner) or "<blank>"
        diagnoses.append(Diagnosis("close_runner_up", runner_gap, CLOSE_RUNNER_UP_MARGIN,
                                   f"{op.true_char!r} came second "
                                   f"({avg[true_cls]:.2f}) behind {win!r} ({avg[winner]:.2f})"))
