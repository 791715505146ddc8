"""What a checkpoint's BiLSTM does, measured on the validation slice: the score with it on and switched off,
and (``--reach N``) the gradient reach of the characters of N validation lines both ways.

    OMP_NUM_THREADS=1 python -m training.bilstm_ablation runs/realB/best.pt [--reach 12]
    OMP_NUM_THREADS=1 python -m training.bilstm_ablation runs/ctxAcc2/best.pt --cache runs/ctxAcc2 --reach 12

Why: the issue asks that switching the BiLSTM off cost accuracy, and that its explanation (the gradient
reach) show context; both are read here on ``../shared/train``'s validation slice (``training.real_data``).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ocr.recognize.charset import Charset
from ocr.recognize.models import SPECS
from ocr.recognize.network_accurate import AccurateCRNN
from training.real_cache import cache_depth, load_model, pad_column
from training.real_data import read_all
from training.train_real import load_cache, selection_score, validate


def rounded(scores: dict) -> dict:
    return {k: [round(v["char"], 2), round(v["line"], 2)] for k, v in scores.items()}


def mean_reach(model: torch.nn.Module, charset: Charset, n_lines: int) -> dict:
    """Mean 90%-mass gradient reach (in character heights) over the characters of ``n_lines`` document lines."""
    from explain.registry import explain_line
    from ocr.imageio import load_image
    from ocr.recognize.recognizer import Recognizer

    _, val = read_all()
    random.Random(1).shuffle(val)
    lines = [ln for ln in val if ln.set_name.startswith(("zh_doc", "en_receipts"))][:n_lines]
    rec = Recognizer(model, charset, threads=1, spec=SPECS[spec_name(model)])
    widths = []
    for ln in lines:
        out = explain_line(rec, load_image(str(ln.image)), methods=("saliency",))
        widths += [r["width_chars"] for r in ((out.get("tables") or {}).get("reach") or {}).values()]
    return {"characters": len(widths), "mean_width_char_heights": round(float(np.mean(widths)), 2)}


def spec_name(model: torch.nn.Module) -> str:
    return "accurate" if isinstance(model, AccurateCRNN) else "fast"


def scorer(model: torch.nn.Module, cache: Path, charset: Charset) -> Callable[[], dict]:
    """Validation scores of ``model`` as its trainer computed them: the fast model from the activation cache
    (``training.real_cache``), the accurate one from its sequence cache (``training.accurate_cache``)."""
    if isinstance(model, AccurateCRNN):
        from training.train_context import padding_feature, validate_sequences

        load = lambda name: torch.load(cache / name, map_location="cpu", weights_only=False)  # noqa: E731
        val, synth_val, pad = load("seq_real_val.pt"), load("seq_synth_val.pt"), padding_feature(model)
        return lambda: validate_sequences(model, val, synth_val, charset, pad)
    _, val, _, synth_val = load_cache(cache, charset)
    frozen = cache_depth(cache)
    pad = pad_column(model, frozen)
    return lambda: validate(model, val, synth_val, charset, pad, frozen)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("runs/real_cache"),
                        help="runs/real_cache (fast model) or the accurate model's run directory (runs/ctxAcc)")
    parser.add_argument("--charset", type=Path, default=None, help="default: the checkpoint's model's charset")
    parser.add_argument("--reach", type=int, default=0, help="also the gradient reach on this many lines")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    charset = Charset.load(args.charset or Path("weights") / SPECS[spec_name(model)].charset)
    score = scorer(model, args.cache, charset)
    report = {}
    for state in ("on", "off"):
        if state == "off":
            with torch.no_grad():
                model.context_proj.weight.zero_()
        scores = score()
        report[state] = {"scores": rounded(scores), "selection": round(selection_score(scores), 3)}
        if args.reach:
            report[state]["reach"] = mean_reach(model, charset, args.reach)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
