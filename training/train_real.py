"""Train the top of the CRNN (last mixer blocks, neck, BiLSTM, head) on real line crops without forgetting.

    python -m training.real_cache --out runs/real_cache          # once: frozen-CNN activations
    python -m training.train_real --cache runs/real_cache --out runs/real/best.pt --minutes 60

Loss per batch (batches hold one set each, lines of similar width):
* CTC on the real label, with the set's label convention folded into the loss
  (``training.real_data``: case-agnostic for SROIE, NFKC aliases everywhere, space = blank
  for XFUND), so no convention is taught as a reading;
* ``--lwf`` x KL(starting model || student) on every frame, real and synthetic replay
  lines alike ("learning without forgetting"): what the pretrained network reads on text
  the real data lacks (web / e-commerce Chinese) stays as it was unless the real labels
  disagree. Replay lines contribute only this term; their synthetic labels are never used;
* ``--kd`` x KL(PP-OCRv6 small || student) where ``training.teacher_cache`` stored small's frame
  targets (off by default: measured, it pulled the validation slice down; weights/README.md).

Checkpoints are chosen on the real validation slice (held out by source page) alone; a
checkpoint is eligible only while the held-out-font synthetic validation stays at or above
the start, because the real slice cannot see forgetting. The run resumes from ``--out``'s
``.last`` file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
import unicodedata
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ocr.recognize.charset import Charset
from training.kd_cache import top_k_targets
from training.real_cache import (FROZEN_BLOCKS, cache_depth, collate, load_model, pad_column, stack_targets,
                                 upper_logits)
from training.real_scoring import score_items

log = logging.getLogger("training.train_real")


class AliasTable:
    """For each convention, the classes a target class also accepts (see ``training.real_data``)."""

    def __init__(self, charset: Charset) -> None:
        nfkc: dict[int, list[int]] = {}
        for i, ch in enumerate(charset.chars, start=1):
            canon = unicodedata.normalize("NFKC", ch)
            if canon != ch and len(canon) == 1 and canon in charset:
                nfkc.setdefault(charset.encode(canon)[0], []).append(i)
        upper = {k: list(v) for k, v in nfkc.items()}
        for ch in "abcdefghijklmnopqrstuvwxyz":
            upper.setdefault(charset.encode(ch.upper())[0], []).extend(charset.encode(ch))
        space = charset.encode(" ")
        self.tables = {"exact": nfkc, "upper": upper, "nfkc_nospace": {**nfkc, 0: space}}

    def ctc_inputs(self, logp: torch.Tensor, texts: list[str], charset: Charset,
                   convention: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CTC on the batch's own classes only: column 0 is blank (+ its aliases), column j the
        j-th distinct target class with its aliases' mass. Exact for CTC, which reads no other
        class, and ~100x less memory than merging all 6,906 columns."""
        table = self.tables.get(convention, {})
        labels = [charset.encode(t) for t in texts]
        classes = sorted({c for label in labels for c in label})
        groups = [[0, *table.get(0, [])]] + [[c, *table.get(c, [])] for c in classes]
        width = max(len(g) for g in groups)
        index = torch.tensor([g + [g[0]] * (width - len(g)) for g in groups])
        valid = torch.tensor([[j < len(g) for j in range(width)] for g in groups])
        # one gather for every column (its backward is one scatter, not one full-size tensor per class)
        picked = logp.index_select(-1, index.flatten()).unflatten(-1, index.shape)
        columns = torch.logsumexp(picked.masked_fill(~valid, -torch.inf), dim=-1)
        position = {c: j + 1 for j, c in enumerate(classes)}
        targets = torch.tensor([position[c] for label in labels for c in label], dtype=torch.long)
        return columns, targets, torch.tensor([len(label) for label in labels])


