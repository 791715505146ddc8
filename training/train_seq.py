"""Train the CRNN's sequence part (BiLSTM + context projection) on cached distillation data.

    python -m training.kd_cache --out runs/kd_cache --minutes 70      # features + teacher targets, once
    python -m training.train_seq --cache runs/kd_cache --out runs/seq/best.pt --minutes 30

The CNN is the ported PP-OCRv6-tiny one and stays frozen, so its features are
read from ``training.kd_cache`` shards instead of being recomputed; each step costs
only the BiLSTM and the (frozen) classifier. Loss: CTC on the synthetic label,
plus (``--kd-weight``) KL to the teacher's (PP-OCRv6 small) frame distribution.
The KL is off by default: in a 450-step probe on 256 held-out-font lines it
cut the validation KL to the teacher from 1.23 to 0.35 yet *lowered* char
accuracy (89.1 -> 84.8%) -- the teacher peaks one frame earlier than the
student on ~19% of characters, and frame-level KL fights the student's
alignment -- whereas CTC alone raised it (89.1 -> 89.7%).
The checkpoint kept is the best on a fixed synthetic validation set
rendered in a font never trained on, scored against the untrained start
(context projection = 0, i.e. exactly PP-OCRv6-tiny), so a run that does not
help is never shipped.
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

from ocr.recognize.charset import Charset
from training.kd_cache import CachedBatch, existing_shards, load_batches, load_student
from ocr.recognize.lineprep import batch_tensor
from ocr.recognize.network import CRNN
from training.synth import LineSynthesizer, held_out_fonts
from training.train import char_accuracy, greedy_text, make_batch, save_checkpoint

log = logging.getLogger("training.train_seq")


class CachedValidation:
    """Synthetic validation lines (own seed, never trained on) with their CNN features computed once.

    ``held_out=True`` (the set checkpoints are chosen on) renders with the font kept out of
    training, degraded 1.5x: on 300 such lines PP-OCRv6 small leads tiny by 2.9 points
    (91.4 vs 88.5%), as on real lines, whereas on the training fonts it leads by 0.3, so
    only this set can tell a better reader from noise.
    """

    def __init__(self, model: CRNN, charset: Charset, size: int, *, held_out: bool = True,
                 shuffle_text: bool = False, max_width: int = 640, batch: int = 32) -> None:
        if held_out:
            synth = LineSynthesizer(charset.chars, seed=10_002, fonts=held_out_fonts(), degrade=1.5,
                                    shuffle_text=shuffle_text)
        else:
            synth = LineSynthesizer(charset.chars, seed=10_000, shuffle_text=shuffle_text)
        lines, prepared = make_batch(synth, charset, size, max_width)
        self.texts = [line.text for line in lines]
        self.chunks: list[tuple[torch.Tensor, list[int]]] = []
        with torch.no_grad():
            for i in range(0, len(prepared), batch):
                chunk = prepared[i : i + batch]
                self.chunks.append((model.features(batch_tensor(chunk)), [p.steps for p in chunk]))

    @torch.no_grad()
    def score(self, model: CRNN, charset: Charset) -> float:
        preds: list[str] = []
        for features, steps in self.chunks:
            preds += greedy_text(model.head(features), steps, charset)
        return char_accuracy(preds, self.texts)


def sequence_parameters(model: CRNN, train_head: bool) -> list[dict]:
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = list(model.lstm.parameters()) + list(model.context_proj.parameters())
    groups = [{"params": trainable, "lr": 1.0}]
    if train_head:
        head = list(model.feature_proj.parameters()) + list(model.classifier.parameters())
        groups.append({"params": head, "lr": 0.1})
        trainable += head
    for p in trainable:
        p.requires_grad_(True)
    return groups


def batch_loss(model: CRNN, batch: CachedBatch, charset: Charset, ctc_weight: float,
               kd_weight: float = 1.0) -> tuple[torch.Tensor, float, float]:
    logp = model.head(batch.features.float()).log_softmax(-1)
    T = logp.shape[1]
    loss_kd = torch.zeros(())
    if kd_weight > 0:
        target = batch.target_dense(logp.shape[-1])
        mask = (torch.arange(T)[None, :] < batch.steps[:, None]).float()
        kl = (target * (target.clamp_min(1e-8).log() - logp)).sum(-1)
        loss_kd = (kl * mask).sum() / mask.sum()
    labels = [torch.tensor(charset.encode(t), dtype=torch.long) for t in batch.texts]
    loss_ctc = F.ctc_loss(logp.transpose(0, 1), torch.cat(labels), batch.steps,
                          torch.tensor([len(t) for t in labels]), blank=0, reduction="mean", zero_infinity=True)
    return kd_weight * loss_kd + ctc_weight * loss_ctc, loss_kd.item(), loss_ctc.item()


def train(cache: Path, init: Path, out: Path, charset_path: Path, minutes: float, lr: float = 1e-3,
          ctc_weight: float = 1.0, kd_weight: float = 0.0, train_head: bool = False, val_size: int = 1000, val_every: int = 500,
          threads: int = 1, seed: int = 0, max_steps: int | None = None, shuffled_val: bool = False) -> float:
    """Returns the best validation char accuracy (the start's if nothing beat it).

    ``shuffled_val``: the held-out lines the checkpoint is chosen on have their characters
    shuffled, so a language prior learnt from synthetic text earns nothing there.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    charset = Charset.load(charset_path)
    model = load_student(init)
    val = CachedValidation(model, charset, val_size, held_out=True, shuffle_text=shuffled_val)
    val_seen = CachedValidation(model, charset, val_size // 2, held_out=False)
    best = start = val.score(model, charset)
    log.info("validation char accuracy at start: %.4f held-out font, %.4f training fonts",
             start, val_seen.score(model, charset))
    groups = sequence_parameters(model, train_head)
    for g in groups:
        g["lr"] *= lr
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    history = out.with_suffix(".history.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    source = ("training.train_seq: PP-OCRv6-tiny CNN (frozen, converted) + BiLSTM distilled from PP-OCRv6 small "
              "on cached synthetic lines")
    # ``out`` always holds the best model so far, the untrained start included
    save_checkpoint(out, model, None, 0, start, {"trained_seconds": 0.0, "start_val_char_acc": start,
                                                 "source": source})
    deadline, started, step, epoch = time.time() + minutes * 60, time.time(), 0, 0
    losses: list[tuple[float, float]] = []
    def finished() -> bool:
        return time.time() >= deadline or (max_steps is not None and step >= max_steps)

    while not finished():
        shards = existing_shards(cache)
        if not shards:
            raise SystemExit(f"no cached shards in {cache}; run python -m training.kd_cache first")
        batches = load_batches(shards)  # re-read: the builder may still be appending
        rng.shuffle(batches)
        epoch += 1
        log.info("epoch %d: %d batches from %d shards", epoch, len(batches), len(shards))
        for batch in batches:
            model.train()
            loss, kd, ctc = batch_loss(model, batch, charset, ctc_weight, kd_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 5.0)
            optimizer.step()
            step += 1
            losses.append((kd, ctc))
            if step % 100 == 0:
                kd_mean, ctc_mean = np.mean(losses, axis=0)
                losses.clear()
                log.info("step %d kd %.4f ctc %.4f (%.1f steps/s)", step, kd_mean, ctc_mean,
                         step / (time.time() - started))
            if step % val_every == 0:
                model.eval()
                acc, seen = val.score(model, charset), val_seen.score(model, charset)
                improved = acc > best
                log.info("step %d validation char accuracy %.4f held-out font (best %.4f, start %.4f), "
                         "%.4f training fonts%s", step, acc, best, start, seen, " *" if improved else "")
                with history.open("a") as f:
                    f.write(json.dumps({"step": step, "epoch": epoch, "val_char_acc": acc,
                                        "val_seen_fonts_char_acc": seen, "time": time.time()}) + "\n")
                if improved:
                    best = acc
                    save_checkpoint(out, model, None, step, best, {
                        "trained_seconds": time.time() - started, "start_val_char_acc": start, "source": source})
            if finished():
                break
    log.info("stopped at step %d (epoch %d); best validation %.4f vs start %.4f", step, epoch, best, start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("runs/kd_cache"))
    parser.add_argument("--init", type=Path, default=Path("weights/crnn_init.pt"))
    parser.add_argument("--out", type=Path, default=Path("runs/seq/best.pt"))
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ctc-weight", type=float, default=1.0)
    parser.add_argument("--kd-weight", type=float, default=0.0,
                        help="frame-level KL to the teacher; 0 by default: it lowered held-out accuracy (see docstring)")
    parser.add_argument("--train-head", action="store_true", help="also fine-tune the classifier (lr x0.1)")
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffled-val", action="store_true",
                        help="choose the checkpoint on held-out lines with shuffled characters (no language prior)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(args.cache, args.init, args.out, args.charset, args.minutes, lr=args.lr, ctc_weight=args.ctc_weight,
          kd_weight=args.kd_weight,
          train_head=args.train_head, val_size=args.val_size, val_every=args.val_every,
          threads=args.threads, seed=args.seed, shuffled_val=args.shuffled_val)


if __name__ == "__main__":
    main()
