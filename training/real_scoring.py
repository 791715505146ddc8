"""Greedy readings of cached items, scored with each set's protocol (the validation the run decides on)."""

from __future__ import annotations

import torch
from torch import nn

from ocr.recognize.charset import Charset
from ocr.textdist import score_lines
from training.real_cache import FROZEN_BLOCKS, collate, upper_logits
from training.train import greedy_text


@torch.no_grad()
def read_items(model: nn.Module, items: list[dict], charset: Charset, pad: torch.Tensor, batch: int = 32,
               frozen: int = FROZEN_BLOCKS) -> list[str]:
    order = sorted(range(len(items)), key=lambda i: items[i]["acts"].shape[-1])
    texts: dict[int, str] = {}
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        acts, steps, _, _ = collate([items[i] for i in idx], pad)
        for i, text in zip(idx, greedy_text(upper_logits(model, acts, frozen), steps.tolist(), charset)):
            texts[i] = text
    return [texts[i] for i in range(len(items))]


PROTOCOL = {"zh_doc_xfund_train_lines": "zh", "en_receipts_sroie_train_lines": "upper", "synthetic": "zh"}


def score_items(model: nn.Module, items: list[dict], charset: Charset, pad: torch.Tensor,
                frozen: int = FROZEN_BLOCKS) -> dict[str, dict]:
    """Per set: char accuracy and line accuracy (%), scene word sets pooled as ``en_scene``."""
    was_training = model.training
    model.eval()
    preds = read_items(model, items, charset, pad, frozen=frozen)
    if was_training:
        model.train()
    return score_texts(items, preds)


def score_readings(items: list[dict], readings: list[tuple[torch.Tensor, int]], charset: Charset) -> dict[str, dict]:
    """``score_items`` for logits computed elsewhere: one ([T,C] logits, valid frames) per item."""
    return score_texts(items, [greedy_text(logits[None], [steps], charset)[0] for logits, steps in readings])


def score_texts(items: list[dict], preds: list[str]) -> dict[str, dict]:
    """Char and line accuracy (%) per set (``ocr.textdist.score_lines`` with the set's protocol)."""
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for item, pred in zip(items, preds):
        name = item["set_name"] if item["set_name"] in PROTOCOL else "en_scene"
        group = groups.setdefault(name, ([], []))
        group[0].append(pred)
        group[1].append(item["label"])
    scores = {name: score_lines(p, t, PROTOCOL.get(name, "alnum")) for name, (p, t) in groups.items()}
    return {name: {"char": 100 * (sc["char_accuracy"] or 0.0), "line": 100 * sc["line_accuracy"]}
            for name, sc in scores.items()}
