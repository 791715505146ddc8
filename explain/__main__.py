"""``python -m explain IMG [--method ...] [--layer NAME] [--model fast|accurate] [--out DIR]``: explanation PNGs + summary.json.

Writes, for one line image: ``confidence.png`` (text tinted by confidence),
``boxes.png``, and per method ``alignment.png`` / ``alignment_matrix.png``,
``gradcam_line.png`` and ``<method>_chars.png`` (one overlay per character,
stacked), then ``summary.json`` (text, confidence, per-character rows, reach
table, timings, files written). With ``--truth TEXT`` and the optional
``explain.errors`` module present, also ``errors.json``.

Bad input is reported in one line on stderr, exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from explain import render
from explain.errors import attribute_errors
from explain.gradcam import CAM_METHODS
from explain.registry import METHODS, explain_line
from ocr.errors import OCRError

log = logging.getLogger("explain")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m explain", description="Explain how a text line was read.")
    p.add_argument("image", help="a line image (PNG, JPEG, ...)")
    p.add_argument("--method", choices=[*METHODS, "all"], default="all",
                   help="which explanation (default: all)")
    p.add_argument("--layer", action="append", metavar="NAME",
                   help="CNN layer for Grad-CAM (repeat to fuse several; default: the model's last block, "
                   "backbone.blocks.8 fast, backbone.blocks.12 accurate)")
    p.add_argument("--model", choices=["fast", "accurate"], default="fast", help="the network to explain")
    p.add_argument("--cam", choices=list(CAM_METHODS), default="layercam", help="CAM variant (default layercam)")
    p.add_argument("--char", type=int, metavar="N", help="explain only character N (0-based position)")
    p.add_argument("--out", default="explain_out", metavar="DIR", help="output directory (default explain_out)")
    p.add_argument("--truth", metavar="TEXT", help="the correct text, for error attribution (explain.errors)")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    return p


def _jsonable(value: Any, out: Path, name: str, written: list[str]) -> Any:
    """Make ``value`` JSON-ready; RGB uint8 images are saved as PNG and replaced by their file name."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, out, f"{name}_{k}", written) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, out, f"{name}_{i}", written) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3:
            path = render.save_png(out / f"{name}.png", value)
            written.append(path.name)
            return path.name
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict(), out, name, written)
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _error_attribution(recognizer: Any, image: np.ndarray, truth: str, out: Path, written: list[str]) -> str | None:
    """``explain.errors.attribute_errors`` against ``truth``, written as errors.json; returns the file name."""
    result = attribute_errors(recognizer, image, truth)
    path = out / "errors.json"
    path.write_text(json.dumps(_jsonable(result, out, "errors", written), ensure_ascii=False, indent=2),
                    encoding="utf-8")
    written.append(path.name)
    return path.name


def _write(result: dict[str, Any], out: Path) -> list[str]:
    written: list[str] = []
    for name, image in result["images"].items():
        if isinstance(image, dict):
            if not image:
                continue
            panels = [image[i] for i in sorted(image)]
            path = render.save_png(out / f"{name}.png", render.stack_vertical(panels))
        else:
            path = render.save_png(out / f"{name}.png", image)
        written.append(path.name)
    return written


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        from ocr.imageio import load_image
        from ocr.recognize.recognizer import Recognizer

        image = load_image(args.image)
        recognizer = Recognizer.load(model=args.model, threads=args.threads)
        result = explain_line(recognizer, image, methods=args.method, char_index=args.char,
                              layer=args.layer, cam_method=args.cam)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        written = _write(result, out)
        if args.truth is not None:
            _error_attribution(recognizer, image, args.truth, out, written)
        summary = {
            "image": str(args.image),
            "text": result["text"],
            "confidence": result["confidence"],
            "width": result["width"],
            "height": result["height"],
            "methods": result["methods"],
            "chars": result["chars"],
            "selected_chars": result["selected_chars"],
            "tables": _jsonable(result["tables"], out, "table", written),
            "timings": result["timings"],
            "files": written + ["summary.json"],
        }
        (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    except OCRError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except OSError as exc:  # output directory not writable, disk full, ...
        sys.stderr.write(f"error: {exc.strerror or exc.__class__.__name__}: {exc.filename or args.out}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    sys.stdout.write(f"{result['text']}\t{result['confidence']:.4f}\t{len(written) + 1} files in {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(run())
