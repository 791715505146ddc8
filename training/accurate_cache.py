"""The accurate model's neck feature sequences for every real crop and synthetic line, computed once.

    python -m training.convert_accurate --out runs/crnn_accurate_init.pt --no-export   # the port (BiLSTM off)
    python -m training.accurate_cache --init runs/crnn_accurate_init.pt --out runs/ctxAcc   # then:
    python -m training.train_context --init runs/crnn_accurate_init.pt --charset weights/charset_accurate.txt \
        --out runs/ctxAcc/best.pt ...   (make train: the shipped settings)

Why: the accurate model's BiLSTM is trained the way the fast model's was in stage A
(``training.train_context``): everything below it frozen, so each crop's CNN + attention-neck
sequence is computed once and a step runs only the BiLSTM and the head. The fast model's cache
(``training.real_cache``) holds activations of *its* CNN, so the accurate one needs its own.

The files are written in ``training.train_context.sequence_cache``'s format and names
(``seq_real_train.pt`` ...) into the run's directory, where that trainer finds them. The lines are
the same as the fast model's: ``training.real_data``'s split of ``../shared/train`` and
``training.real_cache``'s synthetic generators and seeds (drawn from the fast model's characters,
all of which the accurate charset holds). It reads nothing else: no eval set.

Lines are read in batches of similar width padded to at least 320 px, as the recogniser reads
them (``PADDLE_PAD_WIDTH``: the neck's attention sees the padding); a line keeps the frames of
that padded width, ``steps`` of which are its own.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ocr.recognize.charset import Charset
from ocr.recognize.lineprep import STRIDE_X, PreparedLine, batch_tensor, prepare_line
from ocr.recognize.network_accurate import PADDLE_PAD_WIDTH, AccurateCRNN
from training.kd_cache import top_k_targets
from training import real_cache
from training.real_cache import MAX_WIDTH, TOP_K, load_model, read_rgb, save_atomic
from training.real_data import RealLine, read_all

log = logging.getLogger("training.accurate_cache")

BATCH = 8
#: lines prepared at a time (bounds memory: a prepared 960 px line is 0.5 MB)
CHUNK = 2000

Line = tuple[np.ndarray, dict]  # (RGB image, the item's text fields)


def real_lines(lines: list[RealLine]) -> Iterator[Line]:
    for line in lines:
        yield read_rgb(line.image), {"text": line.text, "label": line.label, "set_name": line.set_name,
                                     "source": line.source}


def synthetic_lines(charset: Charset, n: int, *, held_out: bool, seed: int) -> Iterator[Line]:
    """``training.real_cache``'s synthetic lines: the same generator, fonts and seed."""
    for line in real_cache.synthetic_lines(charset, n, held_out=held_out, seed=seed):
        yield line.image, {"text": line.text, "label": line.text, "set_name": "synthetic", "source": "synthetic"}


def padded_frames(line: PreparedLine) -> int:
    return math.ceil(max(PADDLE_PAD_WIDTH, line.width) / STRIDE_X)


@torch.no_grad()
def sequence_items(model: AccurateCRNN, prepared: list[PreparedLine], fields: list[dict]) -> list[dict]:
    """One batch of similar-width lines -> items: the neck sequence and the model's own top-k reading."""
    seq = model.features(batch_tensor(prepared, pad_to=PADDLE_PAD_WIDTH))
    probs = model.classifier(model.feature_proj(seq)).softmax(-1)
    items = []
    for row, (line, keep) in enumerate(zip(prepared, fields)):
        t = padded_frames(line)
        top_index, top_prob = top_k_targets(probs[row, :t], TOP_K)
        items.append({**keep, "steps": line.steps, "seq": seq[row, :t].half(),
                      "top_index": top_index, "top_prob": top_prob})
    return items


def build_file(model: AccurateCRNN, lines: Iterator[Line], path: Path) -> None:
    if path.exists():
        log.info("%s exists: kept", path)
        return
    items: list[dict] = []
    started, chunk = time.time(), []
    for line in lines:
        chunk.append(line)
        if len(chunk) == CHUNK:
            items += chunk_items(model, chunk)
            chunk = []
            log.info("%s: %d lines (%.1f lines/s)", path.name, len(items), len(items) / (time.time() - started))
    items += chunk_items(model, chunk)
    save_atomic(items, path)
    log.info("%s: %d lines in %.0f s", path.name, len(items), time.time() - started)


def chunk_items(model: AccurateCRNN, chunk: list[Line]) -> list[dict]:
    """The chunk's items in its own order, read in batches sorted by width."""
    prepared = [prepare_line(rgb, max_width=MAX_WIDTH) for rgb, _ in chunk]
    order = sorted(range(len(chunk)), key=lambda i: prepared[i].width)
    out: list[dict | None] = [None] * len(chunk)
    for start in range(0, len(order), BATCH):
        idx = order[start : start + BATCH]
        for i, item in zip(idx, sequence_items(model, [prepared[i] for i in idx], [chunk[i][1] for i in idx])):
            out[i] = item
    return out  # type: ignore[return-value]


def build(out: Path, init: Path, charset_path: Path, replay: int, synth_val: int, threads: int) -> None:
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(init)
    if not isinstance(model, AccurateCRNN):
        raise SystemExit(f"{init} is not the accurate CRNN (use training.real_cache for the fast one)")
    charset = Charset.load(charset_path)
    train, val = read_all()
    build_file(model, real_lines(val), out / "seq_real_val.pt")
    build_file(model, synthetic_lines(charset, synth_val, held_out=True, seed=10_002), out / "seq_synth_val.pt")
    build_file(model, real_lines(train), out / "seq_real_train.pt")
    build_file(model, synthetic_lines(charset, replay, held_out=False, seed=20_000), out / "seq_synth_replay.pt")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ctxAcc"))
    parser.add_argument("--init", type=Path, default=Path("runs/crnn_accurate_init.pt"),
                        help="the port (python -m training.convert_accurate); its top-k are the forgetting targets")
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"),
                        help="the characters the synthetic lines are drawn from (the fast model's, as its cache)")
    parser.add_argument("--replay", type=int, default=6000)
    parser.add_argument("--synth-val", type=int, default=800)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    build(args.out, args.init, args.charset, args.replay, args.synth_val, args.threads)


if __name__ == "__main__":
    main()
