"""Activations of the frozen lower CNN, computed once, for every real crop and for synthetic replay lines.

    python -m training.real_cache --out runs/real_cache

Why: the first ``FROZEN_BLOCKS`` mixer blocks of the CNN stay as ported (they see
pixels, and 24,808 crops are too few to retrain them without forgetting), so their
output is cached and a training step only runs the top of the network: the last
mixer blocks, the neck, the BiLSTM and the head. Each item also keeps the starting
model's top-k frame distribution, the target of the "learning without forgetting"
term, so the starting model never runs during training.

Four caches: the real training and validation crops (``training.real_data`` split),
synthetic replay lines (only the starting model's distributions are used on them,
never their labels) and synthetic validation lines in a font never trained on
(the forgetting check: real validation cannot see what ``../shared/train`` lacks).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ocr.recognize.charset import Charset
from ocr.recognize.lineprep import batch_tensor, prepare_line
from ocr.recognize.network import CRNN
from ocr.recognize.recognizer import load_crnn
from training.kd_cache import top_k_targets
from training.real_data import RealLine, read_all

log = logging.getLogger("training.real_cache")

#: mixer blocks kept frozen (of 9); blocks from here on are trained
FROZEN_BLOCKS = 7
#: widest normalised line in training (px): longer lines are squeezed, as at inference with a lower cap
MAX_WIDTH = 960
TOP_K = 8


def load_model(path: Path) -> CRNN:
    return load_crnn(path, verify=False)  # a training checkpoint has no SHA256SUMS line


def cache_depth(cache: Path) -> int:
    """How many mixer blocks a cache froze (its ``meta.json``; caches made before it froze ``FROZEN_BLOCKS``)."""
    meta = cache / "meta.json"
    return int(json.loads(meta.read_text())["frozen_blocks"]) if meta.exists() else FROZEN_BLOCKS


def lower_cnn(model: CRNN, images: torch.Tensor, frozen: int = FROZEN_BLOCKS) -> torch.Tensor:
    """The frozen part: stems and the first ``frozen`` mixer blocks -> e.g. [B,160,3,W/4] (7 blocks)."""
    x = model.backbone.stem2(F.gelu(model.backbone.stem1(images)))
    return model.backbone.blocks[:frozen](x)


def upper_logits(model: CRNN, acts: torch.Tensor, frozen: int = FROZEN_BLOCKS) -> torch.Tensor:
    """The trained part, from cached activations (after ``frozen`` blocks) to CTC logits [B,T,C]."""
    x = model.backbone.blocks[frozen:](acts)
    fmap = F.avg_pool2d(x, kernel_size=(3, 2), stride=(3, 2)).squeeze(2)
    return model.head(model.neck(fmap).transpose(1, 2))


def pad_column(model: CRNN, frozen: int = FROZEN_BLOCKS) -> torch.Tensor:
    """The lower CNN's activation for a column of zero (padding) input, e.g. [160,3], for batching in activation
    space."""
    with torch.no_grad():
        acts = lower_cnn(model, torch.zeros(1, 3, 48, 320), frozen)
    return acts[0, :, :, acts.shape[-1] // 2].clone()


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"unreadable image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@torch.no_grad()
def cache_item(model: CRNN, rgb: np.ndarray, frozen: int = FROZEN_BLOCKS) -> dict:
    prepared = prepare_line(rgb, max_width=MAX_WIDTH)
    images = batch_tensor([prepared])
    acts = lower_cnn(model, images, frozen)
    top_index, top_prob = top_k_targets(upper_logits(model, acts, frozen).softmax(-1)[0], TOP_K)
    return {"acts": acts[0].half(), "steps": prepared.steps, "top_index": top_index, "top_prob": top_prob}


def collate(batch: list[dict], pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(it["acts"].shape[-1] for it in batch)
    acts = pad[None, :, :, None].expand(len(batch), -1, -1, width).clone()
    frames = width // 2
    for i, it in enumerate(batch):
        acts[i, :, :, : it["acts"].shape[-1]] = it["acts"].float()
    steps = torch.tensor([min(it["steps"], frames) for it in batch])
    return (acts, steps, *stack_targets(batch, frames))


def stack_targets(batch: list[dict], frames: int, prefix: str = "top") -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's cached top-k frame targets (``prefix``: "top" the starting model's, "t" the
    teacher's, ``training.teacher_cache``), zero-padded to ``frames``."""
    k = batch[0][f"{prefix}_index"].shape[-1]
    index = torch.zeros(len(batch), frames, k, dtype=torch.long)
    prob = torch.zeros(len(batch), frames, k)
    for i, it in enumerate(batch):
        t = min(frames, it[f"{prefix}_index"].shape[0])
        index[i, :t] = it[f"{prefix}_index"][:t].long()
        prob[i, :t] = it[f"{prefix}_prob"][:t].float()
    return index, prob


