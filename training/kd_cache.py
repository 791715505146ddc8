"""Distillation data, computed once: frozen CNN features + the teacher's top-k frame targets.

    python -m training.kd_cache --out runs/kd_cache --minutes 60

Why: with the CNN frozen, one training step on live data spends ~90% of its
time rendering lines, running the teacher (PP-OCRv6 small) and the frozen
CNN. Caching those once makes a sequence-model epoch cost milliseconds per
line, so the BiLSTM sees tens of thousands of lines for many epochs instead
of a few thousand once.

Each shard holds whole batches as they would be built for training (lines of
similar width, padded together), so the sequence model is trained on exactly
the padding it meets at inference. Targets keep only the teacher's ``top_k``
classes per frame (renormalised): the rest carry ~0 probability mass.
Shards are written atomically and the builder resumes by shard number. Only
synthetic lines are used (``training.synth``): no real crop is read.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ocr.recognize.charset import Charset
from ocr.recognize.lineprep import batch_tensor
from ocr.recognize.network import CRNN, CRNNConfig

log = logging.getLogger("training.kd_cache")


@dataclass
class CachedBatch:
    features: torch.Tensor  # [B,T,C] float16: frozen CNN + neck output
    top_index: torch.Tensor | None  # [B,T,K] int16: teacher's top-k classes (student charset indices)
    top_prob: torch.Tensor | None  # [B,T,K] float16: their probabilities, renormalised to sum 1
    steps: torch.Tensor  # [B] frames that cover real (unpadded) image columns
    texts: list[str]

    def target_dense(self, num_classes: int) -> torch.Tensor:
        """[B,T,num_classes] float32 target distribution."""
        if self.top_index is None or self.top_prob is None:
            raise ValueError("this cache was built without a teacher (--no-teacher): no distillation targets")
        b, t, _ = self.top_index.shape
        dense = torch.zeros(b, t, num_classes)
        dense.scatter_(2, self.top_index.long(), self.top_prob.float())
        return dense


def load_student(path: Path) -> CRNN:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = CRNN(CRNNConfig(**state["config"]))
    model.load_state_dict(state["state_dict"])
    return model.eval()


def shard_path(out: Path, index: int) -> Path:
    return out / f"shard_{index:05d}.pt"


def existing_shards(out: Path) -> list[Path]:
    return sorted(out.glob("shard_*.pt"))


def load_batches(paths: list[Path]) -> list[CachedBatch]:
    batches: list[CachedBatch] = []
    for path in paths:
        for item in torch.load(path, map_location="cpu", weights_only=False):
            batches.append(CachedBatch(**item))
    return batches


def top_k_targets(probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A frame distribution cut to its ``k`` likeliest classes (int16) and their probabilities,
    renormalised to sum 1 (float16): the rest carry ~0 mass and would make the cache huge."""
    top_prob, top_index = probs.topk(k, dim=-1)
    return top_index.short(), (top_prob / top_prob.sum(-1, keepdim=True)).half()


@torch.no_grad()
def build_shard(model: CRNN, teacher, synth, charset: Charset, n_batches: int, batch_size: int,
                max_width: int, top_k: int) -> list[CachedBatch]:
    """Render ``n_batches * batch_size`` lines, sort them by width and batch neighbours together,
    as the recogniser's width bucketing does at inference. ``teacher=None`` stores no targets
    (CTC-only training needs none, and the teacher is most of the cost)."""
    from training.train import make_batch  # training helpers; imported lazily to keep this module light

    lines, prepared = make_batch(synth, charset, n_batches * batch_size, max_width)
    batches = []
    for start in range(0, len(lines), batch_size):
        chunk = prepared[start : start + batch_size]
        images = batch_tensor(chunk)
        features = model.features(images)
        top_index = top_prob = None
        if teacher is not None:
            probs = teacher(images)[:, : features.shape[1]]
            top_index, top_prob = top_k_targets(probs, top_k)
        batches.append(CachedBatch(
            features=features.half(), top_index=top_index, top_prob=top_prob,
            steps=torch.tensor([p.steps for p in chunk]).clamp(max=features.shape[1]),
            texts=[line.text for line in lines[start : start + batch_size]]))
    return batches


