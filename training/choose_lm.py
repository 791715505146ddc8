"""Choose, per model, the language model's weight and whether it is on by default, on the VALIDATION
slice of ``../shared/train`` (``training.real_data.read_all()[1]``: the only data this module reads).

    OMP_NUM_THREADS=1 python -m training.choose_lm [--models fast accurate] [--threads 1] [--lexicon]
        [--out ocr/recognize/lm_choice.py] [--json runs/lm_choice.json]

1. Every validation crop is read greedily, then with beam search + the language model at each weight of
   ``WEIGHTS``, through ``Recognizer.recognize`` itself (so the time is what a user pays).
2. The weight: the best mean over the three domains (Chinese documents, receipts, scene words) of
   char and line accuracy.
3. On by default only if at that weight the mean rises by at least ``MIN_GAIN`` points, no domain's
   char accuracy falls by more than ``MAX_LOSS`` points, and the time per scene word grows by at most
   ``MAX_EXTRA_MS`` (the budget that keeps the fast model's word time under PP-OCRv6 tiny's).
4. ``--lexicon`` (the language model's weight stays as chosen): the word list (``ocr.recognize.lexicon``) at
   each margin of ``MARGINS``, against the language model without it; the margin with the best mean, on by
   default by the rule of 3 with the language model alone in place of greedy decoding. A run without
   ``--lexicon`` (a new weight) drops the word list: run ``--lexicon`` after it.
"""

from __future__ import annotations

import argparse
import json
import logging
import pprint
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ocr.imageio import load_image
from ocr.textdist import score_lines
from training.choose_cascade import domain, read_by_set, timing
from training.real_data import RealLine, read_all

log = logging.getLogger("training.choose_lm")

WEIGHTS = (0.1, 0.15, 0.2, 0.25, 0.3)
#: the word list's margins tried, nats (``ocr.recognize.lexicon.corrected_labels``)
MARGINS = (1.0, 2.0, 3.0, 4.0, 6.0)
#: beams kept per frame: 4 read as well as 8 on the validation slice (fast model, weight 0.2) at 3/4 of the time
BEAM_WIDTH = 4
MIN_GAIN = 0.2
MAX_LOSS = 0.1
MAX_EXTRA_MS = 1.5


def per_domain(lines: Sequence[RealLine], texts: Sequence[str]) -> dict[str, dict[str, float]]:
    """Char and line accuracy (%) per domain, scene word sets pooled (``ocr.textdist.score_lines``)."""
    groups: dict[str, tuple[list[str], list[str], str]] = {}
    for ln, text in zip(lines, texts):
        group = groups.setdefault(domain(ln.set_name), ([], [], ln.protocol))
        group[0].append(text)
        group[1].append(ln.label)
    scores = {name: score_lines(p, t, protocol) for name, (p, t, protocol) in groups.items()}
    return {name: {"char": round(100 * (sc["char_accuracy"] or 0.0), 2), "line": round(100 * sc["line_accuracy"], 2)}
            for name, sc in scores.items()}


def mean_score(scores: dict[str, dict[str, float]]) -> float:
    return float(np.mean([v for d in scores.values() for v in d.values()]))


def decide(greedy: dict, runs: dict[float, dict]) -> tuple[float, bool]:
    weight = max(runs, key=lambda w: runs[w]["mean"])
    best = runs[weight]
    helps = best["mean"] >= greedy["mean"] + MIN_GAIN
    no_loss = all(best["scores"][d]["char"] >= greedy["scores"][d]["char"] - MAX_LOSS for d in greedy["scores"])
    cheap = best["ms_per_word_scene"] <= greedy["ms_per_word_scene"] + MAX_EXTRA_MS
    return weight, bool(helps and no_loss and cheap)


def runner(recognizer: Any, lines: list[RealLine], images: list[np.ndarray]) -> Callable[[bool], dict[str, Any]]:
    """A pass over the slice through ``recognizer`` as it is set: scores per domain, their mean, times."""
    def run(lm: bool) -> dict[str, Any]:
        results, seconds = read_by_set(lambda images: recognizer.recognize(images, lm=lm), lines, images)
        scores = per_domain(lines, [r.text for r in results])
        times = timing(lines, seconds)
        return {"scores": scores, "mean": round(mean_score(scores), 3),
                "ms_per_line_all": round(times["ms_per_line_all"], 2),
                "ms_per_word_scene": round(times["ms_per_word_scene"], 2)}
    return run


