"""Can a shown confidence be trusted? How often a character shown at a confidence is right, per model.

    OMP_NUM_THREADS=2 python -m benchmarks.calibration [--models fast accurate auto] [--threads 2]
        [--limit N] [--out BENCHMARKS.md | -] [--json PATH]

The UI colours every character by its confidence (bounds in ``ocr.results``: >= 90% high, 70-90% mid,
< 70% low) and the explanations start from the least confident ones, so the colours must mean what they
say. Every line of the ``../shared/eval`` line sets is read as the app reads it (the model's decoder,
language model, turning and, for ``auto``, the cascade). Each reported character is normalised with its
set's protocol (a character the protocol does not score, e.g. a space, is left out) and aligned to the
label with the error explanation's own alignment (``explain.errors.align``): it is *right* where the
alignment matches it. Per band: the share of characters, their mean confidence and the share that are
right. Label characters the reading lacks have no confidence to show; they are counted apart (*missed*).
ECE: expected calibration error over ten equal-width confidence bins, weighted by characters (0 = every
bin's accuracy equals its mean confidence). Lines: the line confidence against the line being exactly
right (the line-accuracy protocol). Nothing here is tuned: it only measures.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.lines import DEFAULT_EVAL_ROOT, SETS, read_rgb
from benchmarks.report import package_version, positive_int, write_marked_section
from explain.errors import align
from ocr.manifest import read_manifest
from ocr.results import HIGH_CONFIDENCE, LOW_CONFIDENCE
from ocr.textdist import normalize

log = logging.getLogger("benchmarks.calibration")

MARK_START = "<!-- bench:calibration:start -->"
MARK_END = "<!-- bench:calibration:end -->"
#: the UI's bands (``demo.render.conf_class``), low to high: (name, lower bound)
UI_BANDS = ((f"< {LOW_CONFIDENCE:.0%} low", 0.0), (f"{LOW_CONFIDENCE * 100:.0f}–{HIGH_CONFIDENCE:.0%} mid", LOW_CONFIDENCE),
            (f">= {HIGH_CONFIDENCE:.0%} high", HIGH_CONFIDENCE))
#: finer bands for the table under the UI's
FINE_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
ECE_BINS = 10
CHUNK = 32


def scored_chars(chars: Sequence[tuple[str, float]], label: str, protocol: str) -> tuple[list[tuple[float, bool]], int]:
    """``(confidence, right)`` for every reported character the protocol scores, and how many label
    characters the reading lacks (deletions of the alignment)."""
    seq: list[str] = []
    confs: list[float] = []
    for ch, conf in chars:
        for scored in normalize(ch, protocol):  # "" for a space (zh/upper) or punctuation (alnum)
            seq.append(scored)
            confs.append(conf)
    right = [False] * len(seq)
    missed = 0
    for op in align(seq, normalize(label, protocol)):
        if op.op == "match":
            right[op.pred_index] = True  # type: ignore[index]
        elif op.op == "delete":
            missed += 1
    return list(zip(confs, right)), missed


@dataclass
class Tally:
    """Characters and lines of one model on one set (or pooled)."""

    chars: list[tuple[float, bool]] = field(default_factory=list)
    missed: int = 0
    label_chars: int = 0
    lines: list[tuple[float, bool]] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        self.chars += other.chars
        self.missed += other.missed
        self.label_chars += other.label_chars
        self.lines += other.lines


def band_rows(pairs: Sequence[tuple[float, bool]], edges: Sequence[float]) -> list[dict[str, Any]]:
    """Per band ``[edges[i], edges[i+1])`` (the last one closed): count, share, mean confidence, accuracy."""
    conf = np.array([c for c, _ in pairs], float)
    right = np.array([r for _, r in pairs], bool)
    rows = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (conf >= lo) & ((conf < hi) if i < len(edges) - 2 else (conf <= hi))
        n = int(inside.sum())
        rows.append({"lo": lo, "hi": hi, "n": n, "share": n / max(len(conf), 1),
                     "mean_confidence": float(conf[inside].mean()) if n else None,
                     "accuracy": float(right[inside].mean()) if n else None})
    return rows


def ece(pairs: Sequence[tuple[float, bool]], bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: sum over equal-width bins of |accuracy - mean confidence| x share."""
    if not pairs:
        return None
    rows = band_rows(pairs, np.linspace(0.0, 1.0, bins + 1).tolist())
    return float(sum(r["share"] * abs(r["accuracy"] - r["mean_confidence"]) for r in rows if r["n"]))


