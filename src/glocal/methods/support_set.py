"""A queue of past embeddings that knows how full it is: NNCLR's support set of neighbour
candidates (SimCLR's ``method.nn_support``) and AVTS's video and audio queues, whose
nearest-neighbour positives wait until the queue has been filled once.

:class:`SupportSet` is a :class:`~glocal.methods.common.StagedQueue` (keys gathered from every
rank during the step, enqueued after the optimizer step) plus a checkpointed count of the keys
written so far and its host copy, so a method can ask "has the set been filled once?" every
step without a host synchronisation. Until it is full, its initial rows are random vectors,
which must not serve as anybody's neighbour.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .common import StagedQueue

__all__ = ["SupportSet"]


def _read_written(module: nn.Module, incompatible: Any) -> None:
    """``load_state_dict`` post-hook: the host copy of the loaded count (one read per load)."""
    module.keys_written = int(module.written)  # type: ignore[assignment]


class SupportSet(StagedQueue):
    """FIFO set of ``size`` L2-normalised ``dim``-d embeddings with a fill count.

    Buffers: ``queue`` ``(size, dim)`` and ``ptr`` (:class:`~glocal.objectives.FeatureQueue`),
    ``written`` (0-dim ``long``: keys enqueued so far, checkpointed); :attr:`keys_written` is its
    host copy.
    """

    written: Tensor

    def __init__(self, size: int, dim: int, **kwargs: Any) -> None:
        super().__init__(size, dim, **kwargs)
        self.register_buffer("written", torch.zeros((), dtype=torch.long))
        self.keys_written = 0
        self.register_load_state_dict_post_hook(_read_written)

    @property
    def full(self) -> bool:
        """Whether every row holds a real embedding (from the host copy: no host sync)."""
        return self.keys_written >= self.size

    @torch.no_grad()
    def flush(self) -> None:
        """Enqueue the staged keys (:meth:`StagedQueue.flush`) and count them."""
        staged = self.num_staged
        super().flush()
        self.written.add_(staged)
        self.keys_written += staged
