"""Command line: ``python -m ocr recognize ...`` and ``python -m ocr page ...``.

    python -m ocr recognize IMG... [--json] [--model fast|accurate|auto]
    python -m ocr recognize --manifest LABELS.tsv --out PREDS.tsv
    python -m ocr page IMG... [--json] [--fields] [--model fast|accurate|auto]
    python -m ocr page --pages PAGE.jsonl --out PREDS.jsonl
    python -m ocr batch INPUT... --out results.jsonl [--workers N] [--resume] [--ray [ADDRESS]]

IMG may be a PDF or a multi-page TIFF for ``page`` (every page is read; ``recognize`` refuses both,
naming them) and, with ``OCR_ALLOW_URLS=1``, an ``http(s)://`` link for ``page`` and ``recognize``
(fetched as ``ocr/url_fetch.py`` allows).

Exit status: 0 read; 1 some image could not be read (one ``error:`` line each); 2 a usage error
(bad options, a malformed ``--manifest`` / ``--pages`` file, images it names missing), one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ocr.batch.cli import on_off, positive_int
from ocr.engines import ENGINES
from ocr.errors import OCRError, UnsupportedImageError
from ocr.imageio import quiet_pillow_warnings
from ocr.fields import extract_fields

log = logging.getLogger("ocr")

ENGINE_HELP = ("auto (default): int8 where the model card says it is within bounds, float elsewhere; "
               "onnx: float; onnx-int8: int8 wherever a current int8 model exists; torch")


class UsageError(OCRError):
    """A command line, or a ``--manifest`` / ``--pages`` file, the CLI cannot run: exit 2, one line."""

    code = "usage_error"
    default_message = "the command line is not valid"


def read_listing(read: Callable[[Path], list], path: Path) -> list:
    """``read(path)`` (a reader of ``ocr.manifest``), its ``ValueError`` for a malformed file turned
    into a :class:`UsageError` (``file:line: why``), so the user sees one line, not a traceback."""
    try:
        return read(path)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_images_exist(listing: Path, images: list[str]) -> None:
    """Every image ``listing`` names is a file (relative to its folder): a wrong folder or manifest is
    one error naming the missing images, before any model loads, not a run of empty readings."""
    root = listing.parent
    missing = [image for image in images if not (root / image).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UsageError(f"{listing}: {len(missing)} image(s) not found (paths are relative to {root}): {shown}")


def manifest_entries(manifest: Path, out: Path | None) -> list[tuple[str, str]]:
    """The ``(image, text)`` pairs of ``--manifest``, checked before the model loads."""
    from ocr.manifest import read_manifest

    if not out:
        raise UsageError("--manifest needs --out")
    entries = read_listing(read_manifest, manifest)
    check_images_exist(manifest, [image for image, _ in entries])
    return entries


def page_entries(pages: Path, out: Path | None) -> list[dict]:
    """The records of ``--pages`` (each naming its ``image``), checked before the models load."""
    from ocr.manifest import read_jsonl_numbered

    if not out:
        raise UsageError("--pages needs --out")
    numbered = read_listing(read_jsonl_numbered, pages)
    for line, record in numbered:
        if not isinstance(record.get("image"), str) or not record["image"]:
            raise UsageError(f'{pages}:{line}: expected an "image" field (the page image\'s path)')
    records = [record for _, record in numbered]
    check_images_exist(pages, [record["image"] for record in records])
    return records


def _progress(done: int, total: int, started: float) -> None:
    if done == total or done % 100 == 0:
        rate = done / max(1e-6, time.time() - started)
        log.info("%d/%d (%.1f/s)", done, total, rate)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def recognize_manifest(entries: list[tuple[str, str]], root: Path, out: Path, recognizer,
                       batch: int = 64) -> tuple[int, int]:
    """Write ``path<TAB>prediction<TAB>confidence`` for every manifest entry (paths relative to
    ``root``), same order; (rows written, images that could not be read).

    An image that exists but cannot be read gets an empty prediction (and a warning) instead of
    stopping the run, as ``batch`` writes an error record and goes on (and, like ``batch``, the
    command then exits 1); missing images were refused before (:func:`manifest_entries`).
    """
    started = time.time()
    rows: list[str] = []
    unread = 0
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
                    unread += 1
        for (rel, _), res in zip(chunk, results):
            text = res.text.replace("\t", " ").replace("\n", " ") if res else ""
            rows.append(f"{rel}\t{text}\t{res.confidence if res else 0.0:.4f}")
        _progress(len(rows), len(entries), started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return len(rows), unread


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

    if args.model == "auto" and args.weights:
        raise UsageError("--model auto reads with the shipped weights of both models: drop --weights")
    entries = manifest_entries(args.manifest, args.out) if args.manifest else None
    if entries is None and not args.images:
        raise UsageError("give image files, or --manifest LABELS.tsv --out PREDS.tsv")
    recognizer = Recognizer.load(args.weights, model=args.model, threads=args.threads, engine=args.engine,
                                 decoder=args.decoder, lm=args.lm)
    if entries is not None:
        n, unread = recognize_manifest(entries, args.manifest.parent, args.out, recognizer)
        log.info("wrote %d predictions to %s", n, args.out)
        if unread:
            print(f"error: {unread} image(s) could not be read (empty predictions written for them)", file=sys.stderr)
        return 1 if unread else 0

    def read(path: Path | str) -> Iterator[tuple[int | None, Any]]:
        from ocr.imageio import load_image

        source = fetched(path)
        refuse_document(source)  # a PDF or a multi-page TIFF is named as one, and sent to `page`
        rgb = load_image(source)  # once, for the reading and for the page check
        result = recognizer.recognize_one(rgb)
        reason = looks_like_page(rgb, result)
        if reason:
            log.warning("%s: read as %r (confidence %.2f) and %s; `recognize` reads one straight text "
                        "line -- for pages and blocks of text use `python -m ocr page %s`",
                        path, result.text, result.confidence, reason, path)
        yield None, result

    return _print_each(args.images, read, args.json, lambda path, res: f"{path}\t{res.text}\t{res.confidence:.3f}")


def refuse_document(source: Path | bytes) -> None:
    """``recognize`` reads line images: a PDF, or a TIFF of several pages, is named as one and sent to ``page``,
    rather than called "not an image" (a PDF) or read as its first page only (a TIFF). Anything else, a file
    that cannot be opened included, is left to the image decoder."""
    from ocr.document import document_of

    doc = document_of(source)
    if doc is None:
        return
    what = "a PDF" if doc.kind == "pdf" else f"a TIFF of {doc.page_count()} pages"
    raise UnsupportedImageError(f"it is {what}; `recognize` reads line images, `python -m ocr page` reads "
                                f"every page of a {doc.name}")


#: ``scheme://`` at the start of an argument: a link, never a file name (a ``Path`` would fold its ``//``)
_LINK = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def input_arg(text: str) -> Path | str:
    """A file path, or an ``http(s)://`` link kept as text; another scheme (ftp://, file://) is a
    usage error saying so, rather than a file "not found" under a mangled name."""
    if not _LINK.match(text):
        return Path(text)
    if text.lower().startswith(("http://", "https://")):
        return text
    raise argparse.ArgumentTypeError(f"only http:// and https:// links are supported, not {text.split('://')[0]}://")


def fetched(source: Path | str) -> Any:
    """A path as is; a link's image bytes, fetched under ``OCR_ALLOW_URLS`` / ``OCR_URL_ALLOW_HOSTS``."""
    if isinstance(source, Path):
        return source
    from ocr.errors import UrlDisabledError
    from ocr.settings import Settings
    from ocr.url_fetch import fetch_image_bytes

    try:
        return fetch_image_bytes(source, Settings.from_env().url_policy())
    except UrlDisabledError:
        raise UrlDisabledError("fetching images by URL is off: set OCR_ALLOW_URLS=1 to allow it") from None


