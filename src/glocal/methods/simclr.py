"""Video SimCLR baseline: two clips of one video are positives, the other clips of the batch negatives.

Each video gives clips ``a`` and ``b`` (independent random starts, independent temporally
consistent augmentations; CVRL-style). One encoder + MLP head embeds both; the loss is the
symmetric InfoNCE (NT-Xent with cross-view negatives)::

    L = 1/2 [ -1/B Σ_i log e^{z^a_i·z^b_i/τ} / Σ_j e^{z^a_i·z^b_j/τ}
              -1/B Σ_i log e^{z^b_i·z^a_i/τ} / Σ_j e^{z^b_i·z^a_j/τ} ]

With ``gather_negatives`` the ``j`` sums run over the clips of every rank (gathered with
gradients, open_clip's local-loss pattern).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch

from ..config import Range
from ..objectives import info_nce, info_nce_chance
from ..runtime.gather import dist_info
from ..data.config import DataConfig
from .base import diag_entries, fp32
from .common import BackgroundSwapConfig, ClipPairMethod, VideoEncoderConfig

__all__ = ["SimCLRConfig", "SimCLR"]


@dataclass
class SimCLRConfig(VideoEncoderConfig, BackgroundSwapConfig):
    """SimCLR knobs (defaults: R3D-18, MLP 2048-128 with BN, τ = 0.1 as in CVRL)."""

    name: Literal["simclr"] = "simclr"
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.1
    blur_p: Annotated[float, Range(0.0, 1.0)] = 0.0  # Gaussian blur probability of the clip augmentation
    gather_negatives: bool = False  # negatives from every rank (with gradients)

    def validate(self) -> None:
        self.validate_encoder()


class SimCLR(ClipPairMethod):
    """Batch: ``a/video``, ``b/video`` ``(B, 3, T, H, W)``. Loss terms: ``loss_nce``."""

    name = "simclr"
    config_class = SimCLRConfig

    def __init__(self, cfg: SimCLRConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        a, b = self.pair(batch)
        h, z = self.online(torch.cat([a, b]))  # one pass: BN statistics over both views
        za, zb = z.float().chunk(2)
        with fp32(a.device):
            loss = info_nce(za, zb, tau=self.cfg.tau, symmetric=True, gather=self.cfg.gather_negatives)
        out = {"loss": loss, "loss_nce": loss.detach()}
        out.update(diag_entries(**{"pair/loss_nce": torch.stack([za, zb]), "feat/video": h[: a.shape[0]].float()}))
        return out

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Symmetric in-batch InfoNCE at constant scores: ``ln B`` (``B``: all ranks' with gather)."""
        b = batch["a/video"].shape[0] * (dist_info()[1] if self.cfg.gather_negatives else 1)
        return {"loss_nce": info_nce_chance(b, symmetric=True)}
