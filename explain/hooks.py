"""Shared-model hygiene for explainers: one lock, a state guard, and a hook counter.

The recogniser's model is shared by every request. Explainers need it in eval
mode, with parameters frozen (only the input or a hooked activation needs a
gradient) and, for CAMs, with hooks attached. All of that is global state on
the model, so every explainer takes :data:`EXPLAIN_LOCK` while it holds the
model and puts everything back on the way out, also when it fails. Without the
lock, two explainers interleaving their save/restore of ``requires_grad``
would leave the parameters frozen for good.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from torch import nn

#: held by whoever changes the model's mode, flags or hooks; reentrant so that
#: an explainer may call another one from the same thread
EXPLAIN_LOCK = threading.RLock()


def count_hooks(model: nn.Module) -> int:
    """Hooks attached to ``model``: module forward/backward hooks plus parameter tensor hooks.

    Hooks on intermediate tensors live on the autograd graph, not on the model,
    and are unreachable from here (they die with the graph).
    """
    total = 0
    for module in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(module, attr, None) or {})
    for param in model.parameters():
        total += len(getattr(param, "_backward_hooks", None) or {})
        total += len(getattr(param, "_post_accumulate_grad_hooks", None) or {})
    return total


@contextmanager
def guarded_model(model: nn.Module, *, freeze: bool = True) -> Iterator[nn.Module]:
    """Hold the model exclusively in eval mode (parameters frozen) and restore it afterwards.

    Eval mode so BatchNorm uses its running statistics (an explanation must
    explain the same function inference runs); frozen so no parameter
    gradient is ever built or accumulated by an explanation.
    """
    with EXPLAIN_LOCK:
        modes = [(module, module.training) for module in model.modules()]
        flags = [(param, param.requires_grad) for param in model.parameters()]
        try:
            model.eval()
            if freeze:
                for param, _ in flags:
                    param.requires_grad_(False)
            yield model
        finally:
            for module, training in modes:
                module.training = training
            for param, requires_grad in flags:
                param.requires_grad_(requires_grad)


@contextmanager
def eval_guard(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode without serialising: a no-op for a model already in eval mode (the recogniser's is).

    For explainers that attach no hooks and need no parameter gradient
    (occlusion, input gradients): they change nothing on an eval-mode model,
    so concurrent requests need not wait for one another. A model in training
    mode is switched under :func:`guarded_model` and restored.
    """
    if any(module.training for module in model.modules()):
        with guarded_model(model, freeze=False):
            yield model
    else:
        yield model
