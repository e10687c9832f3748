"""Video SimCLR baseline: two clips of one video are positives, the other clips of the batch negatives.

Each video gives clips ``a`` and ``b`` (independent random starts, independent temporally
consistent augmentations; CVRL-style). One encoder + MLP head embeds both; the loss is the
symmetric InfoNCE (NT-Xent with cross-view negatives)::

    L = 1/2 [ -1/B Σ_i log e^{z^a_i·z^b_i/τ} / Σ_j e^{z^a_i·z^b_j/τ}
              -1/B Σ_i log e^{z^b_i·z^a_i/τ} / Σ_j e^{z^b_i·z^a_j/τ} ]

With ``gather_negatives`` the ``j`` sums run over the clips of every rank (gathered with
gradients, open_clip's local-loss pattern).

With ``nn_support: K > 0`` (NNCLR) the anchors ``z^a_i``, ``z^b_i`` of the two directions are
replaced by their nearest neighbours in a support set of the last ``K`` clips ``a`` of earlier
steps (:func:`~glocal.objectives.nnclr_loss`), once that set has been filled; before, the loss
above. The set is checkpointed, so a resumed run continues with the same neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch

from ..config import Range
from ..objectives import info_nce, info_nce_chance, nnclr_loss
from ..runtime.gather import dist_info
from ..data.config import DataConfig
from .base import diag_entries, fp32
from .common import BackgroundSwapConfig, ClipPairMethod, VideoEncoderConfig
from .support_set import SupportSet

__all__ = ["SimCLRConfig", "SimCLR"]


@dataclass
class SimCLRConfig(VideoEncoderConfig, BackgroundSwapConfig):
    """SimCLR knobs (defaults: R3D-18, MLP 2048-128 with BN, τ = 0.1 as in CVRL)."""

    name: Literal["simclr"] = "simclr"
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.1
    blur_p: Annotated[float, Range(0.0, 1.0)] = 0.0  # Gaussian blur probability of the clip augmentation
    gather_negatives: bool = False  # negatives from every rank (with gradients)
    #: NNCLR support set size: each anchor is replaced by its nearest neighbour among the last
    #: K clips of earlier steps (0: off, plain SimCLR). Keep K below the videos per epoch so a
    #: video's own earlier clip has left the set when it comes back
    nn_support: Annotated[int, Range(0, 1 << 20)] = 0

    def validate(self) -> None:
        self.validate_encoder()


class SimCLR(ClipPairMethod):
    """Batch: ``a/video``, ``b/video`` ``(B, 3, T, H, W)``. Loss terms: ``loss_nce``.

    Modules: ``online`` (encoder + head), ``support`` (:class:`SupportSet` ``(nn_support,
    proj_dim)``, or ``None`` without nearest-neighbour positives).
    """

    name = "simclr"
    config_class = SimCLRConfig
    step_queues = ("support",)  # the step's clips ``a`` enter the support set (Method.on_step_end)

    def __init__(self, cfg: SimCLRConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        self.support = SupportSet(cfg.nn_support, cfg.proj_dim) if cfg.nn_support > 0 else None

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        a, b = self.pair(batch)
        h, z = self.online(torch.cat([a, b]))  # one pass: BN statistics over both views
        za, zb = z.float().chunk(2)
        cfg = self.cfg
        with fp32(a.device):
            if self.support is not None and self.support.full:
                loss = nnclr_loss(za, zb, self.support.queue, tau=cfg.tau, gather=cfg.gather_negatives)
            else:
                loss = info_nce(za, zb, tau=cfg.tau, symmetric=True, gather=cfg.gather_negatives)
        if self.support is not None:
            self.support.stage(za.detach())
        out = {"loss": loss, "loss_nce": loss.detach()}
        out.update(diag_entries(**{"pair/loss_nce": torch.stack([za, zb]), "feat/video": h[: a.shape[0]].float()}))
        return out

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Symmetric in-batch InfoNCE at constant scores: ``ln B`` (``B``: all ranks' with gather)."""
        b = batch["a/video"].shape[0] * (dist_info()[1] if self.cfg.gather_negatives else 1)
        return {"loss_nce": info_nce_chance(b, symmetric=True)}
