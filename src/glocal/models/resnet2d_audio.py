"""2-D ResNet audio encoder for AVTS (spec 4.3): a ResNet over a log-mel "image".

Input ``(B, in_channels, n_mels, S)`` (frequency x time), output the dense map
``(B, C, F', S')`` with ``F' = ceil(n_mels / 32)``, ``S' = ceil(S / 32)`` (stem stride 2, max-pool
stride 2, stages 2..4 stride 2).
"""

from __future__ import annotations

import torch
from torch import nn

from glocal.errors import ConfigError

__all__ = ["BasicBlock2D", "ResNet2DAudio"]

_DEPTH_LAYERS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class BasicBlock2D(nn.Module):
    """3x3 conv (stride) -> BN -> ReLU -> 3x3 conv -> BN, + shortcut (1x1 conv + BN on shape
    change), ReLU. ``(B, Cin, F, S) -> (B, Cout, F / s, S / s)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet2DAudio(nn.Module):
    """ResNet-10/18/34 (basic blocks) over log-mel spectrograms.

    Stem: 7x7 conv stride 2 -> BN -> ReLU -> 3x3 max-pool stride 2; stages 64/128/256/512
    (times ``width_mult``, rounded, at least 1) with strides 1, 2, 2, 2.
    Kaiming-normal (fan_out) conv init, BN weight 1 / bias 0.

    ``forward(x: (B, in_channels, n_mels, S)) -> (B, out_channels, F', S')``.
    """

    def __init__(self, depth: int = 18, width_mult: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        if depth not in _DEPTH_LAYERS:
            raise ConfigError(f"depth must be one of {sorted(_DEPTH_LAYERS)}, got {depth!r}")
        if not (isinstance(width_mult, (int, float)) and width_mult > 0):
            raise ConfigError(f"width_mult must be a positive number, got {width_mult!r}")
        widths = [max(1, int(round(w * width_mult))) for w in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, _DEPTH_LAYERS[depth])):
            layer = []
            for j in range(n):
                layer.append(BasicBlock2D(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*layer))
        self.stages = nn.ModuleList(stages)
        self.out_channels = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, n_mels, S) -> (B, out_channels, F', S')``."""
        if x.dim() != 4:
            raise ValueError(
                f"ResNet2DAudio expects (B, C, n_mels, S), got shape {tuple(x.shape)}"
            )
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``-> (feature_map (B, C, F', S'), pooled (B, C))``."""
        fmap = self.forward(x)
        return fmap, fmap.mean(dim=(2, 3))
