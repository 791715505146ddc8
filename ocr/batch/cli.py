"""``python -m ocr batch``: read a whole archive into one JSON-lines file.

    python -m ocr batch INPUT... --out results.jsonl [--workers N] [--resume] [--ray [ADDRESS]] [--fields]
    python -m ocr batch --files-from list.txt --out results.jsonl       # one INPUT per line; - reads stdin

INPUT: image, PDF or TIFF files (a PDF or a multi-page TIFF: every page), folders (read recursively),
glob patterns (quote them; ``**`` recurses) and zip / tar / tar.gz archives (every member that is a page).
One line per page: the REST answer plus ``source``, ``page`` (1-based), ``sha256`` (of the input
file or member) and the run's ``options``; a page that could not be read (or an input that does not
exist) is ``{"success": false, "source", "page", "sha256", "error": {"code", "message"}}`` and the run
goes on. ``--resume`` continues a stopped run with the same options: pages already in the output
(matched by content hash) are skipped. Ctrl-C stops cleanly.

Exit status: 0 every page read; 1 some pages are error records (a missing input included, and those a
resumed output already held); 2 nothing could be run (bad arguments, no input exists, ``--resume`` with
other options, models missing); 130 stopped by Ctrl-C (``--resume`` continues).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ocr.batch.archives import MAX_MEMBERS
from ocr.batch.inputs import NotFoundError, PageTask, Plan, plan
from ocr.batch.output import Existing, JsonlWriter, count_lines, options_conflict, read_back, remaining, repair_tail
from ocr.batch.reader import ReaderFactory, load_reader
from ocr.batch.runner import FIELDS_HOOK, Summary, WorkerFailed, default_workers, resolve_fields, run_pool
from ocr.errors import OCRError
from ocr.recognize.models import MODELS
from ocr.settings import Settings, switch_word

log = logging.getLogger("ocr.batch")

LOCAL = "local"


DESCRIPTION = __doc__.split("\n\n")[0]
EPILOG = "Put --ray after the inputs (or write --ray=ADDRESS)."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ocr batch", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    return parser


def on_off(value: str) -> bool:
    """``--lm on|off`` (also true/false, 1/0, yes/no: ``ocr.settings.SWITCH_WORDS``), every command's switch."""
    switch = switch_word(value)
    if switch is None:
        raise argparse.ArgumentTypeError("give on or off")
    return switch


def positive_int(text: str) -> int:
    """An argparse type for counts that must be 1 or more (0 or -1 would silently mean "no limit" or
    "refuse everything"): anything else is the usual usage error, exit 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch options (also the ``batch`` subcommand of ``python -m ocr``); ``--max-pages``
    defaults to ``OCR_PDF_MAX_PAGES`` (None here: read when the run starts)."""
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="files, folders, glob patterns, archives")
    parser.add_argument("--files-from", metavar="LIST", default=None,
                        help="also read the inputs listed in LIST, one per line (- for stdin; blank lines skipped): "
                        "more paths than a command line holds")
    parser.add_argument("--out", type=Path, required=True, help="results, one JSON line per page")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help=f"worker processes (default: the cores, {default_workers()}); with --ray, actors")
    parser.add_argument("--resume", action="store_true", help="continue --out: skip inputs already in it")
    parser.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                        help="run on Ray: a local Ray without ADDRESS, else the cluster at ADDRESS "
                             "(auto, HOST:PORT or ray://HOST:10001)")
    parser.add_argument("--fields", action="store_true", help="also extract invoice fields into \"fields\"")
    parser.add_argument("--model", choices=MODELS, default=None,
                        help="recogniser: auto, fast or accurate (default: OCR_MODEL, else auto); fast reads an "
                        "archive 1.15-1.45x sooner")
    parser.add_argument("--lm", type=on_off, default=None, metavar="on|off",
                        help="decode with the character language model and the English word list (default: per "
                        "model, as measured on the validation slice; each record says \"lm\")")
    parser.add_argument("--max-pages", type=positive_int, default=None,
                        help="pages per PDF or multi-page TIFF, at least 1 (default: OCR_PDF_MAX_PAGES, 20)")
    parser.add_argument("--max-members", type=positive_int, default=MAX_MEMBERS,
                        help=f"entries an archive may hold, folders included (default: {MAX_MEMBERS})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway without a terminal)")


def _ray_address(args: argparse.Namespace) -> None:
    """``--ray invoices/`` means a local Ray and one more input, not a cluster named invoices/."""
    if args.ray not in (None, LOCAL) and os.path.exists(args.ray):
        args.inputs.append(args.ray)
        args.ray = LOCAL


def _check_output(out: Path, resume: bool) -> None:
    """Refuse an --out that is a folder, in a folder that does not exist (a typo must not make a new tree),
    or that holds records and no --resume."""
    if out.exists() and out.is_dir():
        raise OCRError(f"--out {out} is a folder; give a file name such as {out / 'results.jsonl'}")
    if not out.parent.is_dir():
        raise OCRError(f"the folder of --out does not exist: {out.parent} (create it first)")
    if not resume and out.exists() and out.stat().st_size > 0:
        raise OCRError(f"{out} already holds {count_lines(out)} record(s): pass --resume to continue it, "
                       "or choose another --out")


