"""Where a page's time goes beyond the networks: cProfile over the whole pipeline at one thread.

    OMP_NUM_THREADS=1 python -m benchmarks.page_profile [--int8] [--pages synthetic|examples] [--top 25]

Pages: synthetic web-image-like pages (``training.quantize.synthetic_pages``, seed 2000, MTWI-like:
coloured backgrounds, mixed sizes) or ``examples/``. Never ``../shared/eval``. Each page is run
once to warm up, then ``--runs`` times under the profiler with the result cache off. The report
groups the profile into stages by the functions' own (exclusive) time, so the shares add up.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

#: (stage, substring of "file:function") in order: the first match names a function's stage
STAGES = [
    ("detector network", "onnxruntime"),  # refined below by caller
    ("preprocess (auto checks)", "preprocess/"),
    ("DB post-processing", "postprocess.py:db_boxes"),
    ("DB box score", "postprocess.py:_box_score"),
    ("DB corners", "postprocess.py:order_points"),
    ("det input (resize, normalise)", "postprocess.py:to_input_array"),
    ("det probability (resize+copy)", "detector.py:probability"),
    ("line crops (warpPerspective)", "geometry.py:crop_line"),
    ("reading order", "geometry.py:sort_reading_order"),
    ("line prep (resize, normalise)", "lineprep.py"),
    ("blank check", "recognizer.py:is_blank"),
    ("CTC decode", "decode.py"),
    ("pipeline (char quads, results)", "pipeline.py"),
    ("char quads", "geometry.py:char_quads"),
    ("image load / copy", "imageio.py"),
]


def stage_of(key: tuple[str, int, str]) -> str | None:
    filename, _, func = key
    path = Path(filename)
    where = f"{path.parent.name}/{path.name}:{func}"
    for stage, pattern in STAGES[1:]:
        if pattern in where:
            return stage
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--int8", action="store_true", help="weights/*.int8.onnx for det_small and crnn")
    parser.add_argument("--pages", choices=["synthetic", "examples"], default="synthetic")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, help="write the pstats dump here")
    args = parser.parse_args(argv)

    from ocr.pipeline import OCRPipeline
    from training.quantize import WEIGHTS, synthetic_pages
    from benchmarks.quantize_report import detector, example_pages, recognizer

    def model(name: str) -> Path:  # the int8 file when asked for and present, else the float export
        int8 = WEIGHTS / f"{name}.int8.onnx"
        return int8 if args.int8 and int8.exists() else WEIGHTS / f"{name}.onnx"

    pipe = OCRPipeline(recognizer(model("crnn")), detector(model("det_small")))
    print(json.dumps({"recognizer": model("crnn").name, "detector": model("det_small").name}))
    pages = synthetic_pages(args.n, seed=2000) if args.pages == "synthetic" else example_pages()[: args.n]
    det_run = pipe.detector.engine.session.run
    rec_run = pipe.recognizer.engine.session.run
    net = {"det": 0.0, "rec": 0.0}

    def timed(run, key):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return run(*a, **k)
            finally:
                net[key] += time.perf_counter() - t
        return wrapper

    pipe.detector.engine.session.run = timed(det_run, "det")  # type: ignore[method-assign]
    pipe.recognizer.engine.session.run = timed(rec_run, "rec")  # type: ignore[method-assign]
    for page in pages:
        pipe.run(page.rgb, use_cache=False)
    net.update(det=0.0, rec=0.0)
    timings: dict[str, list[float]] = {}
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(args.runs):
        for page in pages:
            result = pipe.run(page.rgb, use_cache=False)
            for k, v in result.timings.items():
                timings.setdefault(k, []).append(v)
    profiler.disable()
    wall = time.perf_counter() - started
    n = args.runs * len(pages)
    stats = pstats.Stats(profiler)
    if args.out:
        stats.dump_stats(str(args.out))
    by_stage: dict[str, float] = {}
    for key, (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        stage = stage_of(key)
        if stage:
            by_stage[stage] = by_stage.get(stage, 0.0) + tottime
    report = {"pages": args.pages, "int8": args.int8, "page_runs": n,
              "wall_s_per_page_profiled": round(wall / n, 4),
              "pipeline_timings_ms_median": {k: round(1000 * statistics.median(v), 1) for k, v in timings.items()},
              "network_ms_per_page": {k: round(1000 * v / n, 1) for k, v in net.items()},
              "stage_exclusive_ms_per_page": {k: round(1000 * v / n, 1)
                                              for k, v in sorted(by_stage.items(), key=lambda kv: -kv[1])}}
    print(json.dumps(report, indent=1))
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
