"""3-D ResNet family (R3D, R(2+1)D and the GLCM "SF" pathways) in plain PyTorch.

One code path builds both tiny CPU test models and paper-size models; only widths change.

Tensor layout everywhere: ``(B, C, T, H, W)``. Every module works with
``x.to(memory_format=torch.channels_last_3d)`` (and a model converted with
``model.to(memory_format=torch.channels_last_3d)``) and under
``torch.autocast("cpu", dtype=torch.bfloat16)``; on CPUs with AMX that combination is the fast path.

Blocks
------
* :class:`BasicBlock3D` -- R3D: two 3x3x3 convs.
* :class:`BasicBlock2Plus1D` -- R(2+1)D: each 3x3x3 conv factorised into a 1x3x3 spatial conv and a
  3x1x1 temporal conv with ``M = floor(t d^2 Cin Cout / (d^2 Cin + t Cout))`` mid channels
  (Tran et al. 2018), computed per conv from that conv's own ``Cin``/``Cout``.
* :class:`BasicBlockSF` -- GLCM release ``BasicBlock_SF``: one 3x3x3 conv plus one 1x1x1 conv.

All blocks: BN after every conv, ReLU, residual add, and a 1x1x1 conv + BN shortcut when the shape
changes (shortcut "B").
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from glocal.errors import ConfigError

__all__ = [
    "BLOCK_TYPES",
    "BasicBlock3D",
    "BasicBlock2Plus1D",
    "Conv2Plus1D",
    "Conv3d",
    "BasicBlockSF",
    "ResNet3D",
    "VIDEO_BACKBONES",
    "build_video_backbone",
    "r2plus1d_mid_channels",
    "scale_width",
]

BLOCK_TYPES = ("r3d", "r2plus1d", "sf")
VIDEO_BACKBONES = ("r3d", "r2plus1d", "glcm_slow", "glcm_fast")
DEPTH_LAYERS: dict[int, tuple[int, int, int, int]] = {
    10: (1, 1, 1, 1),
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
}


def r2plus1d_mid_channels(in_channels: int, out_channels: int, t: int = 3, d: int = 3) -> int:
    """Mid channels of a (2+1)D factorisation of a ``t x d x d`` conv ``Cin -> Cout``.

    ``M = floor(t * d^2 * Cin * Cout / (d^2 * Cin + t * Cout))`` keeps the parameter count of the
    factorised pair (``M * (d^2 Cin + t Cout)``) at most that of the full 3-D conv. Never below 1.
    """
    m = (t * d * d * in_channels * out_channels) // (d * d * in_channels + t * out_channels)
    return max(1, int(m))


def scale_width(width: int, mult: float) -> int:
    """``round(width * mult)``, at least 1."""
    return max(1, int(round(width * mult)))


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels)


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that pads time explicitly when the clip is shorter than the temporal kernel.

    Works around a CPU bug seen with torch 2.13.0+cpu (oneDNN 3.12, AMD EPYC with avx512_bf16):
    under bf16 autocast the *weight gradient* of a Conv3d is wrong (NaN / inf / garbage) whenever
    ``1 < T_in < kernel_t`` (temporal padding making the output non-empty); forward and input
    gradients are fine, and H / W shorter than the kernel are fine. Zero-padding time with
    ``F.pad`` and convolving with temporal padding 0 is mathematically identical and avoids the
    broken kernel; it is only taken for such short inputs, so paper-size clips run the stock path.
    ``(B, Cin, T, H, W) -> (B, Cout, T', H', W')``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.padding
        if (
            isinstance(pad, tuple)
            and pad[0] > 0
            and 1 < x.shape[2] < self.kernel_size[0]
            and self.padding_mode == "zeros"
        ):
            x = F.pad(x, (0, 0, 0, 0, pad[0], pad[0]))
            padding = (0, pad[1], pad[2])
            return F.conv3d(
                x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
            )
        return super().forward(x)


def _conv(
    cin: int,
    cout: int,
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int] = (1, 1, 1),
) -> nn.Conv3d:
    """Bias-free 3-D conv with "same" padding (``k // 2`` per axis)."""
    padding = tuple(k // 2 for k in kernel)
    return Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False)


def _shortcut(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Module | None:
    """1x1x1 conv + BN projection when channels or resolution change, else ``None`` (identity)."""
    if cin == cout and stride == (1, 1, 1):
        return None
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel_size=1, stride=stride, bias=False),
        _bn(cout),
    )


