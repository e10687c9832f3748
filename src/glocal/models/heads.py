"""Projection heads: 1x1 conv on dense maps and an MLP on pooled vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from glocal.errors import ConfigError

__all__ = ["Conv1x1Head", "MLPHead"]


class Conv1x1Head(nn.Module):
    """1x1 (x1) conv projection of a dense map, with bias (GLCM ``v_proj``/``a_proj``).

    Args:
        in_ch, out_ch: channels.
        dims: 1 for ``(B, C, S)`` maps (Conv1d), 3 for ``(B, C, T, H, W)`` maps (Conv3d).
        l2: L2-normalise along the channel axis after the projection (default off: the release
            uses raw dot products).
        bn: batch-normalise the projection per output channel, without affine parameters
            (statistics over the batch and every position / step). It removes the component
            shared by every clip and position, which otherwise dominates cosine scores of a
            linear head over ReLU features and can hold a contrastive loss at chance
            (measured on real footage, docs/methods.md GLCM). Default off (the release).

    ``forward(x: (B, in_ch, *spatial)) -> (B, out_ch, *spatial)``.
    """

    def __init__(self, in_ch: int, out_ch: int, dims: int = 3, l2: bool = False, bn: bool = False) -> None:
        super().__init__()
        if dims == 1:
            self.proj: nn.Module = nn.Conv1d(in_ch, out_ch, kernel_size=1, bias=True)
        elif dims == 3:
            self.proj = nn.Conv3d(in_ch, out_ch, kernel_size=1, bias=True)
        else:
            raise ConfigError(f"dims must be 1 or 3, got {dims!r}")
        self.dims = dims
        self.l2 = l2
        self.norm: nn.Module = (
            (nn.BatchNorm1d if dims == 1 else nn.BatchNorm3d)(out_ch, affine=False) if bn else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dims + 2:
            raise ValueError(
                f"Conv1x1Head(dims={self.dims}) expects a {self.dims + 2}-D tensor, "
                f"got shape {tuple(x.shape)}"
            )
        y = self.norm(self.proj(x))
        return F.normalize(y, dim=1) if self.l2 else y


class MLPHead(nn.Module):
    """Linear -> [BN1d] -> ReLU -> Linear, optionally L2-normalised output.

    ``forward(x: (B, in_dim)) -> (B, out_dim)``. With ``bn=True`` the first linear has no bias.
    """

    def __init__(
        self, in_dim: int, hidden: int, out_dim: int, bn: bool = False, l2: bool = False
    ) -> None:
        super().__init__()
        if min(in_dim, hidden, out_dim) < 1:
            raise ConfigError(
                f"in_dim, hidden, out_dim must be >= 1, got {in_dim}, {hidden}, {out_dim}"
            )
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)]
        self.net = nn.Sequential(*layers)
        self.l2 = l2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return F.normalize(y, dim=1) if self.l2 else y
