"""The pretraining entry point: config → (distributed) training loop → checkpoints and logs.

:func:`pretrain` runs in a single process or as one rank of ``torchrun`` (see
``docs/distributed.md``); the loop itself lives in :mod:`glocal.train.loop`.
"""

from __future__ import annotations

from typing import Any

from ..runtime.distributed import DistributedBatchSampler
from .config import PretrainConfig
from .loop import NonFiniteLoss, Trainer
from .runlog import CSVLog

__all__ = ["DistributedBatchSampler", "NonFiniteLoss", "CSVLog", "pretrain"]


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
    return Trainer(cfg, resume=resume, overwrite=overwrite).run()