def make_batches(items: list[dict], batch_size: int, rng: random.Random,
                 width: Callable[[dict], int] = lambda it: it["acts"].shape[-1]) -> list[list[dict]]:
    """One set per batch, neighbours in width together (the padding inference also sees)."""
    by_set: dict[str, list[dict]] = {}
    for item in items:
        by_set.setdefault(item["set_name"], []).append(item)
    batches = []
    for group in by_set.values():
        group = sorted(group, key=lambda it: width(it) + rng.random())
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def convention_of(set_name: str | None) -> str | None:
    """The loss convention of a batch's set (``AliasTable.tables``); None for replay lines (KL only)."""
    if set_name is None:
        return None
    if set_name.startswith("en_receipts"):
        return "upper"
    return "nfkc_nospace" if set_name.startswith("zh_doc") else "exact"


def frame_kl(logp: torch.Tensor, steps: torch.Tensor, top_index: torch.Tensor, top_prob: torch.Tensor) -> torch.Tensor:
    """Mean over the real frames of KL(teacher's top-k distribution || student)."""
    frames = logp.shape[1]
    mask = (torch.arange(frames)[None, :] < steps[:, None]).float()
    student = logp.gather(-1, top_index[:, :frames])
    kl = (top_prob[:, :frames] * (top_prob[:, :frames].clamp_min(1e-8).log() - student)).sum(-1)
    return (kl * mask).sum() / mask.sum()


def batch_loss(model: nn.Module, batch: list[dict], pad: torch.Tensor, charset: Charset, aliases: AliasTable,
               lwf: float, convention: str | None, kd: float = 0.0,
               frozen: int = FROZEN_BLOCKS) -> tuple[torch.Tensor, float, float]:
    acts, steps, top_index, top_prob = collate(batch, pad)
    logp = upper_logits(model, acts, frozen).log_softmax(-1)
    loss_kl = lwf * frame_kl(logp, steps, top_index, top_prob)
    if kd > 0 and all("t_index" in it for it in batch):  # items of a --kd-skip set carry none
        loss_kl = loss_kl + kd * frame_kl(logp, steps, *stack_targets(batch, logp.shape[1], prefix="t"))
    loss_ctc = torch.zeros(())
    if convention is not None:
        texts = [it["text"].upper() if convention == "upper" else it["text"] for it in batch]
        columns, targets, lengths = aliases.ctc_inputs(logp, texts, charset, convention)
        loss_ctc = F.ctc_loss(columns.transpose(0, 1), targets, steps, lengths, blank=0, reduction="mean",
                              zero_infinity=True)
    return loss_ctc + loss_kl, loss_ctc.item(), loss_kl.item()


def trainable_groups(model: nn.Module, lr: float, lr_head: float, lr_cnn: float,
                     frozen: int = FROZEN_BLOCKS) -> list[dict]:
    for p in model.parameters():
        p.requires_grad_(False)
    groups = [
        {"params": list(model.lstm.parameters()) + list(model.context_proj.parameters()), "lr": lr},
        {"params": list(model.feature_proj.parameters()) + list(model.classifier.parameters()), "lr": lr_head},
        {"params": list(model.backbone.blocks[frozen:].parameters()) + list(model.neck.parameters()),
         "lr": lr_cnn},
    ]
    groups = [g for g in groups if g["lr"] > 0]
    for g in groups:
        for p in g["params"]:
            p.requires_grad_(True)
    return groups