def sweep(name: str, lines: list[RealLine], images: list[np.ndarray], threads: int | None, setting: str,
          values: Sequence[float], lm_first: bool) -> tuple[dict[str, Any], dict[float, dict[str, Any]]]:
    """A first pass (the language model on or off, per ``lm_first``) with the word list off, then a pass with the
    language model at each of ``values`` of the recogniser's attribute ``setting``: the baseline and the runs."""
    from ocr.recognize.recognizer import Recognizer

    recognizer = Recognizer.load(model=name, threads=threads, beam_width=BEAM_WIDTH)
    recognizer.lexicon_margin = None
    run = runner(recognizer, lines, images)
    baseline = run(lm_first)
    log.info("%s baseline (language model %s, no word list): %s", name, "on" if lm_first else "off", baseline)
    runs = {}
    for value in values:
        setattr(recognizer, setting, value)
        runs[value] = run(True)
        log.info("%s %s %.2f: %s", name, setting, value, runs[value])
    return baseline, runs


def measure_model(name: str, lines: list[RealLine], images: list[np.ndarray], threads: int | None) -> dict[str, Any]:
    """Greedy decoding, then the language model at each weight (no word list)."""
    greedy, runs = sweep(name, lines, images, threads, "lm_weight", WEIGHTS, lm_first=False)
    weight, on = decide(greedy, runs)
    return {"weight": weight, "default": on, "greedy": greedy, "by_weight": {str(w): r for w, r in runs.items()}}


def measure_lexicon(name: str, lines: list[RealLine], images: list[np.ndarray], threads: int | None) -> dict[str, Any]:
    """The word list at each margin, the language model at its chosen weight (``lm_choice``) beneath."""
    without, runs = sweep(name, lines, images, threads, "lexicon_margin", MARGINS, lm_first=True)
    margin, on = decide(without, runs)
    return {"margin": margin if on else None, "tried": margin, "without": without,
            "by_margin": {str(m): r for m, r in runs.items()}}


def write_choice(out: Path, choice: dict[str, Any]) -> None:
    """The module the decoder reads; each model's entry says which run wrote it (``"written"``): a run with
    ``--models`` keeps the other models' entries, and the docstring must not credit them to this run."""
    runs = "".join(f"- {name}: ``{c.get('written', 'an earlier run (not recorded)')}``"
                   + (f"; its word list: ``{c['lexicon']['written']}``" if "lexicon" in c else "") + "\n"
                   for name, c in choice.items())
    out.write_text(
        f'"""Whether the decoder uses the character language model by default, and its weight, per model.\n\n'
        f"Written per model on the validation slice of ``../shared/train`` (``training.real_data``), never the\n"
        f"eval sets, by:\n\n{runs}\nThe rule: ``training.choose_lm``'s docstring.\n"
        f"``FIGURES``: accuracy (%) per domain and milliseconds per line / scene word, greedy and per weight.\n"
        f'"""\n\n'
        f"LM_DEFAULT: dict[str, bool] = {pprint.pformat({m: c['default'] for m, c in choice.items()})}\n"
        f"LM_WEIGHT: dict[str, float] = {pprint.pformat({m: c['weight'] for m, c in choice.items()})}\n"
        f"LM_BEAM_WIDTH = {BEAM_WIDTH}\n"
        f"#: per model, the word list's margin in nats (``ocr.recognize.lexicon``); a model not named does not use it\n"
        f"LEXICON_MARGIN: dict[str, float] = "
        f"{pprint.pformat({m: c['lexicon']['margin'] for m, c in choice.items() if c.get('lexicon', {}).get('margin')})}\n"
        f"FIGURES: dict = {pprint.pformat(choice, width=110)}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fast", "accurate"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("ocr/recognize/lm_choice.py"))
    parser.add_argument("--json", type=Path, default=Path("runs/lm_choice.json"))
    parser.add_argument("--lexicon", action="store_true",
                        help="choose only the word list's margin, the language model's weight as in force")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    _, lines = read_all()
    images = [load_image(str(ln.image)) for ln in lines]
    from ocr.recognize import lm_choice

    choice = {name: lm_choice.FIGURES[name] for name in lm_choice.FIGURES if name not in args.models}
    command = " ".join(["OMP_NUM_THREADS=1 python -m training.choose_lm", *(sys.argv[1:] if argv is None else argv)])
    written = f"{command} ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)"
    if args.lexicon:
        for name in args.models:
            choice[name] = {**lm_choice.FIGURES[name],
                            "lexicon": {**measure_lexicon(name, lines, images, args.threads), "written": written}}
    else:
        choice.update({name: {**measure_model(name, lines, images, args.threads), "written": written}
                       for name in args.models})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(choice, indent=1))
    write_choice(args.out, choice)
    print(json.dumps({m: {"weight": c["weight"], "default": c["default"], "lexicon": c.get("lexicon", {}).get("margin")}
                      for m, c in choice.items()}))


if __name__ == "__main__":
    main()
