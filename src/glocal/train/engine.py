"""The pretraining entry point: config → (distributed) training loop → checkpoints and logs.

:func:`pretrain` runs in a single process or as one rank of ``torchrun`` (see
``docs/distributed.md``); the loop itself lives in :mod:`glocal.train.loop`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.build import build_pretrain_dataset as build_dataset
from ..data.dataset import MultiViewDataset
from ..errors import GlocalError
from ..methods import Method, build_method
from ..runtime.checkpoint import load_checkpoint
from .config import PretrainConfig, config_from_dict
from ..runtime.distributed import DistributedBatchSampler
from .loop import NonFiniteLoss, Trainer
from .runlog import CSVLog

__all__ = [
    "DistributedBatchSampler",
    "NonFiniteLoss",
    "CSVLog",
    "build_pretrain_dataset",
    "pretrain",
    "method_from_checkpoint",
]


def build_pretrain_dataset(cfg: PretrainConfig, with_audio: bool) -> MultiViewDataset:
    """The method's multi-view pretraining dataset (see :mod:`glocal.data.build`)."""
    return build_dataset(cfg, with_audio)


def method_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Method, PretrainConfig, dict]:
    """Rebuild the method of a checkpoint with its weights; returns (method, config, checkpoint)."""
    state = load_checkpoint(path, map_location="cpu")
    cfg = config_from_dict(state["config"])
    method = build_method(cfg.method, sample_rate=cfg.data.sample_rate, fps=cfg.data.fps)
    missing, unexpected = method.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise GlocalError(
            f"checkpoint {path} does not match the '{cfg.method.name}' architecture "
            f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})"
        )
    return method.to(device), cfg, state


def pretrain(cfg: PretrainConfig, *, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run pretraining; returns a summary dict (paths, steps, last losses, skipped samples, stop signal).

    Args:
        cfg: the validated config; ``train.batch_size`` is per rank.
        resume: ``"auto"`` (newest valid checkpoint in ``train.out_dir``; corrupt or partial ones
            are reported and skipped), a checkpoint path, or ``None`` (fresh start; refused when
            ``train.out_dir`` holds another run unless ``overwrite``).
        overwrite: a fresh start deletes the earlier run's checkpoints and logs in ``train.out_dir``.

    Under ``torchrun`` every rank calls this with the same config (see ``docs/distributed.md``).
    A SIGTERM / SIGINT saves a checkpoint at the next step boundary and returns with
    ``summary["stopped_by"]`` set.
    """
    return Trainer(cfg, build_pretrain_dataset, resume=resume, overwrite=overwrite).run()