def read_set(reader: Any, root: Path, set_name: str, limit: int | None) -> Tally:
    """One model's tally on one eval line set."""
    protocol = SETS[set_name].protocol
    items = read_manifest(root / set_name / "labels.tsv")[:limit]
    tally = Tally()
    for start in range(0, len(items), CHUNK):
        chunk = [(read_rgb(root / set_name / rel), label) for rel, label in items[start:start + CHUNK]]
        chunk = [(img, label) for img, label in chunk if img is not None]
        for result, (_, label) in zip(reader.recognize([img for img, _ in chunk]), chunk):
            chars, missed = scored_chars([(c.char, c.confidence) for c in result.chars], label, protocol)
            tally.chars += chars
            tally.missed += missed
            tally.label_chars += len(normalize(label, protocol))
            tally.lines.append((result.confidence, normalize(result.text, protocol) == normalize(label, protocol)))
    return tally


def measure(models: Sequence[str], root: Path, sets: Sequence[str], threads: int,
            limit: int | None) -> dict[str, Any]:
    """Per model, per set (and ``all`` pooled): the :func:`summary` of its tally."""
    from ocr.recognize.recognizer import Recognizer

    out: dict[str, Any] = {}
    for model in models:
        reader = Recognizer.load(model=model, threads=threads)
        started = time.perf_counter()
        per_set = {name: read_set(reader, root, name, limit) for name in sets}
        pooled = Tally()
        for tally in per_set.values():
            pooled.add(tally)
        out[model] = {name: summary(t) for name, t in {**per_set, "all": pooled}.items()}
        log.info("%s: %.0f s, ECE %.4f", model, time.perf_counter() - started, out[model]["all"]["ece"])
    return out


def summary(tally: Tally) -> dict[str, Any]:
    """Characters and lines of one tally by band, and their calibration errors."""
    return {"chars": len(tally.chars), "missed": tally.missed, "label_chars": tally.label_chars, "ece": ece(tally.chars),
            "ui_bands": band_rows(tally.chars, [lo for _, lo in UI_BANDS] + [1.0]),
            "fine_bands": band_rows(tally.chars, FINE_EDGES),
            "lines": len(tally.lines), "line_ece": ece(tally.lines),
            "line_bands": band_rows(tally.lines, [lo for _, lo in UI_BANDS] + [1.0])}


def _cell(row: dict[str, Any]) -> str:
    if not row["n"]:
        return "—"
    return f"{100 * row['accuracy']:.1f}% right ({100 * row['share']:.1f}% of chars)"


def markdown(results: dict[str, Any], command: str, limit: int | None) -> str:
    sets = [name for name in next(iter(results.values())) if name != "all"]
    lines = ["## Confidence calibration (is a shown confidence right that often?)", "",
             f"Command: `{command}`  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; onnxruntime "
             f"{package_version('onnxruntime')}; {'first %d lines of each set' % limit if limit else 'every line of each set'}.",
             "", __doc__.split("\n\n", 2)[2].strip(), ""]
    for model, by_set in results.items():
        lines += [f"### `{model}`", "", "| UI band | " + " | ".join(f"{s}" for s in sets) + " | all |",
                  "|---|" + "---|" * (len(sets) + 1)]
        for k, (name, _) in enumerate(UI_BANDS[::-1]):
            i = len(UI_BANDS) - 1 - k
            lines.append(f"| {name} | " + " | ".join(_cell(by_set[s]["ui_bands"][i]) for s in [*sets, "all"]) + " |")
        lines.append("| ECE (chars) | " + " | ".join(f"{by_set[s]['ece']:.3f}" for s in [*sets, "all"]) + " |")
        lines.append("| label chars the reading lacks | " + " | ".join(
            f"{by_set[s]['missed']} of {by_set[s]['label_chars']}" for s in [*sets, "all"]) + " |")
        lines.append(f"| lines >= {HIGH_CONFIDENCE:.0%}: exactly right | " + " | ".join(
            _cell(by_set[s]["line_bands"][-1]).replace("chars", "lines") for s in [*sets, "all"]) + " |")
        lines.append("| ECE (lines) | " + " | ".join(f"{by_set[s]['line_ece']:.3f}" for s in [*sets, "all"]) + " |")
        fine = by_set["all"]["fine_bands"]
        lines += ["", "All sets pooled, finer bands: " + "; ".join(
            f"[{r['lo']:g}, {r['hi']:g}{']' if r['hi'] == 1.0 else ')'} {r['n']} chars, mean confidence "
            f"{100 * r['mean_confidence']:.1f}%, right {100 * r['accuracy']:.1f}%" for r in fine if r["n"]) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fast", "accurate", "auto"], choices=["fast", "accurate", "auto"])
    parser.add_argument("--root", type=Path, default=DEFAULT_EVAL_ROOT)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--limit", type=positive_int, default=None, help="lines per set (a smoke run)")
    parser.add_argument("--out", default="BENCHMARKS.md", help="markdown file to update, or - to print")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = measure(args.models, args.root, args.sets, args.threads, args.limit)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    command = "python -m benchmarks.calibration " + " ".join(argv if argv is not None else sys.argv[1:])
    body = markdown(results, command.strip(), args.limit)
    if args.out == "-":
        print(body)
    else:
        write_marked_section(Path(args.out), MARK_START, MARK_END, body)


if __name__ == "__main__":
    main()
