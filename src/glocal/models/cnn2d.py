"""A plain VGG-style 2-D CNN applied frame by frame, for small frames (32-128 px).

The ResNets' stem is one 7x7 convolution at stride 2 (in the 2-D ResNet also a max-pool), so at
64 px the first residual stage already works at 32 px (R3D) or 16 px (ResNet-2D), and a small
object is seen at full resolution by that one strided filter only. This trunk keeps the full
resolution for its first two 3x3 convolutions and halves it only after every pair, the layout of
the small VGG-style CNNs that image classifiers at 32-64 px are built from. With the labels it
learns the real-parts classes about twice as well as R3D-10 or ResNet-18 at the same budget
(``benchmarks/supervised_ceiling.py``; docs/methods_results.md "What the encoders learn with
labels"), and it needs max pooling over positions to do so.

Layout (``depth`` 3x3 conv-BN-ReLU layers, two per stage; widths ``32·m, 64·m, 128·m[, 256·m]``,
rounded, at least 1): after every stage a 2x2 max-pool, except after the last one with
``last_stride=1``. So ``forward(x: (B, C, T, H, W)) -> (B, C', T, H / 2^s, W / 2^s)`` with
``s = depth / 2`` stages (``s - 1`` with ``last_stride=1``): at 64 px and depth 6 an 8 x 8 map.
``forward_with_tap(x, k)`` also returns an early map, as :class:`~glocal.models.resnet3d.ResNet3D`
does (CtrlAug's MI critic reads it): ``k = 0`` the first conv-BN-ReLU at full resolution,
``k >= 1`` the output of stage ``k`` (after its pool).

Every convolution is a ``Conv3d`` with a ``1 x 3 x 3`` kernel (as in :mod:`glocal.models.resnet2d`):
frames never mix, ``BatchNorm3d`` over ``(B, T, H, W)`` has the statistics of ``BatchNorm2d``
over the ``B·T`` frames, and the module takes the 5-D clips every method receives.
"""

from __future__ import annotations

import torch
from torch import nn

from glocal.errors import ConfigError
from glocal.models.resnet2d import frame_conv, init_frame_net, on_frames

__all__ = ["PlainCNN2D", "CNN2D_DEPTHS"]

#: depth (conv layers) -> stage widths before ``width_mult``
CNN2D_DEPTHS: dict[int, tuple[int, ...]] = {6: (32, 64, 128), 8: (32, 64, 128, 256)}


class PlainCNN2D(nn.Module):
    """Stages of two ``3 x 3`` conv-BN-ReLU per frame, a ``2 x 2`` max-pool after each (see the
    module docstring). Kaiming-normal (fan_out) conv init, BN weight 1 / bias 0.

    ``forward(x: (B, C, T, H, W)) -> (B, out_channels, T, H', W')``; a 4-D image batch
    ``(B, C, H, W)`` gives ``(B, out_channels, H', W')``.

    Attributes: ``out_channels``, ``stage_channels`` (the width of each stage), ``num_taps``.
    """

    def __init__(self, depth: int = 6, width_mult: float = 1.0, in_channels: int = 3, last_stride: int = 2) -> None:
        super().__init__()
        if depth not in CNN2D_DEPTHS:
            raise ConfigError(f"cnn2d depth (its number of 3x3 conv layers) must be one of {sorted(CNN2D_DEPTHS)}, "
                              f"got {depth!r}")
        if not (isinstance(width_mult, (int, float)) and width_mult > 0):
            raise ConfigError(f"width_mult must be a positive number, got {width_mult!r}")
        if last_stride not in (1, 2):
            raise ConfigError(f"cnn2d last_stride must be 1 or 2, got {last_stride!r}")
        widths = [max(1, int(round(w * width_mult))) for w in CNN2D_DEPTHS[depth]]
        layers: list[nn.Module] = []
        ends = [3]  # tap 0: after the first conv-BN-ReLU
        cin = in_channels
        for i, w in enumerate(widths):
            for _ in range(2):
                layers += [frame_conv(cin, w, 3), nn.BatchNorm3d(w), nn.ReLU(inplace=True)]
                cin = w
            if i < len(widths) - 1 or last_stride == 2:
                layers.append(nn.MaxPool3d((1, 2, 2), (1, 2, 2)))
            ends.append(len(layers))
        self.features = nn.Sequential(*layers)  # one Sequential: the state-dict keys stay "features.{i}"
        self._tap_ends = tuple(ends)  # layers run before tap k's map
        self.depth = depth
        self.out_channels = cin
        self.stage_channels = tuple(widths)
        self.num_taps = len(ends)
        init_frame_net(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> (B, C', T, H', W')`` (or 4-D in, 4-D out)."""
        return on_frames(self.features, x, "PlainCNN2D")

    def tap_channels(self, tap: int) -> int:
        """Channels of ``forward_with_tap``'s early map at ``tap``."""
        self._check_tap(tap)
        return self.stage_channels[0] if tap == 0 else self.stage_channels[tap - 1]

    def _check_tap(self, tap: int) -> None:
        if not 0 <= tap < self.num_taps:
            raise ValueError(f"tap must be in [0, {self.num_taps - 1}] (0: the first conv, k: after stage k) "
                             f"for this {self.depth}-layer cnn2d; got {tap}")

    def forward_with_tap(self, x: torch.Tensor, tap: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(early map at tap, final map)`` of a clip ``(B, C, T, H, W)``: ``(B, C_k, T, H_k, W_k)``
        and ``(B, out_channels, T, H', W')`` (see the module docstring for the taps)."""
        self._check_tap(tap)
        if x.dim() != 5:
            raise ValueError(f"PlainCNN2D.forward_with_tap expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        end, tapped = self._tap_ends[tap], x
        for i, layer in enumerate(self.features, start=1):  # one pass; the early map kept on the way
            x = layer(x)
            if i == end:
                tapped = x
        return tapped, x
