"""The teacher's frame targets for the real-line cache: PP-OCRv6 small's top-k, on the student's classes.

    python -m training.teacher_cache --cache runs/real_cache      # after training.real_cache

Why: the real crops teach their own domains and the "learning without forgetting" term keeps
what the starting model (tiny's network) read elsewhere, but nothing there reads better than
the start. PP-OCRv6 small does (eval: +4.2 char points on web Chinese, +9 line points on curved
words), so ``training.train_real --kd`` adds KL(teacher || student) on every real crop and on the
synthetic replay lines: the student learns small's reading of the same pixels. Small's output
is mapped onto the student's 6,906 classes (``training.train.Teacher``) and cut to the frames the
student's cached line has. Measured (weights/README.md, "PP-OCRv6 small as teacher on the real
crops"): the validation slice fell, so nothing trained this way is shipped.

The items are re-read in the order ``training.real_cache`` cached them (the same split of
``../shared/train``, the same replay generator and seed); their texts are checked against the
cache, so a target can never land on another line. Written atomically per file; a file that
exists is kept (resume). It reads ``../shared/train`` and synthetic lines only: no eval set.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ocr.recognize.charset import Charset
from ocr.recognize.lineprep import PreparedLine, batch_tensor, prepare_line
from training.kd_cache import top_k_targets
from training.real_cache import MAX_WIDTH, TOP_K, read_rgb, save_atomic, synthetic_lines
from training.real_data import read_all

log = logging.getLogger("training.teacher_cache")

#: the teacher was trained on 3x48x320 inputs; shorter lines are padded to this for it alone
TEACHER_PAD = 320
BATCH = 8


def real_images(items: list[dict], split: str) -> Iterator[np.ndarray]:
    train, val = read_all()
    lines = train if split == "train" else val
    if len(lines) != len(items):
        raise SystemExit(f"the cache holds {len(items)} {split} lines, ../shared/train has {len(lines)}: rebuild it")
    for line, item in zip(lines, items):
        if line.text != item["text"]:
            raise SystemExit(f"cache order differs from ../shared/train at {line.image.name}: rebuild it")
        yield read_rgb(line.image)


def replay_images(items: list[dict], charset: Charset, seed: int = 20_000) -> Iterator[np.ndarray]:
    """The replay lines again: ``training.real_cache.cache_synthetic``'s generator and seed."""
    for item, line in zip(items, synthetic_lines(charset, len(items), held_out=False, seed=seed)):
        if line.text != item["text"]:
            raise SystemExit("the replay generator no longer reproduces the cached lines: rebuild the cache")
        yield line.image


@torch.no_grad()
def teacher_targets(teacher, prepared: list[PreparedLine], frames: list[int]) -> list[dict]:
    """Top-k targets of one batch of similar-width lines, each cut to its cached frame count."""
    probs = teacher(batch_tensor(prepared, pad_to=TEACHER_PAD))
    out = []
    for row, t in enumerate(frames):
        index, prob = top_k_targets(probs[row, :t], TOP_K)
        if index.shape[0] < t:  # the student's padded batch was wider than the teacher's
            index = torch.cat([index, index[-1:].expand(t - index.shape[0], -1)])
            prob = torch.cat([prob, prob[-1:].expand(t - prob.shape[0], -1)])
        out.append({"t_index": index, "t_prob": prob})
    return out


def build_file(teacher, items: list[dict], images: Iterator[np.ndarray], path: Path) -> None:
    prepared = [prepare_line(rgb, max_width=MAX_WIDTH) for rgb in images]
    order = sorted(range(len(items)), key=lambda i: prepared[i].width)
    targets: list[dict | None] = [None] * len(items)
    started = time.time()
    for n, start in enumerate(range(0, len(order), BATCH)):
        idx = order[start : start + BATCH]
        frames = [items[i]["top_index"].shape[0] for i in idx]
        for i, target in zip(idx, teacher_targets(teacher, [prepared[i] for i in idx], frames)):
            targets[i] = target
        if n % 200 == 0:
            log.info("%s: %d/%d (%.0f lines/s)", path.name, start, len(items), (start + 1) / (time.time() - started))
    save_atomic(targets, path)  # type: ignore[arg-type]


def build(cache: Path, charset_path: Path, threads: int) -> None:
    from training.train import Teacher

    torch.set_num_threads(threads)
    charset = Charset.load(charset_path)
    teacher = Teacher(charset, threads)
    for name, images in (("synth_replay", lambda items: replay_images(items, charset)),
                         ("real_train", lambda items: real_images(items, "train"))):
        path = cache / f"teacher_{name}.pt"
        if path.exists():
            log.info("%s exists: kept", path)
            continue
        items = torch.load(cache / f"{name}.pt", map_location="cpu", weights_only=False)
        build_file(teacher, items, images(items), path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("runs/real_cache"))
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    build(args.cache, args.charset, args.threads)


if __name__ == "__main__":
    main()