def set_train_mode(model: nn.Module) -> None:
    """Training mode for the BiLSTM path, but BatchNorm keeps its pretrained statistics."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def save(path: Path, model: nn.Module, extra: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"arch": model.arch, "state_dict": model.state_dict(), "config": model.config.__dict__, **extra},
               tmp)
    os.replace(tmp, path)


def usable(items: list[dict], charset: Charset) -> list[dict]:
    """Lines whose every target character is in the charset (CTC cannot skip a character)."""
    return [it for it in items if it["text"] and not charset.missing(it["text"].upper()
                                                                     if it["set_name"].startswith("en_receipts")
                                                                     else it["text"])]


def without_sets(items: list[dict], prefixes: list[str]) -> list[dict]:
    """``items`` minus the lines of the sets named by ``prefixes``: e.g. a licence-clean run, where no XFUND
    line trains (validation still reads every set)."""
    return [it for it in items if not it["set_name"].startswith(tuple(prefixes))] if prefixes else items


def selection_score(scores: dict[str, dict]) -> float:
    """Mean over the real domains of char and line accuracy: every domain counts alike."""
    real = [v for k, v in scores.items() if k != "synthetic"]
    return float(np.mean([v["char"] for v in real] + [v["line"] for v in real]))


def load_cache(cache: Path, charset: Charset,
               kd_skip: tuple[str, ...] = ()) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """The cached items; with ``training.teacher_cache``'s files beside them, each item also carries
    PP-OCRv6 small's targets, except on the sets whose names start with one of ``kd_skip``."""
    load = lambda name: torch.load(cache / name, map_location="cpu", weights_only=False)  # noqa: E731
    train, replay = load("real_train.pt"), load("synth_replay.pt")
    for name, items in (("real_train", train), ("synth_replay", replay)):
        teacher = cache / f"teacher_{name}.pt"
        if teacher.exists():
            for item, targets in zip(items, load(teacher.name), strict=True):
                if not (kd_skip and item["set_name"].startswith(kd_skip)):
                    item.update(targets)
    return usable(train, charset), load("real_val.pt"), replay, load("synth_val.pt")


@torch.no_grad()
def own_targets(model: nn.Module, items: list[dict], frozen: int = FROZEN_BLOCKS) -> None:
    """Replace the cached forgetting targets (the port's reading) by ``model``'s own reading: for a start
    that already differs from the port (a trained BiLSTM), the KL term then keeps *its* reading."""
    model.eval()
    for item in items:
        probs = upper_logits(model, item["acts"].float()[None], frozen).softmax(-1)[0]
        item["top_index"], item["top_prob"] = top_k_targets(probs, item["top_index"].shape[-1])


def validate(model: nn.Module, val: list[dict], synth_val: list[dict], charset: Charset, pad: torch.Tensor,
             frozen: int = FROZEN_BLOCKS) -> dict:
    scores = score_items(model, val, charset, pad, frozen)
    scores["synthetic"] = score_items(model, synth_val, charset, pad, frozen)["synthetic"]
    return scores


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    charset = Charset.load(args.charset)
    aliases = AliasTable(charset)
    model = load_model(args.init)
    frozen = cache_depth(args.cache)
    pad = pad_column(model, frozen)
    train_items, val, replay, synth_val = load_cache(args.cache, charset, tuple(args.kd_skip))
    if args.lwf_from_init:
        own_targets(model, train_items + replay, frozen)
    train_items = without_sets(train_items, args.exclude_sets)
    log.info("%d real training lines, %d validation, %d replay, %d synthetic validation; %d mixer blocks frozen",
             len(train_items), len(val), len(replay), len(synth_val), frozen)
    start = validate(model, val, synth_val, charset, pad, frozen)
    log.info("start: %s (selection %.3f)", json.dumps(start), selection_score(start))
    groups = trainable_groups(model, args.lr, args.lr_head, args.lr_cnn, frozen)
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    history = args.out.with_suffix(".history.jsonl")
    last = args.out.with_suffix(".last")
    step, best = 0, selection_score(start)
    if last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        step, best = state["step"], state["best"]
        log.info("resumed at step %d (best %.3f)", step, best)
    elif not args.out.exists():
        save(args.out, model, {"step": 0, "scores": start, "start": start})
    deadline, started = time.time() + args.minutes * 60, time.time()
    losses: list[tuple[float, float]] = []
    def finished() -> bool:
        return time.time() >= deadline or (args.max_steps is not None and step >= args.max_steps)

    while not finished():
        batches = [(b, b[0]["set_name"]) for b in make_batches(train_items, args.batch, rng)]
        batches += [(b, None) for b in make_batches(replay, args.batch, rng)[: int(len(batches) * args.replay_share)]]
        rng.shuffle(batches)
        for batch, set_name in batches:
            set_train_mode(model)
            loss, ctc, kl = batch_loss(model, batch, pad, charset, aliases, args.lwf, convention_of(set_name), args.kd,
                                       frozen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 5.0)
            optimizer.step()
            step += 1
            losses.append((ctc, kl))
            if step % 100 == 0:
                c, k = np.mean(losses, axis=0)
                losses.clear()
                log.info("step %d ctc %.4f kl %.4f (%.2f steps/s)", step, c, k, 100 / max(1e-6, time.time() - started))
                started = time.time()
            if step % args.val_every == 0:
                best = checkpoint(model, optimizer, args, step, best, start, val, synth_val, charset, pad, history, last,
                                  frozen)
            if finished():
                break
    checkpoint(model, optimizer, args, step, best, start, val, synth_val, charset, pad, history, last, frozen)


