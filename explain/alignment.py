"""CTC alignment views: what every time step voted for, and where each character's frames sit.

A CTC reading is a path through per-frame distributions. Showing the top-k
per frame, with the blank as an explicit label, shows where characters were
uncertain (a runner-up close behind), where the blank won between
characters, and which frames -- hence which image columns -- produced each
character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ocr.recognize.charset import BLANK, Charset
from ocr.decode import CharSpan, LineDecoding, decoding_of, greedy_decode
from ocr.detect.geometry import is_tall, rotate
from ocr.imageio import load_image
from ocr.recognize.lineprep import PreparedLine, batch_tensor
from ocr.recognize.network import STRIDE_X

#: what every explanation runs on, whatever engine read the line (stated in every explanation)
EXPLAINED_WITH = "float torch model"

#: how the blank class is labelled in tables and plots
BLANK_LABEL = "<blank>"


@dataclass
class FrameTopK:
    """Top-k classes of every frame: ``classes``/``probs`` are ``[T, k]``, best first."""

    classes: np.ndarray
    probs: np.ndarray
    labels: list[list[str]]

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "probs": np.round(self.probs, 4).tolist(), "classes": self.classes.tolist()}


@dataclass
class AlignmentMatrix:
    """Probability of each shown class at each frame: ``matrix`` is ``[rows, T]``, row 0 the blank.

    Rows are the classes that reach any frame's top-k, ordered by the frame
    where they peak, so a clean reading shows as a staircase.
    """

    matrix: np.ndarray
    classes: list[int]
    labels: list[str]


@dataclass
class LineAlignment:
    """Everything the alignment view needs for one line."""

    decoding: LineDecoding
    probs: np.ndarray  # [T_valid, C] softmax
    prepared: PreparedLine
    image_size: tuple[int, int]  # (height, width) of the original image
    topk: FrameTopK
    matrix: AlignmentMatrix
    frame_columns: np.ndarray  # [T_valid, 2] image column range of every frame
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: the engine that read the line (``Recognizer.engine_name``); the probabilities are the float torch model's
    reading_engine: str = "torch"
    #: whether the float model's own best path differed from the reading, so the reading's characters
    #: were force-aligned to its frames (``ocr.decode.decoding_of``)
    force_aligned: bool = False


def _label(charset: Charset, cls: int) -> str:
    return BLANK_LABEL if cls == BLANK else charset.char(cls)


def frame_topk(probs: np.ndarray, charset: Charset, k: int = 5) -> FrameTopK:
    """Per-frame top-``k`` (blank included as a label), as ``[T, k]`` matrices."""
    p = np.asarray(probs, dtype=np.float32)
    k = max(1, min(int(k), p.shape[1]))
    if p.shape[0] == 0:
        return FrameTopK(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32), [])
    idx = np.argpartition(-p, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(p, idx, axis=1), axis=1, kind="stable")
    classes = np.take_along_axis(idx, order, axis=1)
    top = np.take_along_axis(p, classes, axis=1)
    labels = [[_label(charset, int(c)) for c in row] for row in classes]
    return FrameTopK(classes.astype(np.int64), top.astype(np.float32), labels)


def alignment_matrix(probs: np.ndarray, charset: Charset, k: int = 5, max_rows: int = 48,
                     min_prob: float = 0.01) -> AlignmentMatrix:
    """Blank plus every class in some frame's top-``k`` with probability >= ``min_prob`` (at most ``max_rows``)."""
    p = np.asarray(probs, dtype=np.float32)
    topk = frame_topk(p, charset, k)
    seen = {int(c) for c, q in zip(topk.classes.ravel(), topk.probs.ravel()) if q >= min_prob and c != BLANK}
    if len(seen) > max_rows - 1:  # keep the strongest
        seen = set(sorted(seen, key=lambda c: -float(p[:, c].max()))[: max_rows - 1])
    ordered = sorted(seen, key=lambda c: (int(p[:, c].argmax()), -float(p[:, c].max())))
    classes = [BLANK] + ordered
    matrix = p[:, classes].T.copy() if p.shape[0] else np.zeros((len(classes), 0), np.float32)
    return AlignmentMatrix(matrix.astype(np.float32), classes, [_label(charset, c) for c in classes])


def frame_columns(steps: int, scale: float, image_width: float | None = None) -> np.ndarray:
    """Image column range ``[x0, x1)`` of each frame: frame ``t`` covers ``STRIDE_X`` prepared pixels."""
    t = np.arange(int(steps), dtype=np.float64)
    cols = np.stack([t * STRIDE_X * scale, (t + 1) * STRIDE_X * scale], axis=1)
    if image_width is not None:
        cols = np.clip(cols, 0.0, float(image_width))
    return cols.astype(np.float32)


