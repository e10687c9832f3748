"""2-D ResNet audio encoder for AVTS (spec 4.3): a ResNet over a log-mel "image".

Input ``(B, in_channels, n_mels, S)`` (frequency x time), output the dense map
``(B, C, F', S')`` with ``F' = ceil(n_mels / 32)``, ``S' = ceil(S / 32)`` (stem stride 2, max-pool
stride 2, stages 2..4 stride 2).

It is :class:`~glocal.models.resnet2d.ResNet2D` (basic-block depths only) with a 4-D
input/output contract, so there is one 2-D ResNet in the code base, and its weights are 5-D
(kernel depth 1), which keeps it compatible with the engine's ``channels_last_3d`` default.
"""

from __future__ import annotations

import torch

from glocal.errors import ConfigError
from glocal.models.resnet2d import RESNET2D_DEPTHS, BasicBlockFrame, ResNet2D

__all__ = ["BasicBlock2D", "ResNet2DAudio"]

#: the basic residual block (3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, + shortcut)
BasicBlock2D = BasicBlockFrame

_BASIC_DEPTHS = sorted(d for d, (kind, _) in RESNET2D_DEPTHS.items() if kind == "basic")


class ResNet2DAudio(ResNet2D):
    """ResNet-10/18/34 (basic blocks) over log-mel spectrograms.

    Stem: 7x7 conv stride 2 -> BN -> ReLU -> 3x3 max-pool stride 2; stages 64/128/256/512
    (times ``width_mult``, rounded, at least 1) with strides 1, 2, 2, 2.
    Kaiming-normal (fan_out) conv init, BN weight 1 / bias 0.

    ``forward(x: (B, in_channels, n_mels, S)) -> (B, out_channels, F', S')``.
    """

    def __init__(self, depth: int = 18, width_mult: float = 1.0, in_channels: int = 1) -> None:
        if depth not in _BASIC_DEPTHS:
            raise ConfigError(f"depth must be one of {_BASIC_DEPTHS}, got {depth!r}")
        super().__init__(depth=depth, width_mult=width_mult, in_channels=in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, n_mels, S) -> (B, out_channels, F', S')``."""
        if x.dim() != 4:
            raise ValueError(f"ResNet2DAudio expects (B, C, n_mels, S), got shape {tuple(x.shape)}")
        return super().forward(x)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``-> (feature_map (B, C, F', S'), pooled (B, C))``."""
        fmap = self.forward(x)
        return fmap, fmap.mean(dim=(2, 3))
