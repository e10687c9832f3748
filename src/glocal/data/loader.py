"""The pretraining ``DataLoader``: one place that sets how samples reach the step.

Used by the training loop (:mod:`glocal.train.loop`) and measured as it is by
``benchmarks/feed.py``, so the benchmark's figures are the loader training runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .dataset import collate_samples

__all__ = ["PREFETCH_FACTOR", "pretrain_loader"]

#: batches each worker keeps ready ahead of the step
PREFETCH_FACTOR = 4


def pretrain_loader(dataset: Dataset, batch_sampler: Sampler[list[Any]], *, num_workers: int, pin_memory: bool,
                    seed: int) -> DataLoader:
    """A loader over ``batch_sampler``'s batches (lists of ``(epoch, index)`` items) of ``dataset``.

    Workers are persistent: they start once, not at every epoch (a restart cost 2 s at the first
    step of every epoch on a GPU node, issue 14), and the epoch reaches them with each item.
    ``seed`` seeds the loader's own generator, which seeds the workers' global RNGs (no sample
    draws from them: samples are keyed by ``(seed, epoch, index)``) and leaves the global torch
    stream alone. ``pin_memory``: page-locked batches for asynchronous host-to-device copies (CUDA).
    """
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=PREFETCH_FACTOR if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