class _ResidualBlock(nn.Module):
    """Shared residual wiring: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    Subclasses set ``conv1``, ``conv2`` (any modules mapping ``(B, C, T, H, W)`` tensors),
    ``bn1``, ``bn2`` and call :meth:`_init_shortcut`.
    """

    conv1: nn.Module
    conv2: nn.Module
    bn1: nn.Module
    bn2: nn.Module

    def _init_shortcut(self, cin: int, cout: int, stride: tuple[int, int, int]) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, Cin, T, H, W) -> (B, Cout, T / st, H / s, W / s)`` (ceil division)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class BasicBlock3D(_ResidualBlock):
    """R3D basic block: 3x3x3 conv (stride) -> BN -> ReLU -> 3x3x3 conv -> BN, + shortcut, ReLU.

    Args:
        in_channels, out_channels: channel counts.
        stride: ``(st, s, s)`` stride of the first conv (and of the shortcut).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: tuple[int, int, int] = (1, 1, 1)
    ) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels, (3, 3, 3), stride)
        self.bn1 = _bn(out_channels)
        self.conv2 = _conv(out_channels, out_channels, (3, 3, 3))
        self.bn2 = _bn(out_channels)
        self._init_shortcut(in_channels, out_channels, stride)


class Conv2Plus1D(nn.Sequential):
    """(2+1)D factorisation of a ``t x d x d`` conv: ``1 x d x d`` (spatial stride) -> BN -> ReLU ->
    ``t x 1 x 1`` (temporal stride). ``(B, Cin, T, H, W) -> (B, Cout, T', H', W')``.

    ``mid_channels`` defaults to :func:`r2plus1d_mid_channels` ``(Cin, Cout, t, d)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int, int] = (1, 1, 1),
        t: int = 3,
        d: int = 3,
        mid_channels: int | None = None,
    ) -> None:
        mid = mid_channels if mid_channels is not None else r2plus1d_mid_channels(
            in_channels, out_channels, t, d
        )
        super().__init__(
            _conv(in_channels, mid, (1, d, d), (1, stride[1], stride[2])),
            _bn(mid),
            nn.ReLU(inplace=True),
            _conv(mid, out_channels, (t, 1, 1), (stride[0], 1, 1)),
        )
        self.mid_channels = mid


class BasicBlock2Plus1D(_ResidualBlock):
    """R(2+1)D basic block: two :class:`Conv2Plus1D` (each followed by BN), + shortcut, ReLU.

    Args:
        in_channels, out_channels: channel counts.
        stride: ``(st, s, s)``; spatial part on the first spatial conv, temporal part on the first
            temporal conv.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: tuple[int, int, int] = (1, 1, 1)
    ) -> None:
        super().__init__()
        self.conv1 = Conv2Plus1D(in_channels, out_channels, stride)
        self.bn1 = _bn(out_channels)
        self.conv2 = Conv2Plus1D(out_channels, out_channels)
        self.bn2 = _bn(out_channels)
        self._init_shortcut(in_channels, out_channels, stride)


class BasicBlockSF(_ResidualBlock):
    """GLCM ``BasicBlock_SF``: one 3x3x3 and one 1x1x1 conv.

    * ``ksize=1``: 1x1x1 conv (with stride) -> BN -> ReLU -> 3x3x3 conv -> BN;
    * ``ksize=3``: 3x3x3 conv (with stride) -> BN -> ReLU -> 1x1x1 conv -> BN;

    then + shortcut and ReLU. ``(B, Cin, T, H, W) -> (B, Cout, T / st, H / s, W / s)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int, int] = (1, 1, 1),
        ksize: int = 3,
    ) -> None:
        super().__init__()
        if ksize not in (1, 3):
            raise ConfigError(f"stage_ksizes entries must be 1 or 3, got {ksize!r}")
        first = (1, 1, 1) if ksize == 1 else (3, 3, 3)
        second = (3, 3, 3) if ksize == 1 else (1, 1, 1)
        self.conv1 = _conv(in_channels, out_channels, first, stride)
        self.bn1 = _bn(out_channels)
        self.conv2 = _conv(out_channels, out_channels, second)
        self.bn2 = _bn(out_channels)
        self._init_shortcut(in_channels, out_channels, stride)


