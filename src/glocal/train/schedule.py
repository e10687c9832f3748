"""Optimizers and per-iteration learning-rate schedules."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from .config import OptimConfig

__all__ = ["decay_groups", "build_optimizer", "lr_factor", "build_scheduler"]


def decay_groups(params: Iterable[torch.nn.Parameter], weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """Parameter groups for the optimizer: with ``weight_decay > 0`` and not
    ``decay_norm_and_bias``, the parameters with fewer than 2 dimensions (biases, BatchNorm /
    LayerNorm weights, learnable temperatures) form a second group without weight decay;
    otherwise one group. Empty groups are left out; frozen parameters are never passed."""
    params = [p for p in params if p.requires_grad]
    if weight_decay == 0 or decay_norm_and_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    decayed = [p for p in params if p.ndim >= 2]
    kept = [p for p in params if p.ndim < 2]
    return [g for g in ({"params": decayed, "weight_decay": weight_decay}, {"params": kept, "weight_decay": 0.0})
            if g["params"]]


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD with the configured (optionally batch-scaled) learning rate and weight
    decay on the groups of :func:`decay_groups` (``optim.decay_norm_and_bias``).

    Uses PyTorch's fused implementation (one kernel over all parameters) where it supports the
    parameters' device and dtype — on CPU the default per-parameter loop made Adam ~20 % of a
    paper-size GLCM step (``benchmarks/train_step.py``) — and the per-parameter loop otherwise.
    """
    lr = cfg.lr * global_batch / 256 if cfg.scale_lr_with_batch else cfg.lr
    groups = decay_groups(params, cfg.weight_decay, cfg.decay_norm_and_bias)
    params = [p for g in groups for p in g["params"]]
    if cfg.name == "sgd":
        cls, kwargs = torch.optim.SGD, {"momentum": cfg.momentum}
    elif cfg.name == "adamw":
        cls, kwargs = torch.optim.AdamW, {}
    else:
        cls, kwargs = torch.optim.Adam, {}
    kwargs.update(lr=lr)
    if _fused_ok(params):
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError):  # this build / device has no fused kernel for these parameters
            pass
    return cls(groups, **kwargs)


def _fused_ok(params: list[torch.nn.Parameter]) -> bool:
    """Fused optimizers need floating-point parameters on one CPU or CUDA device."""
    devices = {p.device.type for p in params}
    return bool(params) and len(devices) == 1 and devices <= {"cpu", "cuda"} and all(
        p.is_floating_point() for p in params
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base lr at ``step``.

    Warm-up: linear from 1/100 to 1 over ``warmup_steps``; then cosine
    ``min_ratio + (1 - min_ratio)·(1 + cos(π·p))/2`` with progress ``p`` in [0, 1], or constant.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return 0.01 + 0.99 * step / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR stepping once per iteration."""
    total = steps_per_epoch * epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    base = opt.param_groups[0]["lr"]
    min_ratio = min(1.0, cfg.min_lr / base) if base > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, warmup, cfg.schedule, min_ratio)
    )
