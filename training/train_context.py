"""Second stage: teach the BiLSTM what context adds, with everything below and beside it fixed.

    python -m training.train_context --init weights/crnn.pt --cache runs/real_cache --out runs/context/best.pt
    python -m training.train_context --init runs/crnn_accurate_init.pt --charset weights/charset_accurate.txt \
        --out runs/ctxAcc/best.pt ...   # the accurate model's BiLSTM, on training.accurate_cache's sequences

Why a stage of its own: when the CNN, the neck and the BiLSTM learn together (``training.train_real``)
the CNN takes the whole adaptation and the BiLSTM ends up adding nothing the validation slice can
see. Here the network of stage one is frozen, so whatever the BiLSTM learns is exactly what
switching it off loses. Frozen also means the CNN + neck sequence of every cached crop is computed
once, so a step runs only the BiLSTM and the head (~50x cheaper than stage one).

Loss per batch: CTC on the real label with the set's convention (``training.train_real.AliasTable``),
plus KL(stage-one model || student) on synthetic replay lines (``--lwf``) and, lighter, on real lines
(``--lwf-real``): the stage-one reading stays where the real labels do not ask for a change.
Checkpoints are chosen on the real validation slice; one is eligible only while the held-out-font
synthetic lines stay at or above the start. Resumes from ``--out``'s ``.last`` file.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ocr.recognize.charset import Charset
from ocr.recognize.network import CRNN
from training.kd_cache import top_k_targets
from training.real_cache import FROZEN_BLOCKS, TOP_K, cache_depth, load_model
from training.real_scoring import score_readings
from training.train_real import (AliasTable, convention_of, frame_kl, make_batches, run_arguments, save,
                                 selection_score, usable, without_sets)

log = logging.getLogger("training.train_context")


@torch.no_grad()
def sequence_item(model: CRNN, item: dict, frozen: int = FROZEN_BLOCKS) -> dict:
    """A cached crop (activations after ``frozen`` blocks) as the frozen network's feature sequence [T,160] and its
    own top-k reading."""
    x = model.backbone.blocks[frozen:](item["acts"].float()[None])
    seq = model.neck(F.avg_pool2d(x, kernel_size=(3, 2), stride=(3, 2)).squeeze(2)).transpose(1, 2)[0]
    top_index, top_prob = top_k_targets(model.classifier(model.feature_proj(seq)).softmax(-1), TOP_K)
    keep = {k: item[k] for k in ("steps", "text", "label", "set_name", "source")}
    return {**keep, "seq": seq.half(), "top_index": top_index, "top_prob": top_prob}


def sequence_cache(model: CRNN, cache: Path, name: str, out_dir: Path) -> list[dict]:
    """``cache/name`` as feature sequences of ``model``, stored beside the run (model-specific)."""
    path = out_dir / f"seq_{name}"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(model, CRNN):  # the cache holds the fast CNN's activations: no use to another network
        raise SystemExit(f"{path} is missing: build it first with python -m training.accurate_cache --out {out_dir}")
    started = time.time()
    frozen = cache_depth(cache)
    items = [sequence_item(model, it, frozen) for it in torch.load(cache / name, map_location="cpu", weights_only=False)]
    torch.save(items, path)
    log.info("%s: %d sequences in %.0f s", path.name, len(items), time.time() - started)
    return items


@torch.no_grad()
def padding_feature(model: CRNN) -> torch.Tensor:
    """The feature of a blank (zero-input) column, what a batch at inference pads short lines with."""
    seq = model.features(torch.zeros(1, 3, 48, 320))
    return seq[0, seq.shape[1] // 2].clone()


def collate_sequences(batch: list[dict], pad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    frames = max(it["seq"].shape[0] for it in batch)
    seq = pad[None, None, :].expand(len(batch), frames, -1).clone()
    top_index = torch.zeros(len(batch), frames, TOP_K, dtype=torch.long)
    top_prob = torch.zeros(len(batch), frames, TOP_K)
    for i, it in enumerate(batch):
        t = it["seq"].shape[0]
        seq[i, :t] = it["seq"].float()
        top_index[i, :t] = it["top_index"].long()
        top_prob[i, :t] = it["top_prob"].float()
    steps = torch.tensor([min(it["steps"], frames) for it in batch])
    return seq, steps, top_index, top_prob


@torch.no_grad()
def score_sequences(model: CRNN, items: list[dict], charset: Charset, pad: torch.Tensor) -> dict[str, dict]:
    model.eval()
    order = sorted(range(len(items)), key=lambda i: items[i]["seq"].shape[0])
    logits: dict[int, tuple[torch.Tensor, int]] = {}
    for start in range(0, len(order), 64):
        idx = order[start : start + 64]
        seq, steps, _, _ = collate_sequences([items[i] for i in idx], pad)
        out = model.head(seq)
        for j, i in enumerate(idx):
            logits[i] = (out[j], int(steps[j]))
    return score_readings(items, [logits[i] for i in range(len(items))], charset)


def validate_sequences(model: CRNN, val: list[dict], synth_val: list[dict], charset: Charset,
                       pad: torch.Tensor) -> dict[str, dict]:
    """The checkpoint scores: the real validation slice per domain, plus the held-out-font synthetic lines."""
    scores = score_sequences(model, val, charset, pad)
    scores["synthetic"] = score_sequences(model, synth_val, charset, pad)["synthetic"]
    return scores


def step_loss(model: CRNN, batch: list[dict], pad: torch.Tensor, charset: Charset, aliases: AliasTable,
              lwf: float, convention: str | None) -> tuple[torch.Tensor, float, float]:
    seq, steps, top_index, top_prob = collate_sequences(batch, pad)
    logp = model.head(seq).log_softmax(-1)
    loss_kl = frame_kl(logp, steps, top_index, top_prob)
    loss_ctc = torch.zeros(())
    if convention is not None:
        texts = [it["text"].upper() if convention == "upper" else it["text"] for it in batch]
        columns, targets, lengths = aliases.ctc_inputs(logp, texts, charset, convention)
        loss_ctc = F.ctc_loss(columns.transpose(0, 1), targets, steps, lengths, blank=0, zero_infinity=True)
    return loss_ctc + lwf * loss_kl, loss_ctc.item(), loss_kl.item()


class ContextRun:
    """One resumable run: data, the model with only the BiLSTM path trainable, the optimizer, the bookkeeping."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.charset = Charset.load(args.charset)
        self.aliases = AliasTable(self.charset)
        self.model = load_model(args.init)
        self.pad = padding_feature(self.model)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        load = lambda name: sequence_cache(self.model, args.cache, name, args.out.parent)  # noqa: E731
        self.val, self.synth_val = load("real_val.pt"), load("synth_val.pt")
        self.train_items = without_sets(usable(load("real_train.pt"), self.charset), args.exclude_sets)
        self.replay = load("synth_replay.pt")
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.params = list(self.model.lstm.parameters()) + list(self.model.context_proj.parameters())
        for p in self.params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=1e-4)
        self.start = self.validate()
        self.history, self.last = args.out.with_suffix(".history.jsonl"), args.out.with_suffix(".last")
        self.step, self.best = 0, selection_score(self.start)
        log.info("%d real training lines, %d validation, %d replay; start %s (selection %.3f)", len(self.train_items),
                 len(self.val), len(self.replay), self.rounded(self.start), self.best)
        if self.last.exists():
            state = torch.load(self.last, map_location="cpu", weights_only=False)
            self.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.best = state["step"], state["best"]
            log.info("resumed at step %d (best %.3f)", self.step, self.best)
        elif not args.out.exists():
            save(args.out, self.model, {"step": 0, "scores": self.start, "start": self.start,
                                        "trainer": "training.train_context"})

    def validate(self) -> dict:
        return validate_sequences(self.model, self.val, self.synth_val, self.charset, self.pad)

    @staticmethod
    def rounded(scores: dict) -> str:
        return json.dumps({k: [round(v["char"], 2), round(v["line"], 2)] for k, v in scores.items()})

    def epoch(self, rng: random.Random) -> list[tuple[list[dict], str | None]]:
        width = lambda it: it["seq"].shape[0]  # noqa: E731
        batches = [(b, b[0]["set_name"]) for b in make_batches(self.train_items, self.args.batch, rng, width)]
        replay = make_batches(self.replay, self.args.batch, rng, width)
        batches += [(b, None) for b in replay[: int(len(batches) * self.args.replay_share)]]
        rng.shuffle(batches)
        return batches

    def train_step(self, batch: list[dict], set_name: str | None) -> tuple[float, float]:
        self.model.train()
        lwf = self.args.lwf if set_name is None else self.args.lwf_real
        loss, ctc, kl = step_loss(self.model, batch, self.pad, self.charset, self.aliases, lwf, convention_of(set_name))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 5.0)
        self.optimizer.step()
        self.step += 1
        return ctc, kl

    def checkpoint(self) -> None:
        scores = self.validate()
        score = selection_score(scores)
        eligible = scores["synthetic"]["char"] >= self.start["synthetic"]["char"]
        improved = eligible and score > self.best
        log.info("step %d: %s selection %.3f (best %.3f)%s%s", self.step, self.rounded(scores), score, self.best,
                 "" if eligible else " [synthetic below start]", " *" if improved else "")
        with self.history.open("a") as f:
            f.write(json.dumps({"step": self.step, "scores": scores, "selection": score, "eligible": eligible}) + "\n")
        if improved:
            self.best = score
            save(self.args.out, self.model, {"step": self.step, "scores": scores, "start": self.start,
                                             "trainer": "training.train_context"})
        tmp = self.last.with_suffix(".lasttmp")
        torch.save({"state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "step": self.step, "best": self.best}, tmp)
        tmp.replace(self.last)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = ContextRun(args)
    rng = random.Random(args.seed + run.step)
    deadline, tick = time.time() + args.minutes * 60, time.time()
    losses: list[tuple[float, float]] = []
    while time.time() < deadline and run.step < args.max_steps:
        for batch, set_name in run.epoch(rng):
            losses.append(run.train_step(batch, set_name))
            if run.step % 100 == 0:
                c, k = np.mean(losses, axis=0)
                losses.clear()
                log.info("step %d ctc %.4f kl %.4f (%.2f steps/s)", run.step, c, k, 100 / max(1e-6, time.time() - tick))
                tick = time.time()
            if run.step % args.val_every == 0:
                run.checkpoint()
            if time.time() >= deadline or run.step >= args.max_steps:
                break
    run.checkpoint()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    run_arguments(parser, out="runs/context/best.pt", init="weights/crnn.pt")  # --init: the stage-one model
    parser.add_argument("--max-steps", type=int, default=6000)
    parser.add_argument("--lr", type=float, default=2e-3, help="BiLSTM and its projection (nothing else trains)")
    parser.add_argument("--lwf", type=float, default=1.0, help="KL weight on synthetic replay lines")
    parser.add_argument("--lwf-real", type=float, default=0.1, help="KL weight on real lines")
    parser.add_argument("--replay-share", type=float, default=0.35, help="replay batches per real batch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(args)


if __name__ == "__main__":
    main()
