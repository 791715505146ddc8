"""How long explanations take on a plain CPU, per method and thread count.

    python -m benchmarks.speed [--threads 1 2] [--repeats 5] [--json] [--out BENCHMARKS.md]

A 20-character line (rendered, mixed Chinese and digits) is explained with
``explain.registry.explain_line`` — the same call the UI and REST API make —
and each method's own timing is reported (median over repeats; occlusion
and integrated gradients once, they are the slow opt-in methods).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from explain.registry import explain_line
from ocr.recognize.recognizer import Recognizer
from benchmarks.report import write_marked_section
from training.synth import render_text, training_fonts

log = logging.getLogger("benchmarks.speed")

LINE_TEXT = "价税合计（小写）¥1,234.56元整"  # 20 characters
START, END = "<!-- explain:speed:start -->", "<!-- explain:speed:end -->"


def measure(threads: list[int], repeats: int) -> dict:
    recognizer = Recognizer.load(engine="torch")
    font = next(f for f in training_fonts() if f.cjk)
    image = render_text(LINE_TEXT, font, 36).image
    results: dict = {"text": LINE_TEXT, "chars": len(LINE_TEXT), "image_size": list(image.shape[:2]), "runs": []}
    for t in threads:
        torch.set_num_threads(t)
        explain_line(recognizer, image, methods=("gradcam",))  # warm-up
        cam = [explain_line(recognizer, image, methods=("alignment", "gradcam"))["timings"] for _ in range(repeats)]
        slow = explain_line(recognizer, image, methods=("occlusion", "ig", "saliency"))["timings"]
        n_read = len(explain_line(recognizer, image, methods=("alignment",))["chars"])
        one = explain_line(recognizer, image, methods=("occlusion", "ig"), char_index=n_read // 2)["timings"]
        run = {
            "threads": t,
            "read_chars": n_read,
            "occlusion_one_char_s": one["occlusion"],
            "ig_one_char_s": one["ig"],
            "gradcam_line_and_all_chars_s": statistics.median(c["gradcam"] for c in cam),
            "alignment_s": statistics.median(c["alignment"] for c in cam),
            "saliency_all_chars_s": slow["saliency"],
            "occlusion_all_chars_s": slow["occlusion"],
            "ig_all_chars_s": slow["ig"],
        }
        log.info("%s", run)
        results["runs"].append(run)
    return results


def to_markdown(results: dict, command: str) -> str:
    rows = "\n".join(
        f"| {r['threads']} | {r['gradcam_line_and_all_chars_s']:.3f} | {r['alignment_s']:.3f} | "
        f"{r['saliency_all_chars_s']:.2f} | {r['occlusion_one_char_s']:.2f} / {r['occlusion_all_chars_s']:.2f} | "
        f"{r['ig_one_char_s']:.2f} / {r['ig_all_chars_s']:.2f} |"
        for r in results["runs"])
    return ("## Explanation speed\n\n"
            f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: a {results['chars']}-character line "
            f"(`{results['text']}`, {results['image_size'][1]}×{results['image_size'][0]} px), seconds per "
            "call of `explain.registry.explain_line` (the UI's and the REST API's call), rendering included. "
            "Targets: whole-line map + every per-character map ≤ 0.5 s at 2 threads; occlusion and "
            "integrated gradients ≤ 5 s each. The machine is shared; other jobs may hold a core.\n\n"
            "| threads | Grad-CAM line + all chars | CTC alignment | saliency, all chars | occlusion, one char / all | "
            "integrated gradients, one char / all |\n|---|---|---|---|---|---|\n"
            f"{rows}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the section into this markdown file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    results = measure(args.threads, args.repeats)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    if args.out:
        command = "python -m benchmarks.speed " + " ".join(sys.argv[1:] if argv is None else argv)
        write_marked_section(args.out, START, END, to_markdown(results, command.strip()))
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
