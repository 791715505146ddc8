"""Scalar scores on the CTC output, the things an explanation attributes.

A CRNN has no single class logit: it emits a distribution per time step. To
ask "why this character?" we need one number that the character's evidence
raises. Every score here is a plain callable on the model's logits:

* ``[T, C]`` (one sample, what torchcam passes per sample to ``targets=``)
  -> a 0-d tensor;
* ``[B, T, C]`` (a batch, as occlusion and integrated gradients use it)
  -> a ``[B]`` tensor, one score per sample.

So the same object works with ``torchcam.methods.*(targets=...)`` and with the
batched explainers in this package. Scores are log-probabilities (not raw
logits) because that is what CTC decoding and the confidences are built on.
"""

from __future__ import annotations

from typing import Callable, Literal, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ocr.recognize.charset import BLANK
from ocr.decode import CharSpan

Reduce = Literal["sum", "mean"]


class ScoreTarget(Protocol):
    def __call__(self, logits: torch.Tensor) -> torch.Tensor: ...


Target = Callable[[torch.Tensor], torch.Tensor]


def _batched(logits: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """View ``[T,C]`` as a batch of one; tell the caller whether to squeeze back."""
    if logits.ndim == 2:
        return logits.unsqueeze(0), True
    if logits.ndim == 3:
        return logits, False
    raise ValueError(f"expected logits [T,C] or [B,T,C], got shape {tuple(logits.shape)}")


def _finish(scores: torch.Tensor, single: bool) -> torch.Tensor:
    return scores[0] if single else scores


class LinePathScore:
    """Log-probability of the decoded best path (blanks included) over the valid frames.

    Explains the whole reading at once: every frame's winning class, the
    blanks between characters too, since they are what separates them.
    """

    def __init__(self, path_classes: Sequence[int] | np.ndarray | torch.Tensor, steps: int | None = None) -> None:
        if isinstance(path_classes, torch.Tensor):
            path_classes = path_classes.detach().cpu().numpy()
        # kept as numpy: a tensor made under the caller's inference_mode could never join a graph
        path = np.asarray(path_classes, dtype=np.int64).reshape(-1)
        self.steps = int(path.size if steps is None else min(int(steps), path.size))
        if self.steps < 1:
            raise ValueError("the best path needs at least one frame")
        self.path = path[: self.steps].copy()

    @classmethod
    def from_logits(cls, logits: torch.Tensor, steps: int | None = None) -> "LinePathScore":
        """The best path of ``logits`` ([T,C] or [1,T,C]) as the target."""
        frames = logits.detach().reshape(-1, logits.shape[-1])
        return cls(frames.argmax(-1), steps)

    @classmethod
    def from_probs(cls, probs: np.ndarray, steps: int | None = None) -> "LinePathScore":
        return cls(np.asarray(probs).argmax(-1), steps)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(logits)
        n = min(self.steps, batch.shape[1])
        logp = F.log_softmax(batch[:, :n].float(), dim=-1)
        index = torch.from_numpy(self.path[:n]).to(batch.device).view(1, n, 1).expand(batch.shape[0], n, 1)
        return _finish(logp.gather(2, index)[..., 0].sum(1), single)

    def __repr__(self) -> str:
        return f"LinePathScore(steps={self.steps})"


class CharScore:
    """One character's log-probability over its own frames ``t_start..t_end`` (inclusive).

    Only the character's frames count, the same frames its confidence comes
    from, so the attribution answers "what made these frames say this
    class". ``reduce="mean"`` makes scores of long and short characters
    comparable; ``"sum"`` (default) is the log-probability of the run.
    """

    def __init__(self, index: int, t_start: int, t_end: int, reduce: Reduce = "sum") -> None:
        if index == BLANK:
            raise ValueError("a character target cannot be the blank class")
        if t_start < 0 or t_end < t_start:
            raise ValueError(f"bad frame range {t_start}..{t_end}")
        if reduce not in ("sum", "mean"):
            raise ValueError("reduce must be 'sum' or 'mean'")
        self.index, self.t_start, self.t_end, self.reduce = int(index), int(t_start), int(t_end), reduce

    @classmethod
    def from_span(cls, span: CharSpan, reduce: Reduce = "sum") -> "CharScore":
        return cls(span.index, span.t_start, span.t_end, reduce)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(logits)
        if self.t_start >= batch.shape[1]:
            raise ValueError(f"frame {self.t_start} is outside the {batch.shape[1]} output frames")
        frames = batch[:, self.t_start : self.t_end + 1].float()
        logp = F.log_softmax(frames, dim=-1)[..., self.index]
        return _finish(logp.sum(1) if self.reduce == "sum" else logp.mean(1), single)

    def __repr__(self) -> str:
        return f"CharScore(index={self.index}, t={self.t_start}..{self.t_end}, {self.reduce})"


class CTCLossScore:
    """Minus the CTC loss of ``labels``: the log-likelihood of a transcription over all alignments.

    Unlike the best path it does not commit to one alignment, so it also
    explains a *different* text (the ground truth) than the one read.
    """

    def __init__(self, labels: Sequence[int], steps: int | None = None) -> None:
        self.labels = [int(x) for x in labels]
        if any(x == BLANK for x in self.labels):
            raise ValueError("labels must not contain the blank class")
        self.steps = steps

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(logits)
        b, t, _ = batch.shape
        n = t if self.steps is None else max(1, min(int(self.steps), t))
        log_probs = F.log_softmax(batch[:, :n].float(), dim=-1).transpose(0, 1)  # [T,B,C]
        targets = torch.tensor(self.labels, dtype=torch.long).repeat(b, 1).view(b, -1)
        loss = F.ctc_loss(
            log_probs, targets,
            input_lengths=torch.full((b,), n, dtype=torch.long),
            target_lengths=torch.full((b,), len(self.labels), dtype=torch.long),
            blank=BLANK, reduction="none", zero_infinity=True,
        )
        return _finish(-loss, single)

    def __repr__(self) -> str:
        return f"CTCLossScore({len(self.labels)} labels)"


class CharLogit:
    """A character's class *logit* summed over its own frames (pre-softmax, as the CAM papers use).

    The per-character CAM target of ``explain.registry``: a log-probability
    (:class:`CharScore`) measures the margin against competing characters, and
    its CAM peaked on the character's own glyph for 66.7% of characters in the
    pointing game against 82.7% for the logit (BENCHMARKS.md). Takes logits
    ``[T, C]`` -> 0-d or ``[B, T, C]`` -> ``[B]``, like the targets of
    :mod:`explain.targets`.
    """

    def __init__(self, index: int, t_start: int, t_end: int) -> None:
        self.index, self.t_start, self.t_end = int(index), int(t_start), int(t_end)

    @classmethod
    def from_target(cls, target: CharScore) -> "CharLogit":
        return cls(target.index, target.t_start, target.t_end)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        batch = logits.unsqueeze(0) if logits.ndim == 2 else logits
        out = batch[:, self.t_start : self.t_end + 1, self.index].float().sum(1)
        return out[0] if logits.ndim == 2 else out

    def __repr__(self) -> str:
        return f"CharLogit(index={self.index}, t={self.t_start}..{self.t_end})"


def char_targets(chars: Sequence[CharSpan], reduce: Reduce = "sum") -> list[CharScore]:
    """One :class:`CharScore` per decoded character, in reading order."""
    return [CharScore.from_span(c, reduce) for c in chars]


def batch_scores(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """``[B]`` scores of any target.

    The targets of this module score a whole batch at once; any other callable
    is taken to be torchcam-style (one ``[T,C]`` sample) and is called per
    sample, since feeding it a batch could silently mean something else.
    """
    if isinstance(target, (LinePathScore, CharScore, CTCLossScore)):
        return target(logits)
    return torch.stack([target(sample).reshape(()) for sample in logits.unbind(0)])
