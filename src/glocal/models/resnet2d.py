"""2-D ResNet (torchvision layout) applied frame by frame, plus TSN consensus (spec 2.4, 7.4).

VCLR's encoder is an image ResNet-50 run on single frames. Here every 2-D convolution is a
``Conv3d`` with a ``1 x k x k`` kernel and ``1 x s x s`` stride, so one module takes a clip
``(B, C, T, H, W)`` and processes its ``T`` frames independently:

- convolutions never mix frames (temporal kernel and stride 1);
- ``BatchNorm3d`` over ``(B, T, H, W)`` has exactly the statistics of ``BatchNorm2d`` over the
  ``B·T`` frames stacked as a batch.

So ``ResNet2D`` on a clip equals a torchvision ResNet on the reshaped ``(B·T, C, H, W)`` frame
batch, while staying compatible with ``channels_last_3d`` (which the training loop applies to the
whole method) and with the 5-D video batches every method receives. Torchvision / MoCo-v2
checkpoints load through :meth:`ResNet2D.load_2d_state_dict` (4-D conv weights gain a unit time
axis); parameter names mirror torchvision (``conv1``, ``bn1``, ``layer1`` ... ``layer4``).

Depths: 18 / 34 (basic blocks, widths 64·m ... 512·m) and 50 / 101 (bottlenecks, stride on the
3x3 conv as in torchvision "v1.5", output ``2048·m`` channels).
"""

from __future__ import annotations

from typing import Callable, Literal, Mapping

import torch
from torch import nn

from glocal.errors import ConfigError

__all__ = ["ResNet2D", "BasicBlockFrame", "BottleneckFrame", "TSNConsensus", "frame_conv", "init_frame_net",
           "on_frames", "RESNET2D_DEPTHS"]

#: depth -> (block, blocks per stage)
RESNET2D_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}


