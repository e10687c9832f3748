"""The unit that DistributedDataParallel (and ``torch.compile``) wrap."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["LossModule"]


class LossModule(nn.Module):
    """``forward(batch) = method.training_losses(batch)``: the unit DDP (and ``torch.compile``) wrap."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return self.method.training_losses(batch)  # type: ignore[operator]
