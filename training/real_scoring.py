"""Greedy readings of cached items, scored with each set's protocol (the validation the run decides on)."""

from __future__ import annotations

import torch
from torch import nn

from ocr.recognize.charset import Charset
from ocr.textdist import edit_distance, normalize
from training.real_cache import collate, upper_logits


def greedy(logits: torch.Tensor, steps: list[int], charset: Charset) -> list[str]:
    best = logits.argmax(-1).numpy()
    texts = []
    for row, n in zip(best, steps):
        keep = [int(k) for j, k in enumerate(row[:n]) if k != 0 and (j == 0 or k != row[j - 1])]
        texts.append(charset.decode(keep))
    return texts


@torch.no_grad()
def read_items(model: nn.Module, items: list[dict], charset: Charset, pad: torch.Tensor, batch: int = 32) -> list[str]:
    order = sorted(range(len(items)), key=lambda i: items[i]["acts"].shape[-1])
    texts: dict[int, str] = {}
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        acts, steps, _, _ = collate([items[i] for i in idx], pad)
        for i, text in zip(idx, greedy(upper_logits(model, acts), steps.tolist(), charset)):
            texts[i] = text
    return [texts[i] for i in range(len(items))]


PROTOCOL = {"zh_doc_xfund_train_lines": "zh", "en_receipts_sroie_train_lines": "upper", "synthetic": "zh"}


def score_items(model: nn.Module, items: list[dict], charset: Charset, pad: torch.Tensor) -> dict[str, dict]:
    """Per set: char accuracy and line accuracy (%), scene word sets pooled as ``en_scene``."""
    was_training = model.training
    model.eval()
    preds = read_items(model, items, charset, pad)
    if was_training:
        model.train()
    return score_texts(items, preds)


def score_readings(items: list[dict], readings: list[tuple[torch.Tensor, int]], charset: Charset) -> dict[str, dict]:
    """``score_items`` for logits computed elsewhere: one ([T,C] logits, valid frames) per item."""
    return score_texts(items, [greedy(logits[None], [steps], charset)[0] for logits, steps in readings])


def score_texts(items: list[dict], preds: list[str]) -> dict[str, dict]:
    sums: dict[str, list[float]] = {}
    for item, pred in zip(items, preds):
        name = item["set_name"] if item["set_name"] in PROTOCOL else "en_scene"
        protocol = PROTOCOL.get(name, "alnum")
        p, t = normalize(pred, protocol), normalize(item["label"], protocol)
        s = sums.setdefault(name, [0, 0, 0, 0])
        s[0] += edit_distance(p, t)
        s[1] += len(t)
        s[2] += p == t
        s[3] += 1
    return {name: {"char": 100 * (1 - e / max(1, n)), "line": 100 * ok / count}
            for name, (e, n, ok, count) in sums.items()}