def checkpoint(model, optimizer, args, step, best, start, val, synth_val, charset, pad, history, last,
               frozen: int = FROZEN_BLOCKS) -> float:
    scores = validate(model, val, synth_val, charset, pad, frozen)
    score = selection_score(scores)
    eligible = scores["synthetic"]["char"] >= start["synthetic"]["char"]
    improved = eligible and score > best
    log.info("step %d: %s selection %.3f (best %.3f)%s%s", step, json.dumps(
        {k: [round(v["char"], 2), round(v["line"], 2)] for k, v in scores.items()}), score, best,
        "" if eligible else " [synthetic below start: not eligible]", " *" if improved else "")
    with history.open("a") as f:
        f.write(json.dumps({"step": step, "scores": scores, "selection": score, "eligible": eligible,
                            "time": time.time()}) + "\n")
    if improved:
        best = score
        save(args.out, model, {"step": step, "scores": scores, "start": start})
    if getattr(args, "keep_checkpoints", False):  # for averaging (training.average)
        save(args.out.with_name(f"step{step}.pt"), model, {"step": step, "scores": scores, "start": start})
    tmp = last.with_suffix(".lasttmp")
    torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "best": best}, tmp)
    os.replace(tmp, last)
    return best


def run_arguments(parser: argparse.ArgumentParser, out: str, init: str) -> None:
    """The options every real-line training stage shares (data, length, checkpoints, threads)."""
    parser.add_argument("--cache", type=Path, default=Path("runs/real_cache"))
    parser.add_argument("--init", type=Path, default=Path(init))
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"))
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude-sets", nargs="*", default=[], metavar="PREFIX",
                        help="train on no line of these sets (name prefixes), e.g. zh_doc: XFUND is CC BY-NC-SA")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    run_arguments(parser, out="runs/real/best.pt", init="weights/crnn.pt")
    parser.add_argument("--lr", type=float, default=1e-3, help="BiLSTM and its projection")
    parser.add_argument("--lr-head", type=float, default=1e-4, help="feature projection and classifier")
    parser.add_argument("--lr-cnn", type=float, default=1e-4, help="the unfrozen last mixer blocks and the neck")
    parser.add_argument("--lwf", type=float, default=1.0, help="weight of KL(starting model || student)")
    parser.add_argument("--kd", type=float, default=0.0,
                        help="weight of KL(PP-OCRv6 small || student) where training.teacher_cache made its targets")
    parser.add_argument("--kd-skip", nargs="*", default=[], metavar="PREFIX",
                        help="sets (name prefixes) that get no teacher term, e.g. where the teacher reads the "
                             "validation slice worse than the start")
    parser.add_argument("--lwf-from-init", action="store_true",
                        help="forgetting targets from --init's own reading (not the cache's, the port's)")
    parser.add_argument("--replay-share", type=float, default=0.25, help="replay batches per real batch")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="also save every validated checkpoint as stepN.pt beside --out (training.average)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this many steps (a reproducible length; --minutes still bounds the time)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(args)


if __name__ == "__main__":
    main()