def _as_triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    vals = tuple(int(v) for v in value)
    if len(vals) != 3 or any(v < 1 for v in vals):
        raise ConfigError(f"{name} must be an int or 3 positive ints (t, h, w), got {value!r}")
    return vals  # type: ignore[return-value]


def _per_stage(value: Sequence[int] | None, n: int, default: int, name: str) -> tuple[int, ...]:
    if value is None:
        return (default,) * n
    vals = tuple(int(v) for v in value)
    if len(vals) != n:
        raise ConfigError(f"{name} needs one entry per stage ({n}), got {value!r}")
    return vals


class ResNet3D(nn.Module):
    """Configurable 3-D ResNet trunk: stem -> stages; returns the dense feature map.

    Args:
        block: ``"r3d"`` | ``"r2plus1d"`` | ``"sf"``.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)``.
        widths: output channels per stage (same length as ``layers``).
        stem_channels: stem conv output channels.
        stem_kernel: ``(kt, kh, kw)`` of the stem conv (padding ``k // 2``).
        stem_stride: ``(st, sh, sw)`` of the stem conv.
        stem_pool: add a 1x3x3 max-pool with stride (1, 2, 2) after the stem.
        stage_strides: spatial stride of the first block of each stage (default ``(1, 2, 2, 2)``).
        temporal_strides: temporal stride of the first block of each stage (default all 1).
        stage_ksizes: per-stage 1 or 3, only for ``block="sf"`` (default all 3).
        in_channels: input channels (3 for RGB).
        stem_factorised: (2+1)D stem: ``1 x kh x kw`` conv -> BN -> ReLU -> ``kt x 1 x 1`` conv
            (as in Tran et al.'s R(2+1)D). Default: one full ``kt x kh x kw`` conv.
        stem_mid_channels: mid channels of a factorised stem (default: the (2+1)D formula; Tran
            et al. use 45).
        zero_init_residual: zero the last BN gamma of every block (identity-at-init).

    ``forward(x: (B, in_channels, T, H, W)) -> (B, out_channels, T', H', W')`` (no pooling, no fc).
    Attributes: ``out_channels``, ``stage_channels``.
    """

    def __init__(
        self,
        block: str = "r3d",
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_channels: int = 64,
        stem_kernel: int | Sequence[int] = (3, 7, 7),
        stem_stride: int | Sequence[int] = (1, 2, 2),
        stem_pool: bool = False,
        stage_strides: Sequence[int] | None = None,
        temporal_strides: Sequence[int] | None = None,
        stage_ksizes: Sequence[int] | None = None,
        in_channels: int = 3,
        stem_factorised: bool = False,
        stem_mid_channels: int | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if block not in BLOCK_TYPES:
            raise ConfigError(f"block must be one of {BLOCK_TYPES}, got {block!r}")
        layers = tuple(int(n) for n in layers)
        widths = tuple(int(w) for w in widths)
        n = len(layers)
        if n == 0 or any(b < 1 for b in layers):
            raise ConfigError(f"layers must be a non-empty tuple of positive ints, got {layers!r}")
        if len(widths) != n or any(w < 1 for w in widths):
            raise ConfigError(f"widths needs {n} positive ints (one per stage), got {widths!r}")
        if stem_channels < 1 or in_channels < 1:
            raise ConfigError(
                f"stem_channels and in_channels must be >= 1, got {stem_channels}, {in_channels}"
            )
        default_strides = (1,) + (2,) * (n - 1)
        sstrides = (
            default_strides
            if stage_strides is None
            else _per_stage(stage_strides, n, 1, "stage_strides")
        )
        tstrides = _per_stage(temporal_strides, n, 1, "temporal_strides")
        if any(s < 1 for s in sstrides + tstrides):
            raise ConfigError(
                f"stage_strides / temporal_strides must be >= 1, got {sstrides}, {tstrides}"
            )
        if stage_ksizes is not None and block != "sf":
            raise ConfigError(f"stage_ksizes is only allowed with block='sf', got block={block!r}")
        ksizes = _per_stage(stage_ksizes, n, 3, "stage_ksizes")
        if any(k not in (1, 3) for k in ksizes):
            raise ConfigError(f"stage_ksizes entries must be 1 or 3, got {ksizes!r}")
        kernel = _as_triple(stem_kernel, "stem_kernel")
        sstride = _as_triple(stem_stride, "stem_stride")

        self.block_type = block
        self.stem = self._make_stem(
            in_channels, stem_channels, kernel, sstride, stem_factorised, stem_mid_channels
        )
        self.stem_pool = (
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
            if stem_pool
            else nn.Identity()
        )
        stages: list[nn.Module] = []
        cin = stem_channels
        for i in range(n):
            blocks: list[nn.Module] = []
            for j in range(layers[i]):
                stride = (tstrides[i], sstrides[i], sstrides[i]) if j == 0 else (1, 1, 1)
                blocks.append(self._make_block(block, cin, widths[i], stride, ksizes[i]))
                cin = widths[i]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = widths[-1]
        self.stage_channels = widths
        self.reset_parameters(zero_init_residual)

    @staticmethod
    def _make_stem(
        cin: int,
        cout: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        factorised: bool,
        mid_channels: int | None,
    ) -> nn.Sequential:
        if not factorised:
            return nn.Sequential(_conv(cin, cout, kernel, stride), _bn(cout), nn.ReLU(inplace=True))
        mid = mid_channels or r2plus1d_mid_channels(cin, cout, kernel[0], kernel[1])
        return nn.Sequential(
            _conv(cin, mid, (1, kernel[1], kernel[2]), (1, stride[1], stride[2])),
            _bn(mid),
            nn.ReLU(inplace=True),
            _conv(mid, cout, (kernel[0], 1, 1), (stride[0], 1, 1)),
            _bn(cout),
            nn.ReLU(inplace=True),
        )

    @staticmethod
    def _make_block(
        block: str, cin: int, cout: int, stride: tuple[int, int, int], ksize: int
    ) -> nn.Module:
        if block == "r3d":
            return BasicBlock3D(cin, cout, stride)
        if block == "r2plus1d":
            return BasicBlock2Plus1D(cin, cout, stride)
        return BasicBlockSF(cin, cout, stride, ksize)

    def reset_parameters(self, zero_init_residual: bool = False) -> None:
        """Kaiming-normal (fan_out, ReLU) for convs; BN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, _ResidualBlock):
                    nn.init.zeros_(m.bn2.weight)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, T, H, W) -> (B, out_channels, T', H', W')``."""
        return self.forward_with_tap(x, 0)[1]

    def forward_with_tap(self, x: torch.Tensor, tap: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(map after stage tap, final map)``: ``tap = 0`` is the stem output (after any
        stem pool), ``tap = k`` the output of residual stage ``k``; ``(B, C_k, T_k, H_k, W_k)``
        and ``(B, out_channels, T', H', W')``."""
        if x.dim() != 5:
            raise ValueError(f"ResNet3D expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        if not 0 <= tap <= len(self.stages):
            raise ValueError(f"tap must be in [0, {len(self.stages)}]; got {tap}")
        x = self.stem_pool(self.stem(x))
        tapped = x
        for k, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if k == tap:
                tapped = x
        return tapped, x

    def tap_channels(self, tap: int) -> int:
        """Channels of ``forward_with_tap``'s early map at ``tap`` (0: the stem, k: stage k)."""
        if not 0 <= tap <= len(self.stages):
            raise ValueError(f"tap must be in [0, {len(self.stages)}]; got {tap}")
        return int(self.stem[-2].num_features) if tap == 0 else int(self.stage_channels[tap - 1])

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C_in, T, H, W) -> (feature_map (B, C, T', H', W'), pooled (B, C))``."""
        fmap = self.forward(x)
        return fmap, fmap.mean(dim=(2, 3, 4))


def _factory_defaults(name: str, depth: int, width_mult: float) -> dict[str, Any]:
    if depth not in DEPTH_LAYERS:
        raise ConfigError(f"depth must be one of {sorted(DEPTH_LAYERS)}, got {depth!r}")
    if not (isinstance(width_mult, (int, float)) and width_mult > 0):
        raise ConfigError(f"width_mult must be a positive number, got {width_mult!r}")
    layers = DEPTH_LAYERS[depth]
    if name in ("r3d", "r2plus1d"):
        return dict(
            block=name,
            layers=layers,
            widths=tuple(scale_width(w, width_mult) for w in (64, 128, 256, 512)),
            stem_channels=scale_width(64, width_mult),
            stem_kernel=(3, 7, 7),
            stem_stride=(1, 2, 2),
            stem_pool=False,
            stage_strides=(1, 2, 2, 2),
        )
    if name == "glcm_slow":
        return dict(
            block="sf",
            layers=layers,
            widths=tuple(scale_width(w, width_mult) for w in (64, 128, 256, 512)),
            stem_channels=scale_width(64, width_mult),
            stem_kernel=(1, 7, 7),
            stem_stride=(1, 2, 2),
            stem_pool=True,
            stage_strides=(1, 2, 2, 1),
            stage_ksizes=(1, 1, 3, 3),
        )
    if name == "glcm_fast":
        return dict(
            block="sf",
            layers=layers,
            widths=tuple(scale_width(w, width_mult) for w in (8, 16, 32, 64)),
            stem_channels=scale_width(8, width_mult),
            stem_kernel=(5, 7, 7),
            stem_stride=(1, 2, 2),
            stem_pool=True,
            stage_strides=(1, 2, 2, 1),
            stage_ksizes=(3, 3, 3, 3),
        )
    raise ConfigError(f"video backbone name must be one of {VIDEO_BACKBONES}, got {name!r}")


_CTOR_KEYS = frozenset(
    {
        "block",
        "layers",
        "widths",
        "stem_channels",
        "stem_kernel",
        "stem_stride",
        "stem_pool",
        "stage_strides",
        "temporal_strides",
        "stage_ksizes",
        "in_channels",
        "stem_factorised",
        "stem_mid_channels",
        "zero_init_residual",
    }
)


def build_video_backbone(
    name: str, *, depth: int = 18, width_mult: float = 1.0, **overrides: Any
) -> ResNet3D:
    """Build a named 3-D ResNet trunk.

    Names:
        * ``"r3d"`` / ``"r2plus1d"``: depth 10 / 18 / 34; widths ``64m, 128m, 256m, 512m``; stem
          3x7x7 conv stride (1, 2, 2), no pool; spatial stage strides (1, 2, 2, 2); no temporal
          striding unless ``temporal_stride=True`` (then stages 2-4 also stride 2 in time).
        * ``"glcm_slow"``: GLCM global pathway (spec 1.5): stem 1x7x7 64 ch stride (1, 2, 2) + pool,
          stages 64/128/256/512, ksizes (1, 1, 3, 3), spatial strides (1, 2, 2, 1).
        * ``"glcm_fast"``: GLCM local pathway: stem 5x7x7 8 ch, stages 8/16/32/64, all ksize 3.

        With 112x112 input both GLCM pathways give 7x7 maps and keep T.

    Args:
        depth: 10, 18 or 34 (blocks per stage (1,1,1,1), (2,2,2,2), (3,4,6,3)).
        width_mult: scales every width (stem included), rounded, at least 1.
        **overrides: any :class:`ResNet3D` argument (taken literally, not scaled), plus
            ``temporal_stride: bool`` (shorthand for ``temporal_strides=(1, 2, 2, 2)``) and
            ``last_stride: 1 | 2`` (the last stage's spatial stride, the others as the name has them).
    """
    cfg = _factory_defaults(name, depth, width_mult)
    temporal_stride = overrides.pop("temporal_stride", False)
    if not isinstance(temporal_stride, bool):
        raise ConfigError(f"temporal_stride must be True or False, got {temporal_stride!r}")
    last_stride = overrides.pop("last_stride", None)
    if last_stride is not None:
        if last_stride not in (1, 2):
            raise ConfigError(f"last_stride must be 1 or 2, got {last_stride!r}")
        cfg["stage_strides"] = tuple(cfg["stage_strides"][:-1]) + (int(last_stride),)
    unknown = sorted(set(overrides) - _CTOR_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown backbone option(s) {unknown}; allowed: {sorted(_CTOR_KEYS | {'temporal_stride', 'last_stride'})}"
        )
    if temporal_stride:
        cfg["temporal_strides"] = (1,) + (2,) * (len(cfg["layers"]) - 1)
    cfg.update(overrides)
    return ResNet3D(**cfg)
