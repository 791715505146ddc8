"""Study: should ``model="auto"`` re-read only the doubtful stretches of a line?

    OMP_NUM_THREADS=1 python -m training.study_reread_windows [--contexts 1 2 3] [--json runs/reread_windows.json]

Reads the VALIDATION slice of ``../shared/train`` (``training.choose_cascade.validation_images``) and the 800
web-style validation lines of ``training.zh_text`` (held-out reviews, rendered; the slice has no web Chinese);
nothing else. Each line is read by the fast model and the accurate model as shipped. Then, for each threshold of
``THRESHOLDS`` and each context, the cascade is predicted two ways for the lines below the threshold:

* ``whole``: the accurate model's reading of the whole line (the cascade as shipped);
* ``windows``: the accurate model reads only the stretches around characters below the threshold, with
  ``context`` characters either side (the whole line where ``windows_to_read`` says so), spliced in.

Reported per domain (XFUND, SROIE, scene words pooled, web-style): char accuracy, and the accurate model's work
(input columns, each read padded to its 160 px) as a share of reading every line whole.

The rule, written before the first run: windows replace whole lines at the context with the least work among
those whose char accuracy at the threshold in force (``IN_FORCE``) is within ``TOLERANCE`` of ``whole`` on every domain, if that
work is at most ``MAX_WORK`` of ``whole``'s. The threshold is then chosen again by ``training.choose_cascade``.

Run once (2026-12-08 00:51 UTC, ``runs/reread_windows.json``): **not adopted**. At the threshold in force the
windows saved 3-6% of the accurate model's work (the lines below it are mostly short: scene words, short form
fields, where a window costs as much as the line) and lost up to 0.07 points on web-style lines; the model card,
"Re-reading only the doubtful stretches", has the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

from ocr.decode import CharSpan
from ocr.recognize.cascade_choice import ACCURATE_PAD_WIDTH
from ocr.recognize.lineprep import input_columns
from ocr.results import LineResult
from ocr.textdist import edit_distance, normalize

log = logging.getLogger("training.study_reread_windows")

#: sure characters kept either side of a doubtful one, so the accurate model reads it in context
CONTEXT = 2
#: windows are read instead of the whole line only if they cost at most this share of its input columns
MAX_WINDOW_SHARE = 0.6

Span = tuple[int, int]  # character indices [start, end) of a line's reading


def doubtful_spans(line: LineResult, below: float, context: int = CONTEXT) -> list[Span]:
    """The stretches around characters read below ``below`` (``context`` characters either side, merged where
    they meet), in reading order; ``[]`` if none is doubtful."""
    n = len(line.chars)
    spans: list[Span] = []
    for i, c in enumerate(line.chars):
        if c.confidence >= below or c.char.isspace():
            continue
        start, end = max(0, i - context), min(n, i + context + 1)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def span_columns(line: LineResult, span: Span) -> tuple[int, int]:
    """The image columns ``[x0, x1)`` of a stretch: cut halfway between its end characters and their neighbours
    (the line's own edges at its ends)."""
    chars = line.chars
    start, end = span
    x0 = 0.0 if start == 0 else (chars[start - 1].x_end + chars[start].x_start) / 2
    x1 = float(line.width) if end == len(chars) else (chars[end - 1].x_end + chars[end].x_start) / 2
    return max(0, int(math.floor(x0))), min(line.width, int(math.ceil(x1)))


def windows_to_read(line: LineResult, below: float, pad_to: int, context: int = CONTEXT) -> list[Span] | None:
    """The stretches to re-read, or None to re-read the whole line: a line with no doubtful character (a low
    confidence spread thin), a turned one, or one whose windows would cost over ``MAX_WINDOW_SHARE`` of it."""
    if line.turned or not line.chars:
        return None
    spans = doubtful_spans(line, below, context)
    if not spans:
        return None
    whole = input_columns(line.height, line.width, pad_to)
    cost = sum(input_columns(line.height, x1 - x0, pad_to) for x0, x1 in (span_columns(line, s) for s in spans))
    return spans if cost <= MAX_WINDOW_SHARE * whole else None


def _trimmed(chars: list[CharSpan]) -> list[CharSpan]:
    """A window's reading without spaces at its edges (the line's own characters there carry them)."""
    start, end = 0, len(chars)
    while start < end and chars[start].char.isspace():
        start += 1
    while end > start and chars[end - 1].char.isspace():
        end -= 1
    return chars[start:end]


def spliced_text(line: LineResult, spans: Sequence[Span], readings: Sequence[LineResult]) -> str:
    """The text of ``line`` with each stretch replaced by the window's reading (``readings[k]`` of ``spans[k]``)."""
    pieces: list[str] = []
    done = 0
    for (start, end), reading in zip(spans, readings):
        pieces += [c.char for c in line.chars[done:start]] + [c.char for c in _trimmed(reading.chars)]
        done = end
    return "".join(pieces + [c.char for c in line.chars[done:]])


#: the cascade's threshold when this ran (0.895) and around it
THRESHOLDS = (0.85, 0.875, 0.895, 0.92, 0.95, 0.97)
IN_FORCE = 0.895
#: char accuracy (fraction) windows may lose against whole lines on any domain
TOLERANCE = 0.0005
#: the windows must save at least a third of the accurate model's work to be worth a second code path
MAX_WORK = 0.67


def _accuracy(labels: list[tuple[str, str, str]], texts: list[str]) -> dict[str, float]:
    """Char accuracy per domain; ``labels``: (domain, label, protocol) per line."""
    chars: dict[str, int] = {}
    errs: dict[str, int] = {}
    for (dom, label, protocol), text in zip(labels, texts):
        truth = normalize(label, protocol)
        chars[dom] = chars.get(dom, 0) + len(truth)
        errs[dom] = errs.get(dom, 0) + edit_distance(normalize(text, protocol), truth)
    return {d: round(100 * (1 - errs[d] / chars[d]), 3) for d in chars}


def verdict(row: dict[str, Any], contexts: Sequence[int]) -> str:
    """The rule (module docstring) on the threshold in force: the context to adopt, or why none."""
    whole = row["whole"]
    passing = [k for k in contexts
               if all(row[f"windows_{k}"]["char"][d] >= whole["char"][d] - 100 * TOLERANCE for d in whole["char"])
               and row[f"windows_{k}"]["work"] <= MAX_WORK * whole["work"]]
    if not passing:
        return "not adopted: no context keeps every domain within the tolerance at most MAX_WORK of the work"
    best = min(passing, key=lambda k: row[f"windows_{k}"]["work"])
    return f"adopt context {best}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--limit", type=int, default=None, help="first N lines of each set (smoke run)")
    parser.add_argument("--json", type=Path, default=Path("runs/reread_windows.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from ocr.recognize.recognizer import Recognizer
    from training.choose_cascade import domain, validation_images
    from training.zh_text import render, validation_texts

    auto = Recognizer.load(model="auto")
    lines, images = validation_images(limit=args.limit)
    labels = [(domain(ln.set_name), ln.label, ln.protocol) for ln in lines]
    web = validation_texts("web", set(auto.fast.charset.chars))[: args.limit or None]
    images += render(web, auto.fast.charset.chars)
    labels += [("web", t, "zh") for t in web]
    fast = auto.fast.recognize(images)
    accurate = auto.accurate.recognize(images)
    log.info("read: %d lines", len(images))
    whole_cost = [input_columns(*img.shape[:2], ACCURATE_PAD_WIDTH) for img in images]
    report: dict[str, Any] = {"lines": len(images), "fast": _accuracy(labels, [r.text for r in fast]),
                              "accurate": _accuracy(labels, [r.text for r in accurate]), "by_threshold": {}}
    cache: dict[tuple[int, tuple[int, int]], Any] = {}
    for t in THRESHOLDS:
        auto.threshold = t
        unsure = auto.unsure(fast)
        row: dict[str, Any] = {"reread_share": round(len(unsure) / len(images), 4)}
        texts = [r.text for r in fast]
        for i in unsure:
            texts[i] = accurate[i].text
        row["whole"] = {"char": _accuracy(labels, texts), "work": round(sum(whole_cost[i] for i in unsure)
                                                                          / sum(whole_cost), 4)}
        for k in args.contexts:
            texts, work, windowed = [r.text for r in fast], 0, 0
            todo: list[tuple[int, list]] = []
            for i in unsure:
                spans = windows_to_read(fast[i], t, ACCURATE_PAD_WIDTH, k)
                if spans is None:
                    texts[i], work = accurate[i].text, work + whole_cost[i]
                    continue
                windowed += 1
                work += sum(input_columns(images[i].shape[0], x1 - x0, ACCURATE_PAD_WIDTH)
                            for x0, x1 in (span_columns(fast[i], s) for s in spans))
                todo.append((i, spans))
            keys = [(i, span_columns(fast[i], s)) for i, spans in todo for s in spans]
            new = list(dict.fromkeys(key for key in keys if key not in cache))
            crops = [images[i][:, x0:x1] for i, (x0, x1) in new]
            cache.update(zip(new, auto.accurate.recognize(crops)))
            for i, spans in todo:
                readings = [cache[(i, span_columns(fast[i], s))] for s in spans]
                texts[i] = spliced_text(fast[i], spans, readings)
            row[f"windows_{k}"] = {"char": _accuracy(labels, texts), "work": round(work / sum(whole_cost), 4),
                                   "windowed_share": round(windowed / max(1, len(unsure)), 4)}
        report["by_threshold"][str(t)] = row
        log.info("t=%s %s", t, json.dumps(row))
    report["verdict"] = verdict(report["by_threshold"][str(IN_FORCE)], args.contexts)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
