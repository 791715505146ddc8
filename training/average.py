"""The uniform average of several checkpoints of one run (their floating-point tensors), as one checkpoint.

    python -m training.average runs/realB5/step2000.pt ... runs/realB5/step4000.pt --out runs/realB5/avg.pt \
        --cache runs/real_cache                          # scored on the validation slice, as training.ship needs
    python -m training.bilstm_ablation runs/realB5/avg.pt     # its validation score, BiLSTM on and off

Why: checkpoints late in a run sit around one minimum and differ by noise; their average often reads
better than any of them and forgets less (weight averaging). Only checkpoints of one run, from one start,
are averaged: their weights live in the same basin.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def average_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Key by key: floating-point tensors averaged, others (counters) taken from the last state."""
    if not states:
        raise ValueError("nothing to average")
    keys = states[0].keys()
    if any(s.keys() != keys for s in states):
        raise ValueError("the checkpoints hold different tensors: not one run")
    out = {}
    for k in keys:
        values = [s[k] for s in states]
        out[k] = (torch.stack([v.float() for v in values]).mean(0).to(values[0].dtype)
                  if values[0].is_floating_point() else values[-1].clone())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None,
                        help="the run's training.real_cache: score the average on its validation slice (the scores "
                        "training.ship's gate reads)")
    args = parser.parse_args(argv)
    loaded = [torch.load(p, map_location="cpu", weights_only=False) for p in args.checkpoints]
    merged = {**loaded[-1], "state_dict": average_state([c["state_dict"] for c in loaded]),
              "averaged": [str(p) for p in args.checkpoints]}
    merged.pop("scores", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(merged, args.out)
    if args.cache is not None:
        merged["scores"] = validation_scores(args.out, args.cache)
        torch.save(merged, args.out)
        print(json.dumps({k: [round(v["char"], 2), round(v["line"], 2)] for k, v in merged["scores"].items()}))
    print(f"{args.out}: the average of {len(loaded)} checkpoints")


def validation_scores(checkpoint: Path, cache: Path) -> dict:
    """The checkpoint's scores on the cached validation slice and synthetic lines, as the trainer scores."""
    from ocr.recognize.charset import Charset
    from ocr.recognize.models import SPECS
    from training.bilstm_ablation import scorer, spec_name
    from training.real_cache import load_model

    model = load_model(checkpoint)
    return scorer(model, cache, Charset.load(Path("weights") / SPECS[spec_name(model)].charset))()


if __name__ == "__main__":
    main()