def frame_conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv3d:
    """A 2-D ``k x k`` convolution per frame: ``Conv3d`` kernel ``(1, k, k)``, stride
    ``(1, s, s)``, padding ``(0, k // 2, k // 2)``, no bias."""
    return nn.Conv3d(cin, cout, (1, k, k), (1, stride, stride), (0, k // 2, k // 2), bias=False)


def init_frame_net(net: nn.Module) -> None:
    """Kaiming-normal (fan_out) on every ``Conv3d``, weight 1 / bias 0 on every ``BatchNorm3d``."""
    for m in net.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def on_frames(trunk: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, name: str) -> torch.Tensor:
    """Run a frame-wise ``trunk`` on a clip ``(B, C, T, H, W)``, or on an image batch ``(B, C, H, W)``
    (as a one-frame clip, returned 4-D); any other rank raises naming ``name``."""
    image = x.dim() == 4
    if image:
        x = x.unsqueeze(2)
    if x.dim() != 5:
        raise ValueError(f"{name} expects (B, C, T, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    y = trunk(x)
    return y.squeeze(2) if image else y


def _downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(frame_conv(cin, cout, 1, stride), nn.BatchNorm3d(cout))


class BasicBlockFrame(nn.Module):
    """torchvision ``BasicBlock`` per frame: 3x3 (stride) -> BN -> ReLU -> 3x3 -> BN, + shortcut.
    ``(B, Cin, T, H, W) -> (B, Cout, T, H / s, W / s)``."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = frame_conv(cin, width, 3, stride)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = frame_conv(width, width, 3)
        self.bn2 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class BottleneckFrame(nn.Module):
    """torchvision ``Bottleneck`` per frame: 1x1 -> 3x3 (stride) -> 1x1 (x4), BN + ReLU, shortcut.
    ``(B, Cin, T, H, W) -> (B, 4·width, T, H / s, W / s)``."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = frame_conv(cin, width, 1)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = frame_conv(width, width, 3, stride)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = frame_conv(width, cout, 1)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet2D(nn.Module):
    """Image ResNet-18/34/50/101 applied to every frame of a clip (see the module docstring).

    Stem: 7x7 conv stride 2 -> BN -> ReLU -> 3x3 max-pool stride 2; stages of widths
    ``64·m, 128·m, 256·m, 512·m`` (rounded, at least 1; bottlenecks output 4x) with spatial strides
    1, 2, 2, 2 (``last_stride=1``: 1, 2, 2, 1, a map twice as fine). Kaiming-normal (fan_out)
    conv init, BN weight 1 / bias 0.

    ``forward(x: (B, C, T, H, W)) -> (B, out_channels, T, H / 32, W / 32)``; a 4-D image batch
    ``(B, C, H, W)`` is accepted too and gives ``(B, out_channels, H / 32, W / 32)``. With
    ``last_stride=1`` both maps are ``H / 16 x W / 16``.
    """

    def __init__(self, depth: int = 50, width_mult: float = 1.0, in_channels: int = 3,
                 zero_init_residual: bool = False, last_stride: int = 2) -> None:
        super().__init__()
        if depth not in RESNET2D_DEPTHS:
            raise ConfigError(f"resnet2d depth must be one of {sorted(RESNET2D_DEPTHS)}, got {depth!r}")
        if not (isinstance(width_mult, (int, float)) and width_mult > 0):
            raise ConfigError(f"width_mult must be a positive number, got {width_mult!r}")
        if last_stride not in (1, 2):
            raise ConfigError(f"resnet2d last_stride must be 1 or 2, got {last_stride!r}")
        kind, layers = RESNET2D_DEPTHS[depth]
        block: type[BasicBlockFrame] | type[BottleneckFrame] = BasicBlockFrame if kind == "basic" else BottleneckFrame
        widths = [max(1, int(round(w * width_mult))) for w in (64, 128, 256, 512)]
        self.conv1 = nn.Conv3d(in_channels, widths[0], (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        cin = widths[0]
        for i, (w, n, stage_stride) in enumerate(zip(widths, layers, (1, 2, 2, last_stride))):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, w, stage_stride if j == 0 else 1))
                cin = w * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.depth = depth
        self.out_channels = cin
        init_frame_net(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BottleneckFrame):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlockFrame):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> (B, C', T, H', W')`` (or 4-D in, 4-D out)."""
        return on_frames(self._trunk, x, "ResNet2D")

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame pooled features: ``(B, C, T, H, W) -> (B, T, C')`` (spatial mean)."""
        return self.forward(x).mean(dim=(3, 4)).transpose(1, 2)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, H, W) -> (feature_map (B, C', T, H', W'), pooled (B, C'))`` (mean over
        frames and positions = TSN mean consensus of per-frame pooled features)."""
        fmap = self.forward(x)
        return fmap, fmap.mean(dim=(2, 3, 4))

    def load_2d_state_dict(self, state: Mapping[str, torch.Tensor], strict: bool = True) -> tuple[list[str], list[str]]:
        """Load a torchvision-layout 2-D state dict (e.g. MoCo-v2 ``encoder_q`` with the prefix
        stripped): 4-D conv weights ``(O, I, k, k)`` become ``(O, I, 1, k, k)``; ``fc.*`` keys are
        ignored. Returns ``(missing, unexpected)`` as :meth:`load_state_dict`."""
        converted = {k: (v.unsqueeze(2) if v.dim() == 4 else v) for k, v in state.items() if not k.startswith("fc.")}
        result = self.load_state_dict(converted, strict=strict)
        return list(result.missing_keys), list(result.unexpected_keys)


class TSNConsensus(nn.Module):
    """Segmental consensus ``C`` over frames / segments: ``(B, K, C) -> (B, C)`` by ``mean``
    (TSN, VCLR) or ``max``."""

    def __init__(self, mode: Literal["mean", "max"] = "mean") -> None:
        super().__init__()
        if mode not in ("mean", "max"):
            raise ConfigError(f"consensus mode must be 'mean' or 'max', got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"TSNConsensus expects (B, K, C), got shape {tuple(x.shape)}")
        return x.mean(dim=1) if self.mode == "mean" else x.amax(dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
