"""1-D ResNet audio trunk of GLCM (spec 1.5, ``resnet1d.py`` of the release).

Mel bins are channels and time is the only axis: ``(B, n_mels, S) -> (B, C_out, S)``. With the
default ``stride=1`` the time length is kept (the release ignores its stride arguments).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from glocal.errors import ConfigError

__all__ = ["BasicBlock1D", "ResNet1DAudio"]

ACTIVATIONS = ("leaky_relu", "relu")


def _act(name: str) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=0.01, inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    raise ConfigError(f"act must be one of {ACTIVATIONS}, got {name!r}")


class BasicBlock1D(nn.Module):
    """conv k (stride, bias) -> BN -> act -> conv k (bias) -> BN, + shortcut, act.

    The shortcut is a bias-free 1x1 conv + BN when channels or stride change, or when
    ``force_projection`` is set (the release projects in the first block of stage 1 too).
    ``(B, Cin, S) -> (B, Cout, ceil(S / stride))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        kernel_size: int = 3,
        act: str = "leaky_relu",
        force_projection: bool = False,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, stride, pad, bias=True)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, 1, pad, bias=True)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.act = _act(act)
        self.downsample: nn.Module | None = None
        if force_projection or stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm1d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, Cin, S) -> (B, Cout, S')``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + identity)


class ResNet1DAudio(nn.Module):
    """GLCM shared audio trunk: a 1-D ResNet-18 over time with mel bins as channels.

    conv1 (k 7, stride 1, pad 3, bias) -> BN -> act, then ``len(widths)`` stages of
    :class:`BasicBlock1D` (k 3). No max-pool (the release defines one but skips it).

    Args:
        in_channels: mel bins (80 in GLCM).
        widths: stage widths (before ``width_mult``); the stem has ``widths[0]`` channels.
        blocks: blocks per stage.
        stride: stride of the first block of stages 2..n (1 keeps the time length, as released).
        act: ``"leaky_relu"`` (release) or ``"relu"``.
        width_mult: scales every width (rounded, at least 1).
        release_shortcut: also project the shortcut of the first block of stage 1 (1x1 conv + BN,
            as the release does because it passes stride 2 there).

    Init: Xavier-normal conv weights, zero conv biases, BN weight 1 / bias 0.
    ``forward(x: (B, in_channels, S)) -> (B, out_channels, S)`` (for ``stride=1``).
    """

    def __init__(
        self,
        in_channels: int = 80,
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        stride: int = 1,
        act: str = "leaky_relu",
        width_mult: float = 1.0,
        release_shortcut: bool = True,
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ConfigError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        if not (isinstance(width_mult, (int, float)) and width_mult > 0):
            raise ConfigError(f"width_mult must be a positive number, got {width_mult!r}")
        if not isinstance(stride, int) or stride < 1:
            raise ConfigError(f"stride must be a positive int, got {stride!r}")
        widths = tuple(max(1, int(round(w * width_mult))) for w in widths)
        blocks = tuple(int(b) for b in blocks)
        if len(widths) == 0 or len(widths) != len(blocks) or any(b < 1 for b in blocks):
            raise ConfigError(
                f"widths and blocks need the same non-zero length and blocks >= 1, "
                f"got widths={widths!r}, blocks={blocks!r}"
            )
        self.conv1 = nn.Conv1d(in_channels, widths[0], 7, 1, 3, bias=True)
        self.bn1 = nn.BatchNorm1d(widths[0])
        self.act = _act(act)
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layer: list[nn.Module] = []
            for j in range(n):
                s = stride if (i > 0 and j == 0) else 1
                proj = release_shortcut and i == 0 and j == 0
                layer.append(BasicBlock1D(cin, w, s, 3, act, force_projection=proj))
                cin = w
            stages.append(nn.Sequential(*layer))
        self.stages = nn.ModuleList(stages)
        self.out_channels = widths[-1]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal conv weights, zero conv biases; BN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, S) -> (B, out_channels, S)``."""
        if x.dim() != 3:
            raise ValueError(f"ResNet1DAudio expects (B, n_mels, S), got shape {tuple(x.shape)}")
        x = self.act(self.bn1(self.conv1(x)))
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n_mels, S) -> (feature_map (B, C, S), pooled (B, C))`` (time mean)."""
        fmap = self.forward(x)
        return fmap, fmap.mean(dim=2)
