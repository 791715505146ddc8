"""Turn a real-line training checkpoint into the shipped recogniser, only if it passed its gate.

    python -m training.ship runs/real/best.pt [--out weights/crnn.pt]

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


def ship(checkpoint_path: Path, out: Path) -> None:
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    refusal = gate(checkpoint)
    if refusal:
        sys.exit(f"not shipped: {refusal}")
    torch.save({"state_dict": checkpoint["state_dict"], "config": checkpoint["config"],
                "source": "training.train_real: PP-OCRv6-tiny CNN (lower blocks frozen) + BiLSTM and head trained "
                          "on ../shared/train real lines with learning-without-forgetting",
                "step": checkpoint["step"], "validation": checkpoint["scores"], "start": checkpoint["start"]}, out)
    print(json.dumps({"shipped": str(out), "step": checkpoint["step"],
                      "validation": {k: {m: round(v, 2) for m, v in d.items()} for k, d in checkpoint["scores"].items()},
                      "start": {k: {m: round(v, 2) for m, v in d.items()} for k, d in checkpoint["start"].items()}},
                     indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)
    ship(args.checkpoint, args.out)


if __name__ == "__main__":
    main()
