"""Turn a real-line training checkpoint into the shipped recogniser, only if it passed its gate.

    python -m training.ship runs/context/best.pt runs/real/best.pt [--out weights/crnn.pt]   # the first that passes

Why a gate here and not only in the training loop: ``make train`` must never replace the shipped
weights with a run that did not beat the start on the validation slice of ``../shared/train``
or that fell below the start on the held-out-font synthetic lines (the forgetting check).
Then export ``python -m training.export`` and rewrite ``weights/SHA256SUMS`` (``make train`` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ocr.recognize.recognizer import DEFAULT_WEIGHTS
from training.train_real import selection_score


def gate(checkpoint: dict) -> str | None:
    """Why ``checkpoint`` must not ship, or None when it may."""
    scores, start = checkpoint.get("scores"), checkpoint.get("start")
    if not scores or not start or checkpoint.get("step", 0) == 0:
        return "the checkpoint is the untrained start: no training step beat it on the validation slice"
    if scores["synthetic"]["char"] < start["synthetic"]["char"]:
        return "held-out-font synthetic accuracy fell below the start (forgetting)"
    if selection_score(scores) <= selection_score(start):
        return "no gain on the validation slice"
    return None


def source_of(checkpoint: dict) -> str:
    """The shipped file's one-line provenance (weights/README.md tells the whole story)."""
    if checkpoint.get("arch") == "crnn_accurate":
        return ("PP-OCRv6-small CNN and attention neck (frozen, as ported); its BiLSTM trained on ../shared/train "
                "real lines (training.train_context; weights/README.md, 'The accurate model's BiLSTM')")
    stage = "BiLSTM stage (training.train_context)" if "train_context" in str(checkpoint.get("trainer", "")) \
        else "stage one (training.train_real)"
    return (f"PP-OCRv6-tiny CNN (lower blocks frozen), top of the CNN and neck trained on ../shared/train real "
            f"lines (weights/README.md, 'How the weights were made'); shipped from the {stage}")


def ship(checkpoint_paths: list[Path], out: Path) -> None:
    """Ship the first checkpoint that passes its gate (the BiLSTM stage's, then stage one's)."""
    for path in checkpoint_paths:
        if not path.exists():
            print(f"{path}: missing, skipped")
            continue
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        refusal = gate(checkpoint)
        if refusal:
            print(f"{path}: not shipped: {refusal}")
            continue
        torch.save({"arch": checkpoint.get("arch", "crnn"), "state_dict": checkpoint["state_dict"],
                    "config": checkpoint["config"], "source": source_of(checkpoint),
                    "step": checkpoint["step"], "validation": checkpoint["scores"], "start": checkpoint["start"]}, out)
        print(json.dumps({"shipped": str(out), "from": str(path), "step": checkpoint["step"],
                          "validation": _rounded(checkpoint["scores"]), "start": _rounded(checkpoint["start"])},
                         indent=1))
        return
    sys.exit("not shipped: no checkpoint passed its gate")


def _rounded(scores: dict) -> dict:
    return {k: {m: round(v, 2) for m, v in d.items()} for k, d in scores.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="in order of preference")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    ship(args.checkpoints, args.out)


if __name__ == "__main__":
    main()
