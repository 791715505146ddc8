"""How faithful are the explanations? Pointing game and deletion / insertion curves.

    OMP_NUM_THREADS=1 python -m benchmarks.faithfulness [--json] [--lines N] [--real-chars N]
        [--methods layercam gradcam layercam-logit saliency ig occlusion] [--out BENCHMARKS.md]

Every map explains the API's per-character target,
:class:`explain.targets.CharScore` (the character's log-probability over its
own CTC frames), except the diagnostic ``layercam-logit`` (LayerCAM of the
character's summed logit, :class:`CharLogit`).

**Pointing game** (localisation). Lines of a fixed list of phrases written
for this benchmark (:data:`PHRASES`: invoice fields, product names, receipt
words, Chinese and English; not drawn from :class:`training.synth.TextSampler`)
are rendered clean, black on white, at sizes 28-40 in the font kept out of
training (:func:`training.synth.held_out_fonts`), so every character's ink box is
exact. Lines the recogniser misreads are skipped (a dropped or added space
is not a misreading: spaces are not scored); on the others the i-th
non-space decoded character is the i-th non-space character of the text.
For every such character and method, the maximum of the character's map
(at the prepared 48 px input, mapped back to image pixels; a plateau is
resolved by :func:`argmax_point`) is a *hit* when it lies inside the
character's ink box grown by :data:`TOLERANCE_PX` pixels, a *column hit*
when its x alone lies within the box's columns. A map with nothing positive
is a miss. A reference row, ``ctc frames``, points at the middle of the
character's own CTC frames at mid-height without any map: a method that
does not beat it localises nothing the alignment did not already give.

**Deletion / insertion** (faithfulness, after RISE). On real lines of
``../shared/eval`` (their labels are never read: the recognised characters
are explained, at most ``--per-line`` of a line, spread along it), each
character's score is the mean probability of its class over its own CTC
frames (:class:`CharProb`). Pixels of the prepared input (48 x width,
shared across the colour channels; the batch padding is left alone) are
ranked by the method's attribution; the top k% (k = 0, 5, ..., 100) are
replaced by the baseline (0 in the normalised input, mid-grey) for the
*deletion* curve, or, starting from an all-baseline input, only the top k%
are restored for the *insertion* curve. The area under each curve (x in
[0,1]) is compared with the same procedure on random pixel orders (mean of
:data:`RANDOM_SEEDS` seeds) on the same characters: a faithful ranking
deletes faster (lower deletion AUC) and inserts faster (higher insertion
AUC) than random. All perturbed inputs of one character and method go
through the model in one batch (scored by the recogniser's engine,
onnxruntime when its export is current); the random orders do not depend on
the character, so one batch per seed and line scores all its characters.

``torchcam.metrics.DeletionInsertionMetric`` computes the same curves, but
ranks by a CAM it computes itself (so it cannot score saliency, integrated
gradients, occlusion or a random order), over every column of the tensor
(batch padding included), one target per sample. The curves here are our
own code; the tests check them against torchcam's metric on a LayerCAM map
(same AUCs within 1e-4).

Attributions are ranked raw (not the [0,1] display maps, whose percentile
clipping would create ties): LayerCAM / Grad-CAM maps as the explainer
returns them, |gradient| (max over channels) for saliency, |IG summed over
channels| for integrated gradients, the signed score drop for occlusion.
Integrated gradients and occlusion are slow: by default they run on a
subset (the first ``--heavy-lines`` rendered lines and the first
``--heavy-chars`` real characters); the tables give every method's count,
and each method is compared with random on its own characters.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from explain.gradcam import GradCAMExplainer
from explain.hooks import eval_guard
from explain.occlusion import occlusion_drops
from explain.saliency import input_gradients, integrated_gradients
from explain.targets import CharLogit, CharScore
from benchmarks.report import write_marked_section
from ocr.engines import sha256_of
from ocr.decode import CharSpan, greedy_decode
from ocr.recognize.lineprep import PreparedLine, batch_tensor
from ocr.recognize.network import INPUT_HEIGHT, STRIDE_X
from ocr.settings import EVAL_ROOT

log = logging.getLogger("benchmarks.faithfulness")

DEFAULT_EVAL_ROOT = EVAL_ROOT
EVAL_SETS = ("zh_web_mtwi_lines", "en_receipts_sroie_lines")
MARK_START = "<!-- explain:faithfulness:start -->"
MARK_END = "<!-- explain:faithfulness:end -->"

#: every method this benchmark knows, cheapest first; ``layercam`` (log-probability target) is kept
#: for comparison with the default ``layercam-logit`` (see :class:`explain.targets.CharLogit`)
METHODS = ("layercam", "gradcam", "layercam-logit", "saliency", "ig", "occlusion")
#: the per-character map the UI shows by default: LayerCAM of the character's logit (explain.registry)
DEFAULT_CAM = "layercam-logit"
#: methods run only on a subset by default (their cost)
HEAVY_METHODS = ("ig", "occlusion")
#: deletion / insertion points: the share of pixels perturbed
FRACTIONS = np.round(np.arange(0, 101, 5) / 100.0, 2)
#: seeds of the random pixel orders (their curves are averaged)
RANDOM_SEEDS = (0, 1, 2)
#: a pointing-game maximum this many image pixels outside the character's box still counts as a hit
TOLERANCE_PX = 3
#: font sizes of the rendered lines (cycled)
SIZES = tuple(range(28, 41))
#: the baseline a perturbed pixel takes: 0 in the normalised input = mid-grey
BASELINE = 0.0

#: phrases written for this benchmark (not from the training text sampler): invoice and receipt fields,
#: product names, English receipt words; mixed scripts
PHRASES = (
    "收款单位：华联超市",
    "订单编号 A20240518",
    "应付总额 ¥86.50",
    "商品名称：有机绿茶",
    "客户签名",
    "保质期至2025年3月",
    "联系电话 021-6688",
    "合计人民币叁佰元整",
    "配送地址：西湖区文三路",
    "会员积分 1280 分",
    "不锈钢保温杯 500ml",
    "发货日期 2024.06.01",
    "本店特价 买一送一",
    "无线蓝牙耳机",
    "退换货须持小票",
    "现金找零 ￥4.20",
    "营业执照注册号",
    "新鲜草莓 2盒",
    "Thank you, come again",
    "Grand Total 23.90",
    "Change Due 1.10",
    "Qty 2 @ 4.50",
    "Iced Latte Large",
    "Cashier: Mei Ling",
    "Invoice Date 12/05/2023",
    "Paid by Debit Card",
    "Service Tax 6%",
    "Item Count: 7",
    "Table 12 Pax 4",
    "Order Ref #A7731",
)

Forward = Callable[[torch.Tensor], np.ndarray]  # [B,3,48,W] -> softmax probabilities [B,T,C]


# ---------------------------------------------------------------- scoring


def torch_forward(model: nn.Module) -> Forward:
    """Softmax probabilities from the torch model, no gradient."""

    def forward(batch: torch.Tensor) -> np.ndarray:
        with eval_guard(model), torch.inference_mode():
            return model(batch).softmax(-1).numpy()

    return forward


def recognizer_forward(recognizer: Any) -> Forward:
    """The recogniser's own engine (onnxruntime when its export is current: same function, faster)."""
    engine = getattr(recognizer, "engine", None)
    if engine is None:
        return torch_forward(recognizer.model)
    return lambda batch: np.asarray(engine(batch.numpy()))  # the engine takes the numpy batch


