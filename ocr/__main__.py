"""Command line: ``python -m ocr recognize ...`` and ``python -m ocr page ...``.

    python -m ocr recognize IMG... [--json]
    python -m ocr recognize --manifest LABELS.tsv --out PREDS.tsv
    python -m ocr page IMG... [--json]
    python -m ocr page --pages PAGE.jsonl --out PREDS.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ocr.engines import ENGINES
from ocr.errors import OCRError

log = logging.getLogger("ocr")

ENGINE_HELP = ("auto (default): int8 where the model card says it is within bounds, float elsewhere; "
               "onnx: float; onnx-int8: int8 wherever a current int8 model exists; torch")


def _progress(done: int, total: int, started: float) -> None:
    if done == total or done % 100 == 0:
        rate = done / max(1e-6, time.time() - started)
        log.info("%d/%d (%.1f/s)", done, total, rate)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def recognize_manifest(manifest: Path, out: Path, recognizer, batch: int = 64) -> int:
    """Write ``path<TAB>prediction<TAB>confidence`` for every manifest line, same order.

    An unreadable image gets an empty prediction (and a warning) instead of stopping the run.
    """
    from ocr.manifest import read_manifest

    entries = read_manifest(manifest)
    root = manifest.parent
    started = time.time()
    rows: list[str] = []
    for chunk in _chunks(entries, batch):
        paths = [root / rel for rel, _ in chunk]
        try:
            results = recognizer.recognize(paths)
        except OCRError:
            results = []
            for path in paths:
                try:
                    results.append(recognizer.recognize_one(path))
                except OCRError as exc:
                    log.warning("%s: %s", path, exc)
                    results.append(None)
        for (rel, _), res in zip(chunk, results):
            text = res.text.replace("\t", " ").replace("\n", " ") if res else ""
            rows.append(f"{rel}\t{text}\t{res.confidence if res else 0.0:.4f}")
        _progress(len(rows), len(entries), started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def stacked_rows(rgb: Any) -> int:
    """Rows of text stacked one above another in ``rgb`` (plain OpenCV line finding): a line
    crop has 1; a page or a paragraph has more, and ``recognize`` would read it as one line."""
    from ocr.detect import ClassicalDetector

    spans = sorted((box.aabb[1], box.aabb[3]) for box in ClassicalDetector().detect(rgb).boxes)
    rows, bottom = 0, float("-inf")
    for top, low in spans:
        if top >= bottom - 0.5 * (low - top):  # clear of the row above by at least half this box
            rows += 1
        bottom = max(bottom, low) if top < bottom else low
    return rows


#: a read below this line confidence (or an empty one) is worth explaining when the image is page-like
PAGE_HINT_CONFIDENCE = 0.5


def looks_like_page(rgb: Any, result: Any) -> str | None:
    """Why the image ``rgb`` looks like more than one line when ``recognize`` read (almost) nothing from it."""
    if result.text.strip() and result.confidence >= PAGE_HINT_CONFIDENCE:
        return None
    if result.height >= 150 and result.width < 2 * result.height:
        return f"{result.width}x{result.height} px is page-shaped"
    rows = stacked_rows(rgb)
    return f"it holds {rows} rows of text" if rows >= 2 else None


def cmd_recognize(args: argparse.Namespace) -> int:
    from ocr.recognize.recognizer import Recognizer

    recognizer = Recognizer.load(args.weights, threads=args.threads, engine=args.engine, decoder=args.decoder)
    if args.manifest:
        if not args.out:
            raise SystemExit("--manifest needs --out")
        n = recognize_manifest(args.manifest, args.out, recognizer)
        log.info("wrote %d predictions to %s", n, args.out)
        return 0
    if not args.images:
        raise SystemExit("give image files, or --manifest LABELS.tsv --out PREDS.tsv")
    def read(path: Path) -> Any:
        from ocr.imageio import load_image

        rgb = load_image(path)  # once, for the reading and for the page check
        result = recognizer.recognize_one(rgb)
        reason = looks_like_page(rgb, result)
        if reason:
            log.warning("%s: read as %r (confidence %.2f) and %s; `recognize` reads one straight text "
                        "line -- for pages and blocks of text use `python -m ocr page %s`",
                        path, result.text, result.confidence, reason, path)
        return result

    return _print_each(args.images, read, args.json, lambda path, res: f"{path}\t{res.text}\t{res.confidence:.3f}")


def _print_each(paths: list[Path], read: Callable[[Path], Any], as_json: bool,
                as_text: Callable[[Path, Any], str]) -> int:
    """Read every path, printing one result (or one error line) each; 1 if any failed."""
    status = 0
    for path in paths:
        try:
            result = read(path)
        except OCRError as exc:
            print(f"{path}\terror: {exc}", file=sys.stderr)
            status = 1
            continue
        if as_json:
            print(json.dumps({"image": str(path), **result.to_dict()}, ensure_ascii=False))
        else:
            print(as_text(path, result))
    return status


def cmd_page(args: argparse.Namespace) -> int:
    from ocr.pipeline import OCRPipeline

    pipeline = OCRPipeline.load(threads=args.threads, detector=args.detector, engine=args.engine)
    if args.pages:
        if not args.out:
            raise SystemExit("--pages needs --out")
        from ocr.manifest import read_jsonl

        pages = read_jsonl(args.pages)
        started = time.time()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as f:
            for n, page in enumerate(pages, 1):
                try:
                    result = pipeline.run(args.pages.parent / page["image"])
                    lines = [{"box": [round(v, 1) for v in ln.box], "text": ln.text,
                              "confidence": round(ln.confidence, 4)} for ln in result.lines]
                except OCRError as exc:
                    log.warning("%s: %s", page["image"], exc)
                    lines = []
                f.write(json.dumps({"image": page["image"], "lines": lines}, ensure_ascii=False) + "\n")
                _progress(n, len(pages), started)
        return 0
    if not args.images:
        raise SystemExit("give image files, or --pages PAGE.jsonl --out PREDS.jsonl")
    return _print_each(args.images, pipeline.run, args.json, lambda path, result: result.text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ocr", description="Explainable CRNN OCR")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recognize", help="read single text-line images")
    rec.add_argument("images", nargs="*", type=Path)
    rec.add_argument("--manifest", type=Path, help="labels.tsv: relative/path<TAB>text")
    rec.add_argument("--out", type=Path, help="predictions TSV for --manifest")
    rec.add_argument("--weights", type=Path, default=None)
    rec.add_argument("--json", action="store_true")
    rec.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    rec.add_argument("--decoder", choices=["greedy", "beam"], default="greedy")
    rec.set_defaults(func=cmd_recognize)
    page = sub.add_parser("page", help="read whole pages: detect lines, then recognise them")
    page.add_argument("images", nargs="*", type=Path)
    page.add_argument("--pages", type=Path, help="page.jsonl of a page set")
    page.add_argument("--out", type=Path, help="predictions JSONL for --pages")
    page.add_argument("--json", action="store_true")
    page.add_argument("--detector", choices=["db", "tiny", "small", "classical"], default="db",
                      help="text detector: PP-OCRv6 DB tiny or small, or plain OpenCV "
                      "(default db: the pipeline's default)")
    page.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    page.set_defaults(func=cmd_page)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except OCRError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: file not found: {exc.filename}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
