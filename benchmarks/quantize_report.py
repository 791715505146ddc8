"""Float vs int8, per model, at one thread: latency, agreement, accuracy, load time, RSS.

    OMP_NUM_THREADS=1 python -m benchmarks.quantize_report                  # weights/*.int8.onnx (sessions: 1 thread)
    OMP_NUM_THREADS=1 python -m benchmarks.quantize_report --models crnn --int8 crnn=/tmp/q/crnn.dynamic.int8.onnx

Float and int8 run interleaved (A B B A per item) in one process, so a busy machine slows both alike.

* detector (det_small, det): the 9 ``examples/`` pages, 4 synthetic pages (seed 1000, not a
  calibration seed) and 4 pages rebuilt from ``../shared/train`` SROIE / XFUND *measure-half*
  sources (``training.quantize.rebuilt_pages``). Median seconds of ``TextDetector.detect`` per page
  (network + DB post-processing, as the pipeline pays it) and of the network alone; boxes F1
  (IoU >= 0.5, ``ocr.evaluate.match_boxes``) of int8 against float, and of each against the labels.
* recogniser (crnn): ~300 crops, IIIT5K train words (protocol alnum) and XFUND train lines of the
  measure half (protocol zh), read by ``Recognizer`` (its width bucketing and greedy decoding);
  ms per crop, char accuracy against the labels (``ocr.evaluate.score_lines``) and int8 against float.
* end to end (``--pipeline``): the examples through ``OCRPipeline`` with both float, then both int8.
* load: median seconds to open the session (3 tries each); RSS: a fresh process per model opens
  it and runs a few inputs; MB above the process before the session (after load / peak).

Never reads ``../shared/eval``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from training.quantize import (MODELS, WEIGHTS, _split, _source_pages, det_input, int8_name, read_labels,
                               rebuilt_pages, synthetic_pages, Page)

from ocr.settings import EXAMPLES_DIR as EXAMPLES, ROOT
VARIANT = {"det_small": "small", "det": "tiny"}


# ---------------------------------------------------------------- engines over one given ONNX file each

def detector(path: Path, threads: int = 1):
    from ocr.detect.detector import OnnxDetEngine, TextDetector

    engine = OnnxDetEngine(path, threads)
    return TextDetector(engine=engine, config=engine.config, build=lambda: None, threads=threads)


def recognizer(path: Path, threads: int = 1):
    from ocr.recognize.charset import Charset
    from ocr.recognize.recognizer import OnnxEngine, Recognizer

    return Recognizer(None, Charset.load(WEIGHTS / "charset.txt"), engine=OnnxEngine(path, threads),
                      build=lambda: None, threads=threads)


def session(path: Path, threads: int = 1):
    from ocr.engines import cpu_session

    return cpu_session(path, threads)


# ---------------------------------------------------------------- data

def example_pages() -> list[Page]:
    from benchmarks.evaluate import box_to_xyxy

    pages = []
    for line in (EXAMPLES / "index.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rgb = cv2.cvtColor(cv2.imread(str(EXAMPLES / record["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        pages.append(Page(f"examples:{record['image']}", rgb, [list(box_to_xyxy(ln["box"])) for ln in record["lines"]],
                          [ln["text"] for ln in record["lines"]]))
    return pages


#: synthetic pages and rebuilt pages per train set the detector is measured on (``--det-pages``)
DET_PAGES = {"synthetic": 6, "rebuilt": 4}


def measure_pages() -> dict[str, list[Page]]:
    return {"examples": example_pages(), "synthetic": synthetic_pages(DET_PAGES["synthetic"], seed=1000),
            "rebuilt_sroie": rebuilt_pages("en_receipts_sroie_train_lines", DET_PAGES["rebuilt"], "measure"),
            "rebuilt_xfund": rebuilt_pages("zh_doc_xfund_train_lines", DET_PAGES["rebuilt"], "measure")}


def measure_lines(n: int = 300, seed: int = 1) -> dict[str, tuple[list[np.ndarray], list[str], str]]:
    """set -> (RGB crops, labels, protocol): IIIT5K words and XFUND measure-half lines, n/2 each."""
    rng = random.Random(seed)
    iiit = rng.sample(read_labels("en_scene_iiit5k_train"), n // 2)
    pages = _source_pages("zh_doc_xfund_train_lines")
    xfund = rng.sample([(p, t) for key in _split(list(pages), "measure") for p, _, t in pages[key]], n - n // 2)

    def load(items: list[tuple[str, str]]) -> tuple[list[np.ndarray], list[str]]:
        return [cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p, _ in items], [t for _, t in items]

    return {"en_scene_iiit5k_train": (*load(iiit), "alnum"), "zh_doc_xfund_train_lines": (*load(xfund), "zh")}


# ---------------------------------------------------------------- measuring

def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Median seconds of each function and its last result; the order alternates (A B, B A, ...)."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    results: dict[str, Any] = {}
    for r in range(repeats):
        for k in (names if r % 2 == 0 else names[::-1]):
            t = time.perf_counter()
            results[k] = fns[k]()
            times[k].append(time.perf_counter() - t)
    return {k: (statistics.median(times[k]), results[k]) for k in names}


def f1(pred: Sequence[Sequence[float]], ref: Sequence[Sequence[float]]) -> tuple[int, int, int]:
    """(matched, n_pred, n_ref) at IoU >= 0.5."""
    from benchmarks.evaluate import match_boxes

    return len(match_boxes(pred, ref)), len(pred), len(ref)


def f1_value(counts: Sequence[tuple[int, int, int]]) -> float:
    m, p, r = (sum(c[i] for c in counts) for i in range(3))
    return 2 * m / (p + r) if p + r else 1.0


def report_detector(model: str, float_path: Path, int8_path: Path, repeats: int) -> dict[str, Any]:
    dets = {"float": detector(float_path), "int8": detector(int8_path)}
    out: dict[str, Any] = {}
    for group, pages in measure_pages().items():
        rows = {k: {"detect_s": [], "net_s": [], "vs_gt": []} for k in dets}
        agree = []
        for page in pages:
            res = interleaved({k: (lambda d=d: d.detect(page.rgb)) for k, d in dets.items()}, repeats)
            x = det_input(page.rgb, VARIANT[model])
            net = interleaved({k: (lambda d=d: d.engine.session.run(None, {"x": x})) for k, d in dets.items()}, repeats)
            boxes = {k: [list(b.aabb) for b in res[k][1].boxes] for k in dets}
            for k in dets:
                rows[k]["detect_s"].append(res[k][0])
                rows[k]["net_s"].append(net[k][0])
                rows[k]["vs_gt"].append(f1(boxes[k], page.boxes))
            agree.append(f1(boxes["int8"], boxes["float"]))
        out[group] = {"pages": len(pages), "f1_int8_vs_float": round(100 * f1_value(agree), 2)}
        for k in dets:
            out[group][k] = {"detect_s": round(statistics.median(rows[k]["detect_s"]), 4),
                             "net_s": round(statistics.median(rows[k]["net_s"]), 4),
                             "f1_vs_labels": round(100 * f1_value(rows[k]["vs_gt"]), 2)}
    return out


def report_recognizer(float_path: Path, int8_path: Path, n: int, chunk: int = 25) -> dict[str, Any]:
    from benchmarks.evaluate import score_lines

    recs = {"float": recognizer(float_path), "int8": recognizer(int8_path)}
    out: dict[str, Any] = {}
    for name, (crops, labels, protocol) in measure_lines(n).items():
        seconds = {k: 0.0 for k in recs}
        texts: dict[str, list[str]] = {k: [] for k in recs}
        for start in range(0, len(crops), chunk):
            part = crops[start:start + chunk]
            res = interleaved({k: (lambda r=r: r.recognize(part)) for k, r in recs.items()}, 2)
            for k in recs:
                seconds[k] += res[k][0]
                texts[k] += [line.text for line in res[k][1]]
        row: dict[str, Any] = {"crops": len(crops), "protocol": protocol}
        for k in recs:
            score = score_lines(texts[k], labels, protocol)
            row[k] = {"ms_per_crop": round(1000 * seconds[k] / len(crops), 2),
                      "char_acc": round(100 * score["char_accuracy"], 2),
                      "line_acc": round(100 * score["line_accuracy"], 2)}
        same = score_lines(texts["int8"], texts["float"], protocol)
        row["int8_vs_float_char_agreement"] = round(100 * (same["char_accuracy"] or 1.0), 2)
        row["identical_lines"] = sum(a == b for a, b in zip(texts["int8"], texts["float"]))
        row["delta_char_acc"] = round(row["int8"]["char_acc"] - row["float"]["char_acc"], 2)
        out[name] = row
    return out


def report_pipeline(det_float: Path, det_int8: Path, rec_float: Path, rec_int8: Path) -> dict[str, Any]:
    """The examples through the whole pipeline, float vs int8: texts, char accuracy, F1, seconds per page."""
    from benchmarks.evaluate import score_pages
    from ocr.pipeline import OCRPipeline

    labels = [json.loads(s) for s in (EXAMPLES / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    labels = [p for p in labels if p.get("kind") == "page"]
    pipes = {"float": OCRPipeline(recognizer(rec_float), detector(det_float)),
             "int8": OCRPipeline(recognizer(rec_int8), detector(det_int8))}
    preds: dict[str, list[dict]] = {k: [] for k in pipes}
    seconds: dict[str, list[float]] = {k: [] for k in pipes}
    same = 0
    for page in labels:
        rgb = cv2.cvtColor(cv2.imread(str(EXAMPLES / page["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        res = interleaved({k: (lambda p=p: p.run(rgb, use_cache=False)) for k, p in pipes.items()}, 3)
        for k in pipes:
            seconds[k].append(res[k][0])
            preds[k].append({"image": page["image"], "lines": [{"box": list(ln.box), "text": ln.text}
                                                               for ln in res[k][1].lines]})
        same += res["float"][1].text == res["int8"][1].text
    out: dict[str, Any] = {"pages": len(labels), "identical_page_texts": same}
    for k in pipes:
        s = score_pages(preds[k], labels, "zh")
        out[k] = {"s_per_page": round(statistics.median(seconds[k]), 4), "char_acc": round(100 * s["char_accuracy"], 2),
                  "f1": round(100 * s["f1"], 2)}
    return out


def load_times(float_path: Path, int8_path: Path, tries: int = 3) -> dict[str, float]:
    res = interleaved({"float": lambda: session(float_path), "int8": lambda: session(int8_path)}, 2 * tries)
    return {k: round(v[0], 4) for k, v in res.items()}


def _rss_mb(field: str = "VmRSS:") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def probe(path: str, kind: str) -> None:
    """(child process) MB of RSS the session adds after opening and at peak while running."""
    import onnxruntime  # noqa: F401  (imported before the baseline)

    if kind == "crnn":
        from training.quantize import rec_batches
        inputs = rec_batches([c for c in measure_lines(48)["zh_doc_xfund_train_lines"][0]] * 2, 32)
    else:
        inputs = [det_input(p.rgb, VARIANT[kind]) for p in example_pages()[:4]]
    import gc

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    base = _rss_mb()
    sess = session(Path(path))
    loaded = _rss_mb()
    for x in inputs:
        sess.run(None, {"x": x})
    print(json.dumps({"after_load_mb": round(loaded - base, 1), "peak_mb": round(_rss_mb("VmHWM:") - base, 1),
                      "end_mb": round(_rss_mb() - base, 1)}))


def rss(path: Path, kind: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.quantize_report", "--probe", str(path), kind],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated (default: every model with an int8 file)")
    parser.add_argument("--int8", action="append", default=[], help="MODEL=PATH (default weights/MODEL.int8.onnx)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--det-pages", type=int, nargs=2, metavar=("SYNTHETIC", "REBUILT"),
                        default=[DET_PAGES["synthetic"], DET_PAGES["rebuilt"]],
                        help="synthetic pages, and rebuilt pages per train set (SROIE, XFUND)")
    parser.add_argument("--pipeline", action="store_true", help="also run the examples end to end")
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    DET_PAGES.update(synthetic=args.det_pages[0], rebuilt=args.det_pages[1])
    if args.probe:
        probe(*args.probe)
        return 0
    paths = {m: WEIGHTS / int8_name(m) for m in MODELS}  # (det.int8.onnx is not shipped: --int8 det=PATH)
    paths.update(dict(item.split("=", 1) for item in args.int8))
    report: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                              "loadavg": os.getloadavg()[0]}
    models = args.models.split(",") if args.models else [m for m in MODELS if Path(paths[m]).exists()]
    for model in models:
        float_path, int8_path = WEIGHTS / MODELS[model], Path(paths[model])
        row: dict[str, Any] = {"int8_file": str(int8_path), "bytes": {"float": float_path.stat().st_size,
                                                                      "int8": int8_path.stat().st_size}}
        row["load_s"] = load_times(float_path, int8_path)
        row["rss_mb"] = {"float": rss(float_path, model), "int8": rss(int8_path, model)}
        if model == "crnn":
            row["lines"] = report_recognizer(float_path, int8_path, args.lines)
        else:
            row["pages"] = report_detector(model, float_path, int8_path, args.repeats)
        report[model] = row
        print(json.dumps({model: row}, ensure_ascii=False), flush=True)
    if args.pipeline:
        report["pipeline_examples"] = report_pipeline(WEIGHTS / MODELS["det_small"], Path(paths["det_small"]),
                                                      WEIGHTS / MODELS["crnn"], Path(paths["crnn"]))
        print(json.dumps({"pipeline_examples": report["pipeline_examples"]}), flush=True)
    report["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