def _print_each(paths: list[Path], read: Callable[[Path], Iterator[tuple[int | None, Any]]], as_json: bool,
                as_text: Callable[[Path, Any], str]) -> int:
    """Read every path, printing each result (a document: one per page, numbered from 1) or one error
    line (a document's page that cannot be read: one for that page, and the other pages are printed);
    1 if any failed."""
    status = 0
    for path in paths:
        try:
            for page, result in read(path):
                if isinstance(result, OCRError):
                    print(f"{path} page {page}\terror: {result}", file=sys.stderr)
                    status = 1
                    continue
                where = {"image": str(path)} if page is None else {"image": str(path), "page": page}
                if as_json:
                    print(json.dumps({**where, **result.to_dict()}, ensure_ascii=False))
                else:
                    print(as_text(path, result) if page is None else f"== {path} page {page} ==\n{as_text(path, result)}")
        except OCRError as exc:
            print(f"{path}\terror: {exc}", file=sys.stderr)
            status = 1
    return status


def cmd_page(args: argparse.Namespace) -> int:
    from ocr.pipeline import OCRPipeline

    pages = page_entries(args.pages, args.out) if args.pages else None
    if pages is None and not args.images:
        raise UsageError("give image, PDF or TIFF files, or --pages PAGE.jsonl --out PREDS.jsonl")
    pipeline = OCRPipeline.load(threads=args.threads, detector=args.detector, model=args.model, engine=args.engine,
                                lm=args.lm)
    if pages is not None:
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
                    result, lines = None, []
                row = {"image": page["image"], "lines": lines}
                if args.fields:
                    row["fields"] = extract_fields(result or []).to_dict()
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                _progress(n, len(pages), started)
        return 0
    from ocr.service import OCRService
    from ocr.settings import Settings

    service = OCRService(pipeline, settings=Settings.from_env())  # its document handling, no second model
    wrap: Callable[[Any], Any] = PageWithFields if args.fields else (lambda page: page)

    def read(path: Path | str) -> Iterator[tuple[int | None, Any]]:
        source = fetched(path)
        doc = service.document(source)  # a PDF or a multi-page TIFF: every page, numbered from 1
        if doc is None:
            yield None, wrap(pipeline.run(source))
            return
        for number, rgb in enumerate(doc.pages(keep_going=True), 1):
            yield number, rgb if isinstance(rgb, OCRError) else wrap(pipeline.run(rgb))

    as_text = (lambda path, result: result.to_text()) if args.fields else (lambda path, result: result.text)
    return _print_each(args.images, read, args.json, as_text)