def listed_inputs(args: argparse.Namespace) -> list[str]:
    """The command line's inputs, then those of ``--files-from`` (one per line, as typed: relative to the
    current folder; a line is a whole path, spaces included). None at all is a usage error."""
    inputs = list(args.inputs)
    source = getattr(args, "files_from", None)
    if source is not None:
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a UTF-8 text file"
            raise OCRError(f"--files-from {source}: {reason}") from None
        inputs += [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not inputs:
        where = f" ({source} lists none)" if source is not None else ""
        raise OCRError(f"no input given{where}: name files, folders, globs or archives, or --files-from LIST")
    return inputs


def _listing(names: list[str], shown: int = 5) -> str:
    """A few names and how many more: one line, however many files were skipped."""
    more = f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _describe(p: Plan) -> None:
    """What planning found, on stderr: missing inputs (when something else is read; else the error says
    it), one line per kind of skipped file, duplicates, and the count."""
    for task in p.tasks if p.readable else []:
        if task.error and task.error["code"] == NotFoundError.code:
            log.warning("%s: %s (an error record)", task.source, task.error["message"])
    for text in p.empty:
        log.warning("nothing to read in %s", text)
    for reason, names in p.skipped.items():
        log.warning("skipped %d file(s) %s: %s", len(names), reason, _listing(names))
    for dup, first in p.duplicates:
        log.info("%s has the same content as %s: read once", dup, first)
    extra = f", {len(p.duplicates)} duplicate(s) skipped" if p.duplicates else ""
    log.info("%d input(s), %d page(s)%s", p.inputs, len(p.tasks) - len(p.missing), extra)


def _check_plan(p: Plan) -> None:
    """Nothing to read at all is a usage error (exit 2), naming the arguments that do not exist."""
    if p.readable:
        return
    if p.missing:
        raise OCRError("nothing to read: " + "; ".join(f"{t.source}: {t.error['message']}" for t in p.tasks))
    raise OCRError("no image, PDF or archive found in the inputs given")


def reading_options(args: argparse.Namespace, settings: Settings, limits: Any) -> dict[str, Any]:
    """What changes a record's content, stored in every record: a resume must read with the same."""
    return {"model": getattr(args, "model", None) or settings.model, "lm": getattr(args, "lm", None),
            "fields": bool(args.fields), "engine": settings.engine, "max_pages": limits.max_pages,
            "pdf_max_dpi": limits.max_dpi, "pdf_max_side": limits.max_side,
            "max_members": getattr(args, "max_members", MAX_MEMBERS)}


def _existing(args: argparse.Namespace, options: dict[str, Any]) -> Existing:
    """What --resume continues (nothing without it); other options than the file's are refused."""
    if not args.resume:
        return Existing()
    repair_tail(args.out)
    existing = read_back(args.out)
    conflict = options_conflict(existing, options)
    if conflict:
        raise OCRError(f"--resume with other options than {args.out} was read with ({conflict}): "
                       "use the same options, or another --out")
    return existing


def run(args: argparse.Namespace, factory: ReaderFactory | None = None) -> Summary:
    """Plan, skip what ``--resume`` finds done, read the rest with the chosen backend (``factory``: the
    service with ``--model`` and ``--lm``)."""
    factory = factory or functools.partial(load_reader, model=getattr(args, "model", None),
                                           lm=getattr(args, "lm", None))
    fields_spec = FIELDS_HOOK if args.fields else None
    resolve_fields(fields_spec)  # a missing extractor fails here, before any model loads
    _check_output(args.out, args.resume)
    settings = Settings.from_env()
    limits = settings.pdf_limits()
    limits = dataclasses.replace(limits, max_pages=args.max_pages or limits.max_pages)
    options = reading_options(args, settings, limits)
    existing = _existing(args, options)
    work = plan(listed_inputs(args), limits, options["max_members"])
    _describe(work)
    _check_plan(work)
    todo, skipped = remaining(work.tasks, existing.done, existing.failed)
    summary = Summary(planned=len(work.tasks), skipped=skipped, earlier_errors=existing.errors)
    started = time.perf_counter()
    with JsonlWriter(args.out, stamp={"options": options}) as writer:
        _read(args, todo, writer, summary, factory, fields_spec)
    summary.seconds = time.perf_counter() - started
    return summary


def _read(args: argparse.Namespace, todo: list[PageTask], writer: JsonlWriter, summary: Summary,
          factory: ReaderFactory, fields_spec: str | None) -> None:
    """The chosen backend: the process pool, or Ray (local, or at ``--ray ADDRESS``)."""
    progress = not args.no_progress and sys.stderr.isatty()
    if args.ray is None:
        run_pool(todo, writer, summary, workers=args.workers or default_workers(), factory=factory,
                 fields_spec=fields_spec, progress=progress)
        return
    from ocr.batch.ray_job import run_ray

    address = None if args.ray == LOCAL else args.ray
    run_ray(todo, writer, summary, address=address, workers=args.workers, factory=factory,
            fields_spec=fields_spec, progress=progress, local_cpus=args.workers or default_workers())


def main(argv: Sequence[str] | None = None) -> int:
    return execute(build_parser().parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Run parsed options; the exit status (0 read, 1 some error records, 2 nothing ran, 130 stopped)."""
    _ray_address(args)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        summary = run(args)
    except (OCRError, WorkerFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.text(), file=sys.stderr)
    if summary.interrupted:
        print(f"continue with: the same command and --resume (output: {args.out})", file=sys.stderr)
        return 130
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