def save_atomic(items: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(items, tmp)
    os.replace(tmp, path)


def cache_real(model: CRNN, lines: list[RealLine], path: Path, frozen: int = FROZEN_BLOCKS) -> None:
    if path.exists():
        log.info("%s exists: kept", path)
        return
    items, started = [], time.time()
    for i, line in enumerate(lines):
        item = cache_item(model, read_rgb(line.image), frozen)
        item.update(text=line.text, label=line.label, set_name=line.set_name, source=line.source)
        items.append(item)
        if i % 2000 == 0:
            log.info("%s: %d/%d (%.0f lines/s)", path.name, i, len(lines), (i + 1) / (time.time() - started))
    save_atomic(items, path)


def synthetic_lines(charset: Charset, n: int, *, held_out: bool, seed: int) -> Iterator:
    """``n`` synthetic lines (``training.synth``): replay lines, or (``held_out``) validation lines in fonts never
    trained on, degraded harder. The one recipe of every cache that holds them (seeded: reproducible)."""
    from training.synth import LineSynthesizer, held_out_fonts

    if held_out:
        synth = LineSynthesizer(charset.chars, seed=seed, fonts=held_out_fonts(), degrade=1.5)
    else:
        synth = LineSynthesizer(charset.chars, seed=seed)
    return (synth.sample() for _ in range(n))


def cache_synthetic(model: CRNN, charset: Charset, n: int, path: Path, *, held_out: bool, seed: int,
                    frozen: int = FROZEN_BLOCKS) -> None:
    if path.exists():
        log.info("%s exists: kept", path)
        return
    items = []
    for line in synthetic_lines(charset, n, held_out=held_out, seed=seed):
        item = cache_item(model, line.image, frozen)
        item.update(text=line.text, label=line.text, set_name="synthetic", source="synthetic")
        items.append(item)
    save_atomic(items, path)


def build(out: Path, init: Path, charset_path: Path, replay: int, synth_val: int,
          frozen: int = FROZEN_BLOCKS, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    meta = out / "meta.json"
    if meta.exists() and cache_depth(out) != frozen:
        raise SystemExit(f"{out} holds activations after {cache_depth(out)} blocks, not {frozen}: use another --out")
    meta.write_text(json.dumps({"frozen_blocks": frozen}))
    model = load_model(init)
    charset = Charset.load(charset_path)
    train, val = read_all()
    log.info("real lines: %d training, %d validation", len(train), len(val))
    cache_real(model, val, out / "real_val.pt", frozen)
    cache_synthetic(model, charset, synth_val, out / "synth_val.pt", held_out=True, seed=10_002, frozen=frozen)
    cache_real(model, train, out / "real_train.pt", frozen)
    cache_synthetic(model, charset, replay, out / "synth_replay.pt", held_out=False, seed=20_000, frozen=frozen)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/real_cache"))
    parser.add_argument("--init", type=Path, default=Path("weights/crnn.pt"))
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"))
    parser.add_argument("--replay", type=int, default=6000, help="synthetic replay lines (starting model's targets only)")
    parser.add_argument("--synth-val", type=int, default=800, help="held-out-font synthetic validation lines")
    parser.add_argument("--frozen-blocks", type=int, default=FROZEN_BLOCKS,
                        help="mixer blocks kept as ported (their output is cached); the rest train")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    build(args.out, args.init, args.charset, args.replay, args.synth_val, args.frozen_blocks, args.threads)


if __name__ == "__main__":
    main()
