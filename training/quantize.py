"""Int8 onnxruntime models from the float exports (issue 17).

    python -m training.quantize                 # weights/{det_small,crnn}.int8.onnx (SHIPPED) + SHA256SUMS lines
    python -m training.quantize --only crnn     # the recogniser alone, e.g. after crnn.pt was retrained (~minutes):
                                                # re-exports crnn.onnx first when it is stale, then quantises
    python -m training.quantize --out /tmp/q --variant det_small:dynamic   # candidates: /tmp/q/det_small.dynamic.int8.onnx

The runtime (``ocr.engines``) runs ``X.int8.onnx`` only while its ``source_sha256`` is the SHA-256 of
``X.pt`` and its ``quantized_from_sha256`` that of ``X.onnx``; otherwise it falls back to the float
export with a log line, so a retrained ``crnn.pt`` is never read by an int8 model of older weights.

Each model is pre-processed (``onnxruntime.quantization.quant_pre_process``: shape inference and
ORT's basic graph fusions) and then quantised by one recipe (``RECIPES``):

* ``static-*``: QDQ format, uint8 activations / int8 per-channel weights (the U8S8 pair the
  x86 VNNI kernels run), activation ranges calibrated by running the float model on the project's
  own data (``calibration_pages`` / ``calibration_lines``); only the arithmetic-heavy ops
  (``Conv``, ``MatMul``) get Q/DQ pairs, so the element-wise ops in between (GELU, hard-sigmoid,
  squeeze-excite) stay float and add no extra quantise/dequantise steps; the detector's head
  (two ``ConvTranspose`` and the sigmoid) stays float; ``-dense``: depthwise and squeeze-excite
  convolutions stay float too (little arithmetic, most of the rounding error); ``percentile``:
  ranges cut at the 99.999th percentile of |activation| (histograms over fixed-shape tiles /
  windows, ``calibration_inputs(fixed_shape=True)``) instead of the min/max; ``stem-float`` (the
  recognisers'; ``-b0-``: the first block too): the stem float as well, the 99.99th percentile, and float
  logits (``RECIPE_OPTIONS``);
* ``dynamic``: weights int8 per channel, activations quantised at run time (``ConvInteger`` /
  ``MatMulInteger``), no calibration.

After quantising, every exact-GELU pattern is fused into one ``com.microsoft.Gelu`` node
(``fuse_erf_gelu``: onnxruntime does that for a float graph but not a quantised one).

``RECIPE`` says which one each shipped model uses; ``python -m benchmarks.quantize_report`` measures
them beside float (latency, agreement, load time, RSS) and is where the choice comes from.

Calibration data (``../shared/train`` and synthetic pages / lines only):
  detector: pages rebuilt from ``../shared/train`` SROIE receipts and XFUND forms (each line crop
  pasted back at its source box) and synthetic web-image-like pages (``ocr.synth`` lines on
  coloured backgrounds), all from the *calibration half* (``split="calib"``); the report measures
  on the other half, ``examples/`` and synthetic pages of other seeds;
  recogniser: line crops from SROIE / XFUND calibration-half pages, IC15 and SVT words, synthetic
  lines; the report reads IIIT5K words and XFUND lines of the other half.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from ocr.detect.config import config_from_metadata
from ocr.detect.postprocess import RESIZE, detection_size, to_input_array
from ocr.engines import (INT8_SUFFIX, QUANTIZATION_KEY, QUANTIZED_FROM_KEY, SOURCE_KEY, recorded_checksums,
                         sha256_of)
from ocr.recognize.charset import Charset
from ocr.recognize.lineprep import batch_array, prepare_line
from ocr.settings import ROOT, WEIGHTS_DIR as WEIGHTS
from training.synth import LineSynthesizer, training_fonts

TRAIN = ROOT.parent / "shared" / "train"
CHARSET = WEIGHTS / "charset.txt"

#: float export -> int8 file name
MODELS = {"det_small": "det_small.onnx", "det": "det.onnx", "crnn": "crnn.onnx", "crnn_accurate": "crnn_accurate.onnx"}
#: the recipe each shipped int8 model was made with, chosen by quantize_report on non-eval data
#: (2026-12-06): dense Conv/MatMul only, percentile ranges. Measured against the alternatives:
#: dynamic (ConvInteger) was 3x slower than float and lost 45-52 points on the recogniser; QDQ on
#: every op type was slower than float; MinMax ranges with depthwise/SE convs quantised lost 0.8-0.9
#: char accuracy on XFUND lines; MinMax dense lost 0.65 F1 on rebuilt SROIE/XFUND pages, percentile
#: dense none. The recogniser since 2026-12-07 15:01 UTC: ``static-stem-float`` (stem float, 99.99th percentile, float
#: logits), chosen on the validation slice and held-out-font synthetic lines (``training.quantize_sensitivity``,
#: ``runs/qat/RULE.txt``): the smallest loss against float, -0.91 char points at worst (IC15 words: -5.80 before).
#: The accurate recogniser's (2026-12-07 15:22 UTC): ``static-stem-b0-float``, the smallest worst-set loss of five recipes on
#: the same sets (-0.43 char points, IC15 words).
RECIPE = {"det_small": "static-percentile-dense", "det": "static-percentile-dense", "crnn": "static-stem-float",
          "crnn_accurate": "static-stem-b0-float"}
#: the int8 models written by default (and shipped): the tiny detector ``det`` measured no faster
#: int8 (0.19 vs 0.18 s on the examples), so it stays float
SHIPPED = ("det_small", "crnn", "crnn_accurate")
#: nodes left in float, per model: the detector head (its two transposed convolutions and the
#: sigmoid decide the box edges at the 0.2 threshold)
DET_HEAD = ["/head/up1/ConvTranspose", "/head/up2/ConvTranspose", "/Sigmoid"]


def int8_name(model: str) -> str:
    """``det_small`` -> ``det_small.int8.onnx`` (the runtime's ``ocr.engines.int8_path`` of ``det_small.pt``)."""
    return MODELS[model].replace(".onnx", INT8_SUFFIX)


# ---------------------------------------------------------------- data (train + synthetic only)

@dataclass
class Page:
    name: str
    rgb: np.ndarray
    boxes: list[list[float]]  # x1,y1,x2,y2 ground truth
    texts: list[str]


def _read_tsv(path: Path) -> list[list[str]]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[1:] if rows and rows[0][0] == "image" else rows


def _source_pages(dataset: str) -> dict[str, list[tuple[str, list[int], str]]]:
    """source page -> [(crop path, box, text)] from a train set's provenance and labels."""
    base = TRAIN / dataset
    labels = {row[0]: row[1] if len(row) > 1 else "" for row in _read_tsv(base / "labels.tsv")}
    pages: dict[str, list[tuple[str, list[int], str]]] = {}
    for row in _read_tsv(base / "provenance.tsv"):
        if len(row) < 4 or not row[3]:
            continue
        box = [int(float(v)) for v in row[3].split(",")]
        pages.setdefault(row[1], []).append((str(base / row[0]), box, labels.get(row[0], "")))
    return pages


def _split(keys: Sequence[str], split: str) -> list[str]:
    """Deterministic halves by hash of the source name: "calib" or "measure"."""
    def half(key: str) -> str:
        return "calib" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "measure"
    return sorted(k for k in keys if half(k) == split)


def rebuilt_pages(dataset: str, n: int, split: str, seed: int = 0) -> list[Page]:
    """Pages rebuilt from a train set's line crops pasted back at their source boxes (no whole
    pages are stored there). Paper colour varies; the boxes are the labels' boxes."""
    pages = _source_pages(dataset)
    keys = _split(list(pages), split)
    rng = random.Random(seed)
    rng.shuffle(keys)
    out = []
    for key in keys[:n]:
        items = pages[key]
        w = max(b[2] for _, b, _ in items) + 40
        h = max(b[3] for _, b, _ in items) + 40
        paper = rng.randint(200, 250)
        canvas = np.full((h, w, 3), paper, np.uint8)
        boxes, texts = [], []
        for path, (x1, y1, x2, y2), text in items:
            crop = cv2.imread(path, cv2.IMREAD_COLOR)
            if crop is None or x2 - x1 < 2 or y2 - y1 < 2:
                continue
            crop = cv2.cvtColor(cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
            canvas[y1:y2, x1:x2] = crop
            boxes.append([x1, y1, x2, y2])
            texts.append(text)
        out.append(Page(f"{dataset}:{Path(key).name}", canvas, boxes, texts))
    return out


def synthetic_pages(n: int, seed: int) -> list[Page]:
    """Web-image-like pages: synthetic lines (``ocr.synth``) of mixed sizes and colours placed on a
    gradient or flat coloured background, some lines on their own coloured band."""
    charset = Charset.load(CHARSET)
    synth = LineSynthesizer(charset.chars, seed=seed, fonts=training_fonts(), degrade=0.3)
    rng = random.Random(seed)
    out = []
    for k in range(n):
        w, h = rng.choice([(800, 600), (1000, 750), (640, 900), (1200, 800)])
        c1 = np.array([rng.randint(150, 255) for _ in range(3)], np.float32)
        c2 = np.array([rng.randint(150, 255) for _ in range(3)], np.float32)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        canvas = (c1 * (1 - t) + c2 * t).repeat(w, axis=1).astype(np.uint8)
        taken = np.zeros((h, w), bool)
        boxes, texts = [], []
        for _ in range(rng.randint(8, 22)):
            line = synth.sample()
            img = line.image
            scale = rng.uniform(0.5, 1.6)
            lw, lh = int(img.shape[1] * scale), int(img.shape[0] * scale)
            if lw < 8 or lh < 8 or lw >= w - 4 or lh >= h - 4:
                continue
            for _try in range(20):
                x, y = rng.randint(2, w - lw - 2), rng.randint(2, h - lh - 2)
                if not taken[max(0, y - 4):y + lh + 4, max(0, x - 4):x + lw + 4].any():
                    break
            else:
                continue
            img = cv2.resize(img, (lw, lh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            if rng.random() < 0.6:  # ink only: blend the line's background away (text straight on the page)
                gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
                bg = np.median(gray[[0, -1], :])
                alpha = np.clip(np.abs(gray - bg) / 80.0, 0, 1)[..., None]
                region = canvas[y:y + lh, x:x + lw].astype(np.float32)
                img = (region * (1 - alpha) + img.astype(np.float32) * alpha).astype(np.uint8)
            canvas[y:y + lh, x:x + lw] = img
            taken[y:y + lh, x:x + lw] = True
            cb = np.array(line.char_boxes, np.float32) * scale
            bx1, by1 = max(0.0, cb[:, 0].min() - 3), max(0.0, cb[:, 1].min() - 3)
            bx2, by2 = min(lw - 1.0, cb[:, 2].max() + 3), min(lh - 1.0, cb[:, 3].max() + 3)
            boxes.append([x + bx1, y + by1, x + bx2, y + by2])
            texts.append(line.text)
        out.append(Page(f"synth:{seed}:{k}", canvas, boxes, texts))
    return out


def calibration_pages() -> list[Page]:
    """The detector's calibration set: 5 SROIE + 5 XFUND rebuilt pages (calibration half),
    6 synthetic pages (seeds 0..): 16 pages."""
    return (rebuilt_pages("en_receipts_sroie_train_lines", 5, "calib")
            + rebuilt_pages("zh_doc_xfund_train_lines", 5, "calib") + synthetic_pages(6, seed=0))


def read_labels(dataset: str) -> list[tuple[str, str]]:
    base = TRAIN / dataset
    return [(str(base / row[0]), row[1] if len(row) > 1 else "") for row in _read_tsv(base / "labels.tsv")]


def calibration_lines(n: int = 240, seed: int = 0) -> list[np.ndarray]:
    """RGB line crops: SROIE and XFUND lines of calibration-half pages, IC15 and SVT words, synthetic lines."""
    rng = random.Random(seed)
    picked: list[str] = []
    for dataset, k in (("en_receipts_sroie_train_lines", n // 4), ("zh_doc_xfund_train_lines", n // 4)):
        pages = _source_pages(dataset)
        paths = [p for key in _split(list(pages), "calib") for p, _, _ in pages[key]]
        picked += rng.sample(paths, k)
    for dataset, k in (("en_scene_ic15_train", n // 8), ("en_scene_svt_train", n // 8)):
        picked += [p for p, _ in rng.sample(read_labels(dataset), k)]
    crops = [cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in picked]
    synth = LineSynthesizer(Charset.load(CHARSET).chars, seed=seed + 7, fonts=training_fonts())
    crops += [synth.sample().image for _ in range(n - len(crops))]
    return crops


def det_input(rgb: np.ndarray, variant: str) -> np.ndarray:
    """[1,3,H,W] float32 exactly as ``TextDetector.probability`` feeds the release."""
    h, w = rgb.shape[:2]
    th, tw = detection_size(h, w, *RESIZE[variant])
    resized = cv2.resize(rgb, (tw, th)) if (th, tw) != (h, w) else rgb
    return to_input_array(resized)


def rec_batches(crops: Sequence[np.ndarray], batch: int = 8) -> list[np.ndarray]:
    """Crops as the recogniser's padded batches, grouped by width as ``Recognizer`` does."""
    prepared = sorted((prepare_line(c) for c in crops), key=lambda p: p.width)
    return [batch_array(prepared[i:i + batch]) for i in range(0, len(prepared), batch)]


# ---------------------------------------------------------------- quantisation

class _Reader:
    """``CalibrationDataReader`` over a list of input arrays."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(arrays)

    def get_next(self) -> dict[str, np.ndarray] | None:
        array = next(self._it, None)
        return None if array is None else {"x": array}


#: (kind, calibration method, op types with Q/DQ, extra float nodes per model kind)
Recipe = tuple[str, str | None, list[str] | None, dict[str, list[str]]]
#: recipe name -> its :data:`Recipe`
HEAD_FLOAT = {"crnn": ["/model/classifier/MatMul"], "det": []}
STEM_FLOAT = {"crnn": ["/model/backbone/stem1/Conv"], "det": ["/backbone/stem/conv1/Conv"]}
RECIPES: dict[str, Recipe] = {
    "static-minmax": ("static", "MinMax", ["Conv", "MatMul"], {}),
    "static-minmax-head": ("static", "MinMax", ["Conv", "MatMul"], HEAD_FLOAT),
    "static-minmax-head-stem": ("static", "MinMax", ["Conv", "MatMul"],
                                {k: HEAD_FLOAT[k] + STEM_FLOAT[k] for k in HEAD_FLOAT}),
    "static-percentile": ("static", "Percentile", ["Conv", "MatMul"], {}),
    "static-percentile-head": ("static", "Percentile", ["Conv", "MatMul"], HEAD_FLOAT),
    "static-percentile-dense": ("static", "Percentile", ["Conv", "MatMul"], {"crnn": ["@dw", "@se"], "det": ["@dw", "@se"]}),
    "static-entropy": ("static", "Entropy", ["Conv", "MatMul"], {}),
    # dense convolutions and matmuls only: depthwise and squeeze-excite convolutions stay float
    # (little arithmetic, most of the rounding error)
    "static-minmax-dense": ("static", "MinMax", ["Conv", "MatMul"], {"crnn": ["@dw", "@se"], "det": ["@dw", "@se"]}),
    "static-minmax-dense-neck": ("static", "MinMax", ["Conv", "MatMul"], {"det": ["@dw", "@se", "~/neck/", "~/head/"]}),
    "static-minmax-dense-stem": ("static", "MinMax", ["Conv", "MatMul"], {"det": ["@dw", "@se", "~/stem/"]}),
    # + the deepest stage (1/32 scale: little arithmetic, the lowest SQNR in qdq_loss_debug)
    "static-minmax-dense-s4": ("static", "MinMax", ["Conv", "MatMul"], {"det": ["@dw", "@se", "~/stage4/"]}),
    "static-minmax-dense-s4-smooth": ("static", "MinMax", ["Conv", "MatMul"],
                                      {"det": ["@dw", "@se", "~/stage4/", "~/neck/smooth"]}),
    "static-minmax-dense-head": ("static", "MinMax", ["Conv", "MatMul"],
                                 {"crnn": ["@dw", "@se", *HEAD_FLOAT["crnn"]], "det": ["@dw", "@se"]}),
    "static-all": ("static", "MinMax", None, {}),  # every op type onnxruntime can quantise
    # the recognisers' (model card, "Int8"): the stem stays float, ranges at the 99.99th percentile, the matrix
    # products' outputs float (``RECIPE_OPTIONS``); ``training.quantize_aware`` fine-tunes through this rounding
    "static-stem-float": ("static", "Percentile", ["Conv", "MatMul"],
                   {"crnn": ["@dw", "@se", "~/stem1/", "~/stem2/", "~/backbone/stem/"]}),  # fast / accurate stems
    # the same with the first backbone block float (the accurate recogniser's: scene words lose least)
    "static-stem-b0-float": ("static", "Percentile", ["Conv", "MatMul"],
                      {"crnn": ["@dw", "@se", "~/stem1/", "~/stem2/", "~/backbone/stem/", "~/backbone/blocks/blocks.0/"]}),
    "dynamic": ("dynamic", None, ["Conv", "MatMul"], {}),
}


#: onnxruntime ``extra_options`` beyond the defaults, per recipe. Float logits: uint8 logits (steps of 0.33)
#: cost 1.0 char point on held-out-font synthetic lines, and the MatMul kernel with a float output is as fast
_FLOAT_LOGITS_99_99 = {"CalibPercentile": 99.99, "OpTypesToExcludeOutputQuantization": ["MatMul"]}
RECIPE_OPTIONS: dict[str, dict[str, Any]] = {"static-stem-float": _FLOAT_LOGITS_99_99,
                                             "static-stem-b0-float": _FLOAT_LOGITS_99_99}


def calibration_inputs(model: str, fixed_shape: bool = False) -> list[np.ndarray]:
    """The float model's inputs to calibrate on. ``fixed_shape`` (the histogram methods stack
    every run's tensors, so all runs need one shape): detector pages cut into 384x384 tiles (2 a
    page, reflect-padded when smaller), line batches cut into 320-column windows."""
    rng = np.random.default_rng(0)
    if model.startswith("crnn"):  # both recognisers read the same lines
        batches = rec_batches(calibration_lines())
        if not fixed_shape:
            return batches
        out = []
        for b in batches:
            padded = np.pad(b, ((0, 0), (0, 0), (0, 0), (0, max(0, 320 - b.shape[3]))))
            out += [padded[..., i:i + 320] for i in range(0, padded.shape[3] - 319, 320)]
        return out
    variant = "small" if model == "det_small" else "tiny"
    inputs = [det_input(page.rgb, variant) for page in calibration_pages()]
    if not fixed_shape:
        return inputs
    tiles, side = [], 384
    for x in inputs:
        x = np.pad(x, ((0, 0), (0, 0), (0, max(0, side - x.shape[2])), (0, max(0, side - x.shape[3]))), mode="reflect")
        for _ in range(2):
            y0 = int(rng.integers(0, x.shape[2] - side + 1))
            x0 = int(rng.integers(0, x.shape[3] - side + 1))
            tiles.append(np.ascontiguousarray(x[..., y0:y0 + side, x0:x0 + side]))
    return tiles


#: metadata of an int8 file made from fine-tuned weights: the SHA-256 of the float export it was quantised from
FINE_TUNED_KEY = "fine_tuned_export_sha256"


def quantize(model: str, recipe: str, out: Path, inputs: list[np.ndarray] | None = None,
             source: Path | None = None, candidate: Recipe | None = None) -> Path:
    """Write ``out``: ``model``'s float export quantised by ``recipe``; float metadata kept. ``source``: a
    float export of fine-tuned weights to quantise instead (``training.quantize_aware``); the file still
    stands for ``model``'s export (its metadata, ``QUANTIZED_FROM_KEY``), so the runtime keeps checking it
    against the shipped float weights. ``candidate``: a recipe under study, named ``recipe`` in the file's
    metadata, used instead of ``RECIPES[recipe]`` (``training.quantize_sensitivity``; the registry stays as
    shipped)."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_dynamic, quantize_static)

    shipped = WEIGHTS / MODELS[model]
    src = Path(source).resolve() if source is not None else shipped
    kind, method, ops, extra = candidate if candidate is not None else RECIPES[recipe]
    family = "det" if model.startswith("det") else "crnn"
    exclude = _resolve(src, (DET_HEAD if family == "det" else []) + extra.get(family, []))
    out = Path(out).resolve()
    # onnxruntime's tools leave scratch files in the working directory: keep them in tmp
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        pre = Path(tmp) / "pre.onnx"
        # the detectors' Resize on a dynamic size, and the accurate model's attention Reshape, defeat symbolic
        # shape inference: ONNX's own suffices
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=family == "det" or model == "crnn_accurate")
        if kind == "static":
            if inputs is None or (method != "MinMax") != (len({a.shape for a in inputs}) == 1):
                inputs = calibration_inputs(model, fixed_shape=method != "MinMax")
            quantize_static(str(pre), str(out), _Reader(inputs), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=ops, per_channel=True, reduce_range=False,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=exclude, calibrate_method=getattr(CalibrationMethod, method),
                            # (not CalibMaxIntermediateOutputs: in onnxruntime 1.32 it drops the ranges it
                            # collected; MinMax keeps only per-tensor min/max anyway)
                            extra_options={"QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
                                           **RECIPE_OPTIONS.get(recipe, {})})
        else:
            quantize_dynamic(str(pre), str(out), op_types_to_quantize=ops, per_channel=True,
                             weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
    # the float export's metadata (source_sha256 of the torch weights, det_config) plus what this is
    float_meta = {p.key: p.value for p in onnx.load(str(shipped), load_external_data=False).metadata_props}
    q = onnx.load(str(out))
    fuse_erf_gelu(q)
    meta = dict(float_meta, **{QUANTIZED_FROM_KEY: sha256_of(shipped), QUANTIZATION_KEY: recipe})
    if src != shipped:
        meta[FINE_TUNED_KEY] = sha256_of(src)
    del q.metadata_props[:]
    for key, value in meta.items():
        q.metadata_props.add(key=key, value=value)
    onnx.save(q, str(out))
    if model.startswith("det"):
        assert config_from_metadata(meta) is not None
    return out


def fuse_erf_gelu(model: "onnx.ModelProto") -> int:
    """Replace each exact-GELU pattern ``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)`` by one
    ``com.microsoft.Gelu`` node, in place; returns how many.

    onnxruntime fuses this pattern into its Gelu kernel when it loads a float model, but not in the
    quantised QDQ graph, where ``x`` is a ``DequantizeLinear`` output: there the five element-wise ops
    ran one by one. Fused, the small detector's int8 network ran 15-17% faster at 1 thread (800x800:
    151 -> 125 ms, 736x1024: 184 -> 155 ms) with bit-identical probability maps (max |diff| 0.0)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    scalars = {t.name: numpy_helper.to_array(t) for t in graph.initializer if int(np.prod(t.dims)) == 1}

    def is_scalar(name: str, value: float) -> bool:
        return name in scalars and abs(float(scalars[name]) - value) < 1e-6

    def only_consumer(node: Any) -> Any:
        users = consumers.get(node.output[0], [])
        return users[0] if len(users) == 1 else None

    replaced: dict[int, Any] = {}
    dropped: set[int] = set()
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        div = producer.get(erf.input[0])
        add = only_consumer(erf)
        mul = only_consumer(add) if add is not None else None
        half = only_consumer(mul) if mul is not None else None
        if (div is None or half is None or div.op_type != "Div" or only_consumer(div) is not erf
                or not is_scalar(div.input[1], 2 ** 0.5)):
            continue
        x = div.input[0]
        if not (add.op_type == "Add" and is_scalar(add.input[1], 1.0) and mul.op_type == "Mul"
                and set(mul.input) == {x, add.output[0]} and half.op_type == "Mul" and is_scalar(half.input[1], 0.5)):
            continue
        dropped |= {id(div), id(erf), id(add), id(mul)}
        replaced[id(half)] = helper.make_node("Gelu", [x], [half.output[0]], name=erf.name + "/gelu",
                                              domain="com.microsoft")
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name in scalars and t.name not in used]
    for tensor in unused:  # the pattern's constants
        graph.initializer.remove(tensor)
    if replaced and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(replaced)


def _resolve(src: Path, names: list[str]) -> list[str]:
    """Node names; "@dw" = every depthwise (grouped) Conv, "@se" = every squeeze-excite Conv,
    "~text" = every Conv/MatMul whose name contains text."""
    import onnx

    if not any(n.startswith("@") for n in names):
        return names
    graph = onnx.load(str(src), load_external_data=False).graph
    out = [n for n in names if not n.startswith("@")]
    for node in graph.node:
        if node.op_type not in ("Conv", "MatMul"):
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if (("@dw" in names and group > 1) or ("@se" in names and "/se/" in node.name)
                or any(n.startswith("~") and n[1:] in node.name for n in names)):
            out.append(node.name)
    return out


def update_sums(paths: Sequence[Path], sums: Path = WEIGHTS / "SHA256SUMS") -> None:
    """Replace or append ``<sha256>  <name>`` lines (the file's existing format), read with the runtime's own
    parser (``ocr.engines.recorded_checksums``)."""
    recorded = {name: digest for name, digest in recorded_checksums(sums).items() if name not in {p.name for p in paths}}
    recorded.update({p.name: sha256_of(p) for p in paths})
    sums.write_text("".join(f"{digest}  {name}\n" for name, digest in recorded.items()))


def ensure_float_export(model: str) -> None:
    """Re-export the recogniser's float ONNX when it is missing or made from other weights than
    ``crnn.pt`` (the int8 model is quantised from it). The detectors' exports come from
    ``python -m training.convert_det --export-only``; a stale one is refused here."""
    import onnx

    src, weights = WEIGHTS / MODELS[model], WEIGHTS / MODELS[model].replace(".onnx", ".pt")
    want = sha256_of(weights)
    if src.exists():
        meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
        if meta.get(SOURCE_KEY) == want:
            return
    if not model.startswith("crnn"):
        raise SystemExit(f"{src} is missing or stale: run python -m training.convert_det --export-only {weights}")
    from training.export import export_onnx

    export_onnx(weights, src)
    update_sums([src])
    print(json.dumps({"re-exported": str(src), "source_sha256": want}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--only", choices=list(MODELS), action="append", default=[],
                        help="quantise this model with its RECIPE (repeatable; default: SHIPPED)")
    parser.add_argument("--variant", action="append", default=[],
                        help="MODEL:RECIPE candidates (default: --only / SHIPPED with their RECIPE); repeatable")
    parser.add_argument("--no-sums", action="store_true", help="do not touch weights/SHA256SUMS")
    args = parser.parse_args(argv)
    jobs = [tuple(v.split(":")) for v in args.variant] or [(m, RECIPE[m]) for m in (args.only or SHIPPED)]
    args.out.mkdir(parents=True, exist_ok=True)
    written, cache = [], {}
    for model, recipe in jobs:
        started = time.perf_counter()
        ensure_float_export(model)
        tag = "" if args.out.resolve() == WEIGHTS.resolve() else f".{recipe}"  # candidates side by side
        out = args.out / int8_name(model).replace(".int8", f"{tag}.int8")
        if RECIPES[recipe][:2] == ("static", "MinMax") and model not in cache:
            cache[model] = calibration_inputs(model)
        quantize(model, recipe, out, cache.get(model))
        written.append(out)
        print(json.dumps({"model": model, "recipe": recipe, "out": str(out), "bytes": out.stat().st_size,
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    if not args.no_sums and args.out.resolve() == WEIGHTS.resolve():
        update_sums(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