def char_rows(chars: Sequence[CharSpan], digits: int = 4) -> list[dict[str, Any]]:
    """Table rows, one per read character: position, class, confidence, frames, columns, runner-ups."""
    return [
        {
            "index": i,
            "char": c.char,
            "class_index": c.index,
            "confidence": round(float(c.confidence), digits),
            "t_start": c.t_start,
            "t_end": c.t_end,
            "x_start": round(float(c.x_start), 1),
            "x_end": round(float(c.x_end), 1),
            "candidates": [[ch, round(float(p), digits)] for ch, p in c.candidates],
        }
        for i, c in enumerate(chars)
    ]


def decoder_choices(chars: Sequence[CharSpan], probs: np.ndarray | None = None,
                    digits: int = 4) -> list[dict[str, Any]]:
    """The characters the reading chose against their own frames: where another character is more probable on
    the frames the reading gives this one (its first runner-up beats it), or, given the frame probabilities
    ``probs`` [T, C], where no character is (blank beats it and every runner-up: the reading *inserted* it, as
    the language model can, e.g. "SOLD" read "SOLID"; ``image_prefers`` is then ""). The language model, the
    word list and the plate rules make such choices; so does a page's read, where the line was read in a batch
    (padded with others) and by the inference engine, while these frames come from the crop alone on the float
    model. The image alone, read this way, would have read the runner-up (or nothing)."""
    out = []
    for i, c in enumerate(chars):
        prefers, p = (c.candidates[0][0], float(c.candidates[0][1])) if c.candidates else ("", 0.0)
        if probs is not None and c.t_end < len(probs):
            blank = float(probs[c.t_start:c.t_end + 1, BLANK].mean())
            if blank > max(p, c.confidence):
                prefers, p = "", blank
        if p > c.confidence:
            out.append({"index": i, "char": c.char, "confidence": round(float(c.confidence), digits),
                        "image_prefers": prefers, "image_probability": round(p, digits)})
    return out


def reference_probabilities(recognizer: Any, prepared: PreparedLine) -> np.ndarray:
    """Frame probabilities ``[T_valid, C]`` of one prepared line by the recogniser's float torch
    model (``recognizer.model``), whatever engine reads text: what every explanation explains."""
    import torch

    model = recognizer.model  # built (on first use) outside no_grad: its parameters must stay normal tensors
    with torch.no_grad():
        probs = model(batch_tensor([prepared])).softmax(-1)[0, : prepared.steps]
    return probs.float().numpy()


def explained_decoding(recognizer: Any, rgb: np.ndarray, probs: np.ndarray, prepared: PreparedLine,
                       reading: Any = None) -> tuple[LineDecoding, bool]:
    """The recogniser's reading of ``rgb`` (its engine and decoder; ``reading``: one already made,
    e.g. the page's) on the float model's ``probs``, and whether its characters had to be
    force-aligned (the float model's best path reads otherwise)."""
    w = rgb.shape[1]
    own = greedy_decode(probs, recognizer.charset, scale=prepared.scale, image_width=w)
    reading = reading if reading is not None else recognizer.recognize_one(rgb)
    emitted = [c.index for c in reading.chars]
    if [c.index for c in own.chars] == emitted:
        return own, False
    aligned = decoding_of(probs, emitted, recognizer.charset, scale=prepared.scale, image_width=w)
    return (own, False) if aligned is None else (aligned, True)


def as_read(recognizer: Any, rgb: np.ndarray, reading: Any = None) -> tuple[np.ndarray, Any]:
    """The line image as the recogniser read it, and ``reading`` (one already made, or None): a tall image
    read turned (``LineResult.turned``: a vertical line) is explained turned, so every view refers to the
    image whose characters were read. Only a tall image can have been turned, so only one is read here
    (its reading is returned); a wide one, a page's turned crop included, is kept without reading it."""
    if not is_tall(*rgb.shape[:2]):
        return rgb, reading
    reading = reading if reading is not None else recognizer.recognize_one(rgb)
    return rotate(rgb, getattr(reading, "turned", 0)), reading


def align_line(recognizer: Any, image: Any, k: int = 5, reading: Any = None) -> LineAlignment:
    """Read the line and build every alignment view of it on the float torch model.

    The text and characters are the ones the recogniser reports (its engine, int8 included, and
    its decoder); the probabilities, confidences and runner-ups are the float model's, with each
    reported character on the frames the float model gives it (forced alignment where its own
    best path reads otherwise), so an explanation always explains the characters that were read.
    ``reading``: the :class:`~ocr.results.LineResult` already read from ``image`` (else it is read here).
    """
    rgb, reading = as_read(recognizer, load_image(image), reading)
    prepared = recognizer.prepare(rgb)
    probs = reference_probabilities(recognizer, prepared)
    h, w = rgb.shape[:2]
    decoding, forced = explained_decoding(recognizer, rgb, probs, prepared, reading)
    return LineAlignment(
        decoding=decoding,
        probs=probs,
        prepared=prepared,
        image_size=(h, w),
        topk=frame_topk(probs, recognizer.charset, k),
        matrix=alignment_matrix(probs, recognizer.charset, k),
        frame_columns=frame_columns(probs.shape[0], prepared.scale, w),
        rows=char_rows(decoding.chars),
        reading_engine=getattr(recognizer, "engine_name", "torch"),
        force_aligned=forced,
    )