class PageWithFields:
    """A page read and its key fields (``--fields``): the JSON gains a ``fields`` object, the text a block."""

    def __init__(self, page: Any) -> None:
        self.page, self.fields = page, extract_fields(page)

    def to_dict(self) -> dict[str, Any]:
        return {**self.page.to_dict(), "fields": self.fields.to_dict()}

    def to_text(self) -> str:
        return f"{self.page.text}\n\n{self.fields.to_text()}"


def _model_option(parser: argparse.ArgumentParser) -> None:
    from ocr.recognize.models import MODELS

    parser.add_argument("--model", choices=MODELS, default=None,
                        help="recogniser: fast, accurate, or auto (fast, the unsure lines re-read accurately); "
                        "default: OCR_MODEL, else auto")
    parser.add_argument("--lm", type=on_off, default=None, metavar="on|off",
                        help="decode with the character language model (beam search) and the English word list; "
                        "default: per model, as measured on the validation slice, weights/README.md")


def _default_model(args: argparse.Namespace) -> None:
    """``--model`` left out: ``OCR_MODEL`` (validated by the settings), else auto."""
    if getattr(args, "model", "fast") is None:
        from ocr.settings import Settings

        args.model = Settings.from_env().model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ocr", description="Explainable CRNN OCR")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads to read with: onnxruntime's intra-op threads (torch's with --engine torch), "
                        "and a page's line batches read side by side (default: every core this process may use)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recognize", help="read single text-line images")
    rec.add_argument("images", nargs="*", type=input_arg, help="line images (or http(s) links, OCR_ALLOW_URLS=1)")
    rec.add_argument("--manifest", type=Path, help="labels.tsv: relative/path<TAB>text")
    rec.add_argument("--out", type=Path, help="predictions TSV for --manifest")
    rec.add_argument("--weights", type=Path, default=None)
    rec.add_argument("--json", action="store_true")
    rec.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    rec.add_argument("--decoder", choices=["greedy", "beam"], default="greedy",
                     help="with --lm off: best path (greedy, the default) or beam search without the language "
                     "model; with the language model on (the default) unsure lines are beam-searched anyway")
    _model_option(rec)
    rec.set_defaults(func=cmd_recognize)
    page = sub.add_parser("page", help="read whole pages: detect lines, then recognise them")
    page.add_argument("images", nargs="*", type=input_arg,
                      help="page images, PDFs or multi-page TIFFs (every page); http(s) links with OCR_ALLOW_URLS=1")
    page.add_argument("--pages", type=Path, help="page.jsonl of a page set")
    page.add_argument("--out", type=Path, help="predictions JSONL for --pages")
    page.add_argument("--json", action="store_true")
    page.add_argument("--fields", action="store_true",
                      help="also the key fields (receipts: company, date, address, total; Chinese VAT invoices: "
                      "code, number, date, parties, amounts), with confidence and source lines")
    page.add_argument("--detector", choices=["db", "tiny", "small", "classical"], default="db",
                      help="text detector: PP-OCRv6 DB tiny or small, or plain OpenCV "
                      "(default db: the pipeline's default)")
    _model_option(page)
    page.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    page.set_defaults(func=cmd_page)
    from ocr.batch import cli as batch_cli

    batch = sub.add_parser("batch", help="read files, folders, globs and PDFs into one JSON-lines file",
                           description=batch_cli.DESCRIPTION, epilog=batch_cli.EPILOG)
    batch_cli.add_arguments(batch)
    batch.set_defaults(func=batch_cli.execute)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    if not args.verbose:
        quiet_pillow_warnings()
    try:
        _default_model(args)
        status = args.func(args)
        sys.stdout.flush()  # a reader that left (``| head``) shows here, not in Python's exit
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except OCRError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: file not found: {exc.filename}", file=sys.stderr)
        return 2
    except (IsADirectoryError, PermissionError) as exc:
        print(f"error: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


def _stdout_closed() -> int:
    """Python's recipe for a closed pipe: stdout goes to devnull (so the flush at exit cannot fail
    again and print a traceback) and the command ends quietly, status 141 (128 + SIGPIPE), as a Unix tool
    killed by the closed pipe ends: 1 would say an image could not be read."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor behind stdout (tests): nothing to redirect
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