@dataclass(frozen=True)
class CharProb:
    """A character's mean probability of its class over its own frames ``t_start..t_end``.

    The quantity :class:`explain.targets.CharScore` takes the log of; on
    probabilities ``[B, T, C]`` it gives ``[B]``, in [0, 1].
    """

    index: int
    t_start: int
    t_end: int

    @classmethod
    def from_span(cls, span: CharSpan) -> "CharProb":
        return cls(int(span.index), int(span.t_start), int(span.t_end))

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs)
        return p[:, self.t_start : self.t_end + 1, self.index].mean(axis=1)


def curve_auc(values: Sequence[float] | np.ndarray, fractions: Sequence[float] | np.ndarray = FRACTIONS) -> Any:
    """Trapezoid area under ``values`` (last axis) with the x-axis ``fractions`` rescaled to [0, 1]."""
    x = np.asarray(fractions, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or y.shape[-1] != x.size:
        raise ValueError("need at least two points, as many values as fractions")
    span = x[-1] - x[0]
    if not span > 0 or np.any(np.diff(x) < 0):
        raise ValueError("fractions must be increasing")
    x = (x - x[0]) / span
    area = ((y[..., 1:] + y[..., :-1]) * 0.5 * np.diff(x)).sum(axis=-1)
    return float(area) if np.ndim(area) == 0 else area


def pixel_order(attribution: np.ndarray) -> np.ndarray:
    """Flat indices of a ``[48, width]`` map, most attributed first (ties in raster order; NaN last)."""
    a = np.asarray(attribution, dtype=np.float64).ravel()
    a = np.where(np.isnan(a), -np.inf, a)
    return np.argsort(-a, kind="stable")


def random_order(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def _counts(n: int, fractions: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(fractions, dtype=np.float64) * n).astype(np.int64)


def line_array(prepared: PreparedLine) -> np.ndarray:
    """The model input of one line, ``[3, 48, padded width]`` float32 (padding = 0 = the baseline)."""
    return batch_tensor([prepared])[0].numpy()


def perturbation_curves(forward: Forward, x: np.ndarray, width: int, order: np.ndarray,
                        targets: Sequence[CharProb], fractions: np.ndarray = FRACTIONS,
                        baseline: float = BASELINE,
                        ends: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves ``[len(targets), len(fractions)]`` of one pixel order, one forward.

    ``x``: the padded line ``[3, 48, W]``, of which the first ``width``
    columns are ranked; ``order``: flat indices into ``48 x width``, first
    = most attributed. ``ends``: the targets' scores on the unperturbed line
    and on the all-baseline line, when already known (saves two rows).
    """
    c, h, _ = x.shape
    n = h * width
    if order.shape != (n,):
        raise ValueError(f"order has {order.shape} entries, the line {n} pixels")
    counts = _counts(n, fractions)
    interior = [i for i, k in enumerate(counts) if 0 < k < n]
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    top = (rank[None, :] < counts[interior, None]).reshape(len(interior), 1, h, width)  # [K,1,h,width]
    region = x[None, :, :, :width]
    base = np.asarray(baseline, dtype=np.float32)
    batch = np.repeat(x[None], 2 * len(interior) + (2 if ends is None else 0), axis=0)
    k = len(interior)
    batch[:k, :, :, :width] = np.where(top, base, region)  # deletion: top pixels -> baseline
    batch[k : 2 * k, :, :, :width] = np.where(top, region, base)  # insertion: only the top pixels kept
    if ends is None:
        batch[2 * k + 1, :, :, :width] = base
    probs = forward(torch.from_numpy(np.ascontiguousarray(batch)))
    scores = np.stack([t(probs) for t in targets]) if targets else np.zeros((0, len(batch)))
    if ends is None:
        full, empty = scores[:, 2 * k], scores[:, 2 * k + 1]
    else:
        full, empty = (np.asarray(e, dtype=np.float64) for e in ends)
    deletion = np.zeros((len(targets), len(counts)))
    insertion = np.zeros((len(targets), len(counts)))
    for j, cnt in enumerate(counts):
        if cnt <= 0:
            deletion[:, j], insertion[:, j] = full, empty
        elif cnt >= n:
            deletion[:, j], insertion[:, j] = empty, full
    for pos, j in enumerate(interior):
        deletion[:, j] = scores[:, pos]
        insertion[:, j] = scores[:, k + pos]
    return deletion, insertion


def end_scores(forward: Forward, x: np.ndarray, width: int, targets: Sequence[CharProb],
               baseline: float = BASELINE) -> tuple[np.ndarray, np.ndarray]:
    """The targets' scores on the line as it is and with every pixel at the baseline."""
    batch = np.repeat(x[None], 2, axis=0)
    batch[1, :, :, :width] = baseline
    probs = forward(torch.from_numpy(batch))
    return np.array([t(probs)[0] for t in targets]), np.array([t(probs)[1] for t in targets])


def deletion_insertion(forward: Forward, prepared: PreparedLine, attribution: np.ndarray | None,
                       targets: Sequence[CharProb], *, seeds: Sequence[int] = (),
                       fractions: np.ndarray = FRACTIONS) -> dict[str, np.ndarray]:
    """AUCs of one ranking (``attribution`` ``[48, width]``; None = only the random orders) for ``targets``.

    Returns ``deletion_auc``/``insertion_auc`` ``[N]`` (when an attribution
    is given), ``random_deletion_auc``/``random_insertion_auc`` ``[N]``
    (mean over ``seeds``, when any) and the curves.
    """
    x = line_array(prepared)
    width = prepared.width
    targets = list(targets)
    ends = end_scores(forward, x, width, targets)
    out: dict[str, np.ndarray] = {"score": ends[0]}
    if attribution is not None:
        a = np.asarray(attribution)
        if a.shape != (x.shape[1], width):
            raise ValueError(f"attribution {a.shape} does not match the line {(x.shape[1], width)}")
        d, i = perturbation_curves(forward, x, width, pixel_order(a), targets, fractions, ends=ends)
        out.update(deletion=d, insertion=i, deletion_auc=curve_auc(d, fractions),
                   insertion_auc=curve_auc(i, fractions))
    if seeds:
        curves = [perturbation_curves(forward, x, width, random_order(x.shape[1] * width, s), targets,
                                      fractions, ends=ends) for s in seeds]
        d = np.mean([c[0] for c in curves], axis=0)
        i = np.mean([c[1] for c in curves], axis=0)
        out.update(random_deletion=d, random_insertion=i,
                   random_deletion_auc=np.mean([curve_auc(c[0], fractions) for c in curves], axis=0),
                   random_insertion_auc=np.mean([curve_auc(c[1], fractions) for c in curves], axis=0))
    return out


# ---------------------------------------------------------------- attributions


def attributions(method: str, model: nn.Module, prepared: PreparedLine, targets: Sequence[CharScore],
                 *, ig_steps: int = 24) -> list[np.ndarray]:
    """Raw per-character attribution maps ``[48, width]`` (higher = more evidence) of one method."""
    targets = list(targets)
    if not targets:
        return []
    if method in ("layercam", "gradcam"):
        with GradCAMExplainer(model, method=method) as cam:
            return cam.char_maps(prepared, targets)
    if method == "layercam-logit":
        with GradCAMExplainer(model, method="layercam") as cam:
            return cam.char_maps(prepared, [CharLogit.from_target(t) for t in targets])
    if method == "saliency":
        return list(np.abs(input_gradients(model, prepared, targets)).max(axis=1))
    if method == "ig":
        return list(np.abs(integrated_gradients(model, prepared, targets, steps=ig_steps).sum(axis=1)))
    if method == "occlusion":
        return list(occlusion_drops(model, prepared, targets))
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


# ---------------------------------------------------------------- pointing game


def argmax_point(m: np.ndarray) -> tuple[int, int]:
    """``(y, x)`` of a map's maximum.

    A plateau (several pixels at the maximum) is resolved to its pixel
    nearest the line's horizontal centre line (then nearest the plateau's
    mean column): an upsampled CAM of a 3-row feature map is flat from the
    centre of its top or bottom cell out to the image border, and the cell
    centre, not the border, is where the CAM puts its evidence.
    """
    a = np.nan_to_num(np.asarray(m, dtype=np.float64), nan=-np.inf)
    peak = a.max()
    ys, xs = np.nonzero(a >= peak - 1e-9 * max(abs(peak), 1e-30))
    if len(ys) == 1:
        return int(ys[0]), int(xs[0])
    dy = np.abs(ys - (a.shape[0] - 1) / 2.0)
    near = dy <= dy.min() + 1e-9
    ys, xs = ys[near], xs[near]
    j = int(np.argmin(np.abs(xs - xs.mean())))
    return int(ys[j]), int(xs[j])


def to_image_point(point: tuple[int, int], prepared: PreparedLine, image_height: int) -> tuple[float, float]:
    """A prepared-input pixel ``(y, x)`` -> its centre ``(X, Y)`` in original image pixels."""
    y, x = point
    return (x + 0.5) * prepared.scale, (y + 0.5) * image_height / INPUT_HEIGHT


def in_box(xy: tuple[float, float], box: Sequence[float], tol: float = TOLERANCE_PX) -> bool:
    x, y = xy
    x1, y1, x2, y2 = box
    return x1 - tol <= x <= x2 + tol and y1 - tol <= y <= y2 + tol


def in_columns(xy: tuple[float, float], box: Sequence[float], tol: float = TOLERANCE_PX) -> bool:
    """Only the column: the point lies in the box's x-range (grown by ``tol``), any height."""
    return box[0] - tol <= xy[0] <= box[2] + tol


def empty_map(m: np.ndarray) -> bool:
    """A map with no positive finite value: it points nowhere (scored as a miss)."""
    a = np.asarray(m, dtype=np.float64)
    return not bool(np.any(np.isfinite(a) & (a > 0)))


def pointing_hits(maps: Sequence[np.ndarray], boxes: Sequence[Sequence[float]], prepared: PreparedLine,
                  image_height: int, tol: float = TOLERANCE_PX) -> list[bool]:
    """One hit / miss per (map, box): does the map's maximum fall in the box (grown by ``tol`` px)?

    An empty map (nothing positive) is a miss.
    """
    return [not empty_map(m) and in_box(to_image_point(argmax_point(m), prepared, image_height), b, tol)
            for m, b in zip(maps, boxes)]


def column_hits(maps: Sequence[np.ndarray], boxes: Sequence[Sequence[float]], prepared: PreparedLine,
                image_height: int, tol: float = TOLERANCE_PX) -> list[bool]:
    """Like :func:`pointing_hits` for the x-coordinate only (which character, not where in its height)."""
    return [not empty_map(m) and in_columns(to_image_point(argmax_point(m), prepared, image_height), b, tol)
            for m, b in zip(maps, boxes)]


def frame_point(span: CharSpan, prepared: PreparedLine, image_height: int) -> tuple[float, float]:
    """The no-map reference: the middle of the character's CTC frames, at mid-height (image pixels)."""
    x = (span.t_start + span.t_end + 1) * STRIDE_X / 2.0
    return min(x, prepared.width) * prepared.scale, image_height / 2.0


def synthetic_lines(n: int, font: Any) -> list[Any]:
    """``n`` clean rendered lines of :data:`PHRASES` (cycled) at sizes 28..40, with exact character boxes."""
    from training.synth import render_text

    return [render_text(PHRASES[i % len(PHRASES)], font, SIZES[(i * 5) % len(SIZES)]) for i in range(n)]


def read_line(recognizer: Any, image: np.ndarray) -> tuple[Any, PreparedLine]:
    """Greedy decoding (as the recogniser reports it) and the prepared input of one line image."""
    probs, prepared = recognizer.probabilities([image])[0]
    return greedy_decode(probs, recognizer.charset, scale=prepared.scale, image_width=image.shape[1]), prepared


def pointing_line(recognizer: Any, line: Any, methods: Sequence[str], tol: float = TOLERANCE_PX,
                  ig_steps: int = 24) -> dict[str, Any]:
    """Pointing-game hits of one rendered line (``line``: an :class:`training.synth.SynthLine`).

    Non-space characters only; the reading must equal the text once spaces
    are removed (the recogniser often drops a space between a CJK
    character and a digit; the remaining characters still align one to
    one). Returns ``{"text", "read", "ok", "chars", "hits": {method: [bool]},
    "column_hits": {method: [bool]}, "empty": {method: int}}`` with the
    no-map reference as method ``"ctc frames"``; ``ok`` is False (and
    nothing is scored) when the line was misread.
    """
    decoding, prepared = read_line(recognizer, line.image)
    out: dict[str, Any] = {"text": line.text, "read": decoding.text, "ok": False, "chars": 0,
                           "hits": {}, "column_hits": {}, "empty": {}}
    spans = [c for c in decoding.chars if not c.char.isspace()]
    keep = [i for i, ch in enumerate(line.text) if not ch.isspace()]
    if [c.char for c in spans] != [line.text[i] for i in keep]:
        return out  # misread (spaces aside: they are not scored)
    boxes = [line.char_boxes[i] for i in keep]
    h = line.image.shape[0]
    out.update(ok=True, chars=len(keep))
    points = [frame_point(s, prepared, h) for s in spans]
    out["hits"]["ctc frames"] = [in_box(p, b, tol) for p, b in zip(points, boxes)]
    out["column_hits"]["ctc frames"] = [in_columns(p, b, tol) for p, b in zip(points, boxes)]
    out["empty"]["ctc frames"] = 0
    targets = [CharScore.from_span(s) for s in spans]
    with eval_guard(recognizer.model), torch.inference_mode():
        logits = recognizer.model(batch_tensor([prepared]))[0]
    out["saturated"] = sum(float(t(logits)) == 0.0 for t in targets)  # log-probability exactly 0 in float32
    for method in methods:
        maps = attributions(method, recognizer.model, prepared, targets, ig_steps=ig_steps)
        out["hits"][method] = pointing_hits(maps, boxes, prepared, h, tol)
        out["column_hits"][method] = column_hits(maps, boxes, prepared, h, tol)
        out["empty"][method] = sum(empty_map(m) for m in maps)
    return out


def pointing_game(recognizer: Any, lines: Sequence[Any], methods: Sequence[str], *, heavy_lines: int | None = None,
                  tol: float = TOLERANCE_PX, ig_steps: int = 24) -> dict[str, Any]:
    """Hit rates over ``lines``; :data:`HEAVY_METHODS` only on the first ``heavy_lines`` of them (None: all)."""
    per_line, totals = [], {}
    for n, line in enumerate(lines):
        run = [m for m in methods if m not in HEAVY_METHODS or heavy_lines is None or n < heavy_lines]
        t0 = time.perf_counter()
        res = pointing_line(recognizer, line, run, tol, ig_steps)
        per_line.append(res)
        if not res["ok"]:
            log.info("pointing %d/%d: %r misread as %r, skipped", n + 1, len(lines), line.text, res["read"])
            continue
        for m, hits in res["hits"].items():
            agg = totals.setdefault(m, {"chars": 0, "hits": 0, "column_hits": 0, "empty_maps": 0})
            agg["chars"] += len(hits)
            agg["hits"] += int(sum(hits))
            agg["column_hits"] += int(sum(res["column_hits"][m]))
            agg["empty_maps"] += int(res["empty"][m])
        log.info("pointing %d/%d: %r, %d chars, hits %s (%.1f s)", n + 1, len(lines), line.text, res["chars"],
                 " ".join(f"{m}={sum(h)}" for m, h in res["hits"].items()), time.perf_counter() - t0)
    order = ["ctc frames", *[m for m in METHODS if m in totals], *[m for m in totals if m not in METHODS]]
    table = {}
    for m in order:
        if m in totals:
            agg = totals[m]
            n = agg["chars"]
            table[m] = {**agg, "hit_rate": agg["hits"] / n if n else float("nan"),
                        "column_hit_rate": agg["column_hits"] / n if n else float("nan")}
    return {"lines": len(lines), "lines_read": sum(r["ok"] for r in per_line),
            "spaces_differ": sum(r["ok"] and r["read"] != r["text"] for r in per_line),
            "saturated": sum(r.get("saturated", 0) for r in per_line),
            "chars": max((v["chars"] for v in totals.values()), default=0),
            "misread": [[r["text"], r["read"]] for r in per_line if not r["ok"]],
            "methods": table}


# ---------------------------------------------------------------- real lines


def spread(n: int, k: int) -> list[int]:
    """``k`` positions out of ``range(n)`` spread evenly, ends included."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, k)})


def real_lines(eval_root: Path, sets: Sequence[str] = EVAL_SETS, per_set: int = 60) -> list[tuple[str, str]]:
    """``(set, image path)`` of the first ``per_set`` lines of each set, interleaved set by set."""
    from ocr.manifest import read_manifest

    lists = []
    for name in sets:
        manifest = Path(eval_root) / name / "labels.tsv"
        if not manifest.exists():
            raise FileNotFoundError(f"{manifest} not found (give --eval-root)")
        lists.append([(name, str(manifest.parent / rel)) for rel, _ in read_manifest(manifest)[:per_set]])
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def deletion_benchmark(recognizer: Any, lines: Sequence[tuple[str, Any]], methods: Sequence[str], *,
                       max_chars: int = 200, per_line: int = 3, heavy_chars: int | None = None,
                       seeds: Sequence[int] = RANDOM_SEEDS, ig_steps: int = 24,
                       forward: Forward | None = None) -> dict[str, Any]:
    """Deletion / insertion AUCs per method vs random orders on up to ``max_chars`` recognised characters.

    ``lines``: ``(set name, image)`` pairs (path, array, ...). At most
    ``per_line`` characters of a line (spread along it, spaces skipped);
    :data:`HEAVY_METHODS` only on the first ``heavy_chars`` characters.
    """
    from ocr.imageio import load_image

    forward = forward or recognizer_forward(recognizer)
    rows: list[dict[str, Any]] = []
    used_lines, per_set = 0, {}
    for n, (set_name, image) in enumerate(lines):
        if len(rows) >= max_chars:
            break
        t0 = time.perf_counter()
        rgb = load_image(image)
        decoding, prepared = read_line(recognizer, rgb)
        cand = [i for i, c in enumerate(decoding.chars) if not c.char.isspace()]
        pick = [cand[j] for j in spread(len(cand), min(per_line, max_chars - len(rows)))]
        if not pick:
            log.info("deletion line %d (%s): nothing read, skipped", n + 1, set_name)
            continue
        used_lines += 1
        per_set[set_name] = per_set.get(set_name, 0) + 1
        spans = [decoding.chars[i] for i in pick]
        probs_t = [CharProb.from_span(s) for s in spans]
        first = len(rows)
        line_rows = [{"set": set_name, "char": s.char, "position": i, "methods": {}} for s, i in zip(spans, pick)]
        rnd = deletion_insertion(forward, prepared, None, probs_t, seeds=seeds)
        for r, p, d, ins in zip(line_rows, rnd["score"], rnd["random_deletion_auc"], rnd["random_insertion_auc"]):
            r.update(score=float(p), random_deletion_auc=float(d), random_insertion_auc=float(ins))
        for method in methods:
            which = [j for j in range(len(spans))
                     if method not in HEAVY_METHODS or heavy_chars is None or first + j < heavy_chars]
            if not which:
                continue
            maps = attributions(method, recognizer.model, prepared, [CharScore.from_span(spans[j]) for j in which],
                                ig_steps=ig_steps)
            for j, m in zip(which, maps):
                res = deletion_insertion(forward, prepared, m, [probs_t[j]])
                line_rows[j]["methods"][method] = {"deletion_auc": float(res["deletion_auc"][0]),
                                                   "insertion_auc": float(res["insertion_auc"][0]),
                                                   "empty_map": empty_map(m)}
        rows.extend(line_rows)
        log.info("deletion %d/%d chars: line %d (%s) %r, width %d (%.1f s)", len(rows), max_chars, n + 1, set_name,
                 decoding.text[:40], prepared.width, time.perf_counter() - t0)
    return {"lines": used_lines, "lines_per_set": per_set, "chars": len(rows),
            "methods": summarize_deletion(rows, methods), "rows": rows}


def summarize_deletion(rows: Sequence[dict[str, Any]], methods: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per method: mean AUCs and the random ones on the same characters, and per-character win shares."""
    table = {}
    for m in methods:
        sub = [r for r in rows if m in r["methods"]]
        if not sub:
            continue
        d = np.array([r["methods"][m]["deletion_auc"] for r in sub])
        i = np.array([r["methods"][m]["insertion_auc"] for r in sub])
        rd = np.array([r["random_deletion_auc"] for r in sub])
        ri = np.array([r["random_insertion_auc"] for r in sub])
        table[m] = {"chars": len(sub), "deletion_auc": float(d.mean()), "random_deletion_auc": float(rd.mean()),
                    "insertion_auc": float(i.mean()), "random_insertion_auc": float(ri.mean()),
                    "deletion_wins": float((d < rd).mean()), "insertion_wins": float((i > ri).mean()),
                    "empty_maps": int(sum(bool(r["methods"][m].get("empty_map")) for r in sub)),
                    "score": float(np.mean([r["score"] for r in sub]))}
    return table


# ---------------------------------------------------------------- report


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _and(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _method_label(m: str) -> str:
    if m == "ctc frames":
        return "ctc frames (reference: frame centre, no map)"
    if m == DEFAULT_CAM:
        return f"**{m}** (default per-character map)"
    if m == "layercam":
        return "layercam (log-probability target)"
    return m


def reading(data: dict[str, Any]) -> str:
    """A one-paragraph, figure-driven reading of the results (says where a method does not beat random)."""
    parts: list[str] = []
    pg, dl = data["pointing"]["methods"], data["deletion"]["methods"]
    d = pg.get(DEFAULT_CAM)
    if d:
        s = (f"In the pointing game the default per-character map ({DEFAULT_CAM}) puts its maximum inside the right "
             f"character's box for {_pct(d['hit_rate'])} of {d['chars']} characters of unseen text in an unseen font, "
             f"{'meeting' if d['hit_rate'] >= 0.8 else '**missing**'} the 80% target")
        if d["column_hit_rate"] - d["hit_rate"] >= 0.05:
            s += (f"; its column alone is right for {_pct(d['column_hit_rate'])}, so most misses are vertical (the "
                  "maximum lands above or below the ink: the CAM layer is 3 rows high and its top or bottom row "
                  "often carries the most evidence)")
        if d["empty_maps"]:
            verb = "was" if d["empty_maps"] == 1 else "were"
            s += f"; {d['empty_maps']} of its maps {verb} empty (nothing positive)"
        parts.append(s + ".")
        lg = pg.get("layercam-logit") if DEFAULT_CAM != "layercam-logit" else None
        if lg:
            sat = data["pointing"].get("saturated", 0)
            parts.append(f"Explaining the character's logit instead of its log-probability (layercam-logit) hits "
                         f"{_pct(lg['hit_rate'])} ({100 * (lg['hit_rate'] - d['hit_rate']):+.1f} points). "
                         + ("Saturation is a minor part of that: only " if sat < 0.1 * d["chars"] else "")
                         + f"{sat} of the {d['chars']} characters have a log-probability "
                         "of exactly 0 in float32 (own-class gradient 0). "
                         + ("More likely, " if sat < 0.1 * d["chars"] else "Beyond that, ") + "the gradient of a "
                         "log-probability, sum over j of p_j (grad z_c - grad z_j), is a margin against the likely "
                         "competitors, so LayerCAM maps where the character differs from them rather than the "
                         "character itself; the explainer's target is worth revisiting.")
    gc = pg.get("gradcam")
    if gc:
        parts.append(f"Grad-CAM, whose channel weights are averaged over the whole line, hits only "
                     f"{_pct(gc['hit_rate'])}.")
    ref = pg.get("ctc frames")
    if ref:
        rest = {m: v for m, v in pg.items() if m != "ctc frames"}
        at = [m for m, v in rest.items() if v["hit_rate"] >= ref["hit_rate"]]
        below = [m for m, v in rest.items() if v["hit_rate"] < ref["hit_rate"]]
        s = (f"Pointing is a weak test for a CTC line reader, though: the middle of a character's own CTC frames at "
             f"mid-height, with no map at all, hits {_pct(ref['hit_rate'])}")
        if at:
            s += f"; only {_and(at)} reach{'es' if len(at) == 1 else ''} that"
        elif below:
            s += "; no method reaches that"
        parts.append(s + ", so a hit shows agreement with the alignment, not faithfulness.")
    if dl:
        n = data["deletion"]["chars"]
        good_d = [m for m, v in dl.items() if v["deletion_auc"] < v["random_deletion_auc"]]
        bad_d = [m for m, v in dl.items() if m not in good_d]
        good_i = [m for m, v in dl.items() if v["insertion_auc"] > v["random_insertion_auc"]]
        bad_i = [m for m, v in dl.items() if m not in good_i]
        s = f"Deletion / insertion on {n} characters of real lines is the informative test. "
        if good_d:
            s += (("Every method" if not bad_d else _and(good_d)) + " deletes faster than random ("
                  + "; ".join(f"{m} {dl[m]['deletion_auc']:.3f} vs {dl[m]['random_deletion_auc']:.3f}" for m in good_d)
                  + ")")
        if bad_d:
            s += (("; " if good_d else "") + f"{_and(bad_d)} do{'es' if len(bad_d) == 1 else ''} **not** delete "
                  "faster than random (" + "; ".join(f"{m} {dl[m]['deletion_auc']:.3f} vs "
                                                     f"{dl[m]['random_deletion_auc']:.3f}" for m in bad_d) + ")")
        s += ". "
        if bad_i:
            s += (f"Insertion is harder: {_and(bad_i)} do{'es' if len(bad_i) == 1 else ''} **not** beat random ("
                  + "; ".join(f"{m} {dl[m]['insertion_auc']:.3f} vs {dl[m]['random_insertion_auc']:.3f}, better "
                              f"on {_pct(dl[m]['insertion_wins'])} of its characters" for m in bad_i)
                  + "): restoring its top-ranked pixels brings the character back no faster than random pixels")
            if good_i:
                s += f", while {_and(good_i)} do"
            s += ". "
        else:
            s += "Every method also inserts faster than random. "
        gain = {m: (v["random_deletion_auc"] - v["deletion_auc"]) + (v["insertion_auc"] - v["random_insertion_auc"])
                for m, v in dl.items()}
        ranked = sorted(gain, key=gain.get, reverse=True)
        s += (f"Ranked by the two gains over random together: {', '.join(ranked)}")
        heavy = [m for m in ranked if dl[m]["chars"] < n]
        if heavy:
            s += f" ({_and(heavy)} on their first {max(dl[m]['chars'] for m in heavy)} characters only)"
        parts.append(s + ".")
    return " ".join(parts)


def _deletion_rows(table: dict[str, dict[str, Any]], prefix: str = "") -> list[str]:
    return [f"| {prefix}{_method_label(m)} | {v['chars']} | {v['deletion_auc']:.3f} | {v['random_deletion_auc']:.3f} | "
            f"{_pct(v['deletion_wins'])} | {v['insertion_auc']:.3f} | {v['random_insertion_auc']:.3f} | "
            f"{_pct(v['insertion_wins'])} | {v['empty_maps']} |" for m, v in table.items()]


def markdown(data: dict[str, Any]) -> str:
    pg, dl = data["pointing"], data["deletion"]
    sec, cpu = data["seconds"], data["cpu_seconds"]
    lines = ["## Explanation faithfulness: pointing game and deletion / insertion", "",
             f"Generated by `{data['command']}` on {data['date']}. Wall time {sec['total']:.0f} s (pointing "
             f"{sec['pointing']:.0f} s, deletion / insertion {sec['deletion']:.0f} s) for {cpu['total']:.0f} s of CPU "
             f"time, {data['threads']} thread(s); load average {' / '.join(map(str, data['loadavg_start']))} at the "
             f"start, {' / '.join(map(str, data['loadavg_end']))} at the end (a shared machine: CPU time is the "
             f"better guide to the run time on a quiet one). Weights `crnn.pt` sha256 {data['weights_sha256']}...; "
             f"maps from the torch model, perturbed inputs scored with {data['engine']}. "
             "How it is measured: the docstring of `explain/faithfulness.py`.", ""]
    font_note = "held out of training" if pg["held_out_font"] else \
        "**fallback: the held-out font is missing, this font was used in training**"
    misread = "; ".join(f"`{t}` read `{r}`" for t, r in pg["misread"])
    lines += ["### Pointing game (rendered lines, exact character boxes)", "",
              f"{pg['lines']} lines of {len(PHRASES)} phrases written for this benchmark (Chinese and English "
              f"invoice, receipt and product text, not drawn from the training text sampler), font {pg['font']} "
              f"({font_note}), sizes {SIZES[0]}-{SIZES[-1]} px, black on white. {pg['lines_read']} lines read "
              f"correctly and scored ({pg['spaces_differ']} of them with a space dropped or added; spaces are not "
              f"scored), {pg['chars']} characters; {len(pg['misread'])} misread and skipped"
              + (f" ({misread})" if misread else "") + ". "
              "Maps explain the API's per-character target (the character's log-probability over its own "
              "frames); layercam-logit explains its summed logit instead. "
              f"Hit = the map's maximum lies inside the character's ink box grown by {pg['tolerance_px']} px "
              "(a plateau: its pixel nearest the line's centre line); column hit = its x alone lies within the "
              "box's columns (the right character, whatever the height); an empty map is a miss. "
              f"{_and(HEAVY_METHODS)}: first {pg['heavy_lines']} lines only.", "",
              "| method | characters | hits in box | **hit rate** | column hit rate | empty maps |",
              "|---|---:|---:|---:|---:|---:|"]
    for m, v in pg["methods"].items():
        lines.append(f"| {_method_label(m)} | {v['chars']} | {v['hits']} | {_pct(v['hit_rate'])} | "
                     f"{_pct(v['column_hit_rate'])} | {v['empty_maps']} |")
    sets = ", ".join(f"{v} of `{k}`" for k, v in dl["lines_per_set"].items())
    header = ["| method | characters | deletion AUC ↓ | random | del. wins | insertion AUC ↑ | random | ins. wins "
              "| empty maps |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += ["", "### Deletion / insertion (real lines)", "",
              f"{dl['chars']} recognised characters (at most {dl['per_line']} per line, spread along it, spaces "
              f"skipped) of {dl['lines']} lines taken in order from the first {dl['lines_per_set_limit']} of each set "
              f"({sets}; `../shared/eval`, labels unused). Score = mean probability of the character's class over "
              f"its own frames (mean {dl['mean_score']:.3f} unperturbed). Pixels of the 48 px input ranked by "
              "attribution; k = 0, 5, ..., 100% of them replaced by mid-grey (deletion: lower AUC is better) or "
              "restored into an all-grey line (insertion: higher is better); AUC over k in [0, 1]. Random = mean "
              f"of {len(dl['random_seeds'])} random pixel orders on the same characters; wins = share of "
              "characters where the method beats its random AUC. "
              f"{_and(HEAVY_METHODS)}: first {dl['heavy_chars']} characters only.", "", *header,
              *_deletion_rows(dl["methods"])]
    if dl.get("per_set"):
        lines += ["", "By set:", "", *header]
        for name, table in dl["per_set"].items():
            lines += _deletion_rows(table, prefix=f"`{name}`: ")
    lines += ["", "### Reading", "", reading(data), ""]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """This report's section of ``path`` (see :func:`benchmarks.report.write_marked_section`)."""
    write_marked_section(path, MARK_START, MARK_END, body)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faithfulness", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    p.add_argument("--lines", type=int, default=len(PHRASES), metavar="N",
                   help=f"rendered lines for the pointing game (default {len(PHRASES)}: every phrase once)")
    p.add_argument("--real-chars", type=int, default=200, metavar="N",
                   help="real characters for deletion / insertion (default 200)")
    p.add_argument("--real-lines", type=int, default=60, metavar="N",
                   help="take real lines among the first N of each set (default 60)")
    p.add_argument("--per-line", type=int, default=3, metavar="N", help="characters per real line (default 3)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), metavar="M",
                   help=f"methods among {' '.join(METHODS)} (default all)")
    p.add_argument("--heavy-lines", type=int, default=10, metavar="N",
                   help="pointing game: ig and occlusion on the first N lines only (default 10; -1 = all)")
    p.add_argument("--heavy-chars", type=int, default=45, metavar="N",
                   help="deletion: ig and occlusion on the first N characters only (default 45; -1 = all)")
    p.add_argument("--ig-steps", type=int, default=24, metavar="N", help="integrated-gradients steps (default 24)")
    p.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL_ROOT, help="the shared eval folder")
    p.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads (default 1)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="write the markdown section into FILE (between its explain:faithfulness markers)")
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    from ocr.recognize.recognizer import DEFAULT_WEIGHTS, Recognizer
    from training.synth import held_out_fonts, training_fonts

    t_start, c_start = time.perf_counter(), time.process_time()
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    loadavg = [round(x, 2) for x in os.getloadavg()]
    torch.set_num_threads(args.threads)
    recognizer = Recognizer.load(threads=args.threads)
    weights_sha = sha256_of(DEFAULT_WEIGHTS)[:12]
    omp = os.environ.get("OMP_NUM_THREADS")
    command = ((f"OMP_NUM_THREADS={omp} " if omp else "") + "python -m benchmarks.faithfulness"
               + "".join(" " + shlex.quote(a) for a in argv))
    heavy_lines = None if args.heavy_lines < 0 else args.heavy_lines
    heavy_chars = None if args.heavy_chars < 0 else args.heavy_chars

    fonts = held_out_fonts()
    held_out = bool(fonts)
    if not fonts:
        fonts = [f for f in training_fonts() if f.cjk] or training_fonts()
        log.warning("held-out font missing: falling back to the TRAINING font %s", fonts[0].name)
    font = fonts[0]
    t0, c0 = time.perf_counter(), time.process_time()
    pointing = pointing_game(recognizer, synthetic_lines(args.lines, font), args.methods,
                             heavy_lines=heavy_lines, ig_steps=args.ig_steps)
    pointing.update(font=font.name, held_out_font=held_out, tolerance_px=TOLERANCE_PX,
                    heavy_lines=min(heavy_lines, args.lines) if heavy_lines is not None else args.lines)
    t_pointing, c_pointing = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    lines = real_lines(args.eval_root, EVAL_SETS, args.real_lines)
    deletion = deletion_benchmark(recognizer, lines, args.methods, max_chars=args.real_chars,
                                  per_line=args.per_line, heavy_chars=heavy_chars, ig_steps=args.ig_steps)
    rows = deletion.pop("rows")
    deletion.update(per_line=args.per_line, lines_per_set_limit=args.real_lines,
                    heavy_chars=min(heavy_chars, deletion["chars"]) if heavy_chars is not None else deletion["chars"],
                    mean_score=float(np.mean([r["score"] for r in rows])) if rows else float("nan"),
                    fractions=FRACTIONS.tolist(), random_seeds=list(RANDOM_SEEDS),
                    per_set={name: summarize_deletion([r for r in rows if r["set"] == name], args.methods)
                             for name in EVAL_SETS})
    t_deletion, c_deletion = time.perf_counter() - t0, time.process_time() - c0
    if deletion["chars"] < args.real_chars:
        log.warning("only %d real characters found (asked for %d)", deletion["chars"], args.real_chars)
    return {
        "command": command,
        "date": date,
        "threads": args.threads,
        "engine": recognizer.engine_name,
        "weights_sha256": weights_sha,
        "loadavg_start": loadavg,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "pointing": pointing,
        "deletion": deletion,
        "seconds": {"pointing": round(t_pointing, 1), "deletion": round(t_deletion, 1),
                    "total": round(time.perf_counter() - t_start, 1)},
        "cpu_seconds": {"pointing": round(c_pointing, 1), "deletion": round(c_deletion, 1),
                        "total": round(time.process_time() - c_start, 1)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    data = run(args, argv)
    body = markdown(data)
    if args.out is not None:
        write_section(args.out, body)
        log.info("wrote the faithfulness section of %s", args.out)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif args.out is None:
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