@torch.no_grad()
def build_consistency_shard(model: CRNN, synth, n_batches: int, batch_size: int, max_width: int,
                            top_k: int) -> list[CachedBatch]:
    """Features of *degraded* lines, targets from the frozen model reading the *same lines clean*.

    Why: a stronger teacher (PP-OCRv6 small) peaks a frame earlier than our CNN on ~19% of
    characters, and CTC on synthetic labels teaches synthetic text; here the teacher is the
    network itself at the start (BiLSTM inert), frame for frame on identical geometry, so the
    BiLSTM can only learn to read a degraded line as the model reads it clean.
    Measured (weights/README.md): 49,400 lines, 17,594 steps -- held-out-font accuracy did not
    rise (best +0.31 points, mostly below the start), so nothing was shipped.
    """
    from ocr.recognize.lineprep import prepare_line

    pairs = [synth.sample_pair() for _ in range(n_batches * batch_size)]
    clean = [prepare_line(c.image, max_width=max_width) for c, _ in pairs]
    degraded = [prepare_line(d.image, max_width=max_width) for _, d in pairs]
    order = sorted(range(len(pairs)), key=lambda i: clean[i].width)
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        features = model.features(batch_tensor([degraded[i] for i in idx]))
        probs = model.head(model.features(batch_tensor([clean[i] for i in idx]))).softmax(-1)
        top_index, top_prob = top_k_targets(probs, top_k)
        batches.append(CachedBatch(
            features=features.half(), top_index=top_index, top_prob=top_prob,
            steps=torch.tensor([clean[i].steps for i in idx]).clamp(max=features.shape[1]),
            texts=[pairs[i][0].text for i in idx]))
    return batches


def build(out: Path, student: Path, charset_path: Path, minutes: float, batches_per_shard: int = 16,
          batch_size: int = 16, max_width: int = 640, top_k: int = 8, threads: int = 1, seed: int = 0,
          use_teacher: bool = True, shuffle_text: bool = False, consistency: bool = False) -> int:
    """Append shards until ``minutes`` have passed; returns the number of shards on disk."""
    from training.synth import LineSynthesizer
    from training.train import Teacher

    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    charset = Charset.load(charset_path)
    model = load_student(student)
    teacher = Teacher(charset, threads) if use_teacher and not consistency else None
    deadline = time.time() + minutes * 60
    index = len(existing_shards(out))
    while time.time() < deadline:
        # a fresh generator per shard: resuming never repeats lines already cached
        synth = LineSynthesizer(charset.chars, seed=seed * 1_000_003 + 7919 * index + 1, shuffle_text=shuffle_text)
        started = time.time()
        if consistency:
            built = build_consistency_shard(model, synth, batches_per_shard, batch_size, max_width, top_k)
        else:
            built = build_shard(model, teacher, synth, charset, batches_per_shard, batch_size, max_width, top_k)
        items = [batch.__dict__ for batch in built]
        path = shard_path(out, index)
        tmp = path.with_suffix(".tmp")
        torch.save(items, tmp)
        os.replace(tmp, path)
        log.info("wrote %s (%d lines, %.1f lines/s)", path.name, batches_per_shard * batch_size,
                 batches_per_shard * batch_size / (time.time() - started))
        index += 1
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/kd_cache"))
    parser.add_argument("--student", type=Path, default=Path("weights/crnn_init.pt"),
                        help="checkpoint whose (frozen) CNN computes the cached features")
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-teacher", action="store_true",
                        help="store features and labels only (for CTC-only training; ~3x faster to build)")
    parser.add_argument("--shuffle-text", action="store_true",
                        help="shuffle each line's characters: context must come from pixels, not word order")
    parser.add_argument("--consistency", action="store_true",
                        help="student input: lines degraded in place (no rotation); target: --student's own "
                             "reading of the same lines clean (see build_consistency_shard)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    total = build(args.out, args.student, args.charset, args.minutes, top_k=args.top_k,
                  threads=args.threads, seed=args.seed, use_teacher=not args.no_teacher,
                  shuffle_text=args.shuffle_text, consistency=args.consistency)
    log.info("%d shards in %s", total, args.out)


if __name__ == "__main__":
    main()
