"""Video MoCo (v2) baseline: query clip vs the momentum-encoded key clip and a queue of past keys.

Each video gives clips ``a`` (query, online encoder) and ``b`` (key, EMA encoder). Loss::

    L = -1/B Σ_i log e^{q_i·k_i/τ} / (e^{q_i·k_i/τ} + Σ_{n ∈ queue} e^{q_i·n/τ})

``symmetric`` adds the swapped pair (query ``b``, key ``a``) and averages. After each optimizer
step the key encoder moves ``θ_k <- m θ_k + (1 - m) θ_q`` and the keys of the step (gathered from
every rank) enter the FIFO queue. With several ranks the keys use shuffle-BN (``shuffle_bn``, on
by default as in MoCo; see :class:`~glocal.methods.common.MomentumEncoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch

from ..config import Range
from ..objectives import info_nce, info_nce_chance
from ..data.config import DataConfig
from .base import diag_entries, fp32
from .common import BackgroundSwapConfig, ClipPairMethod, MomentumEncoder, StagedQueue, VideoEncoderConfig

__all__ = ["MoCoConfig", "MoCo"]


@dataclass
class MoCoConfig(VideoEncoderConfig, BackgroundSwapConfig):
    """MoCo v2 knobs (spec 5: K = 65536, m = 0.999, τ = 0.2, MLP 2048-2048-128 without BN)."""

    name: Literal["moco"] = "moco"
    proj_bn: bool = False
    queue_size: Annotated[int, Range(1, 1 << 24)] = 65536
    momentum: Annotated[float, Range(0.0, 1.0)] = 0.999
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.2
    symmetric: bool = False  # also (query b, key a); MoCo v2 is asymmetric
    key_bn_train: bool = True  # key encoder BatchNorm uses batch statistics (MoCo)
    #: shuffling BN (MoCo): keys computed on a random cross-rank shard of the global batch; a no-op
    #: with one process (BN already sees the whole batch) or with key_bn_train=false / train.sync_bn
    shuffle_bn: bool = True
    blur_p: Annotated[float, Range(0.0, 1.0)] = 0.0

    def validate(self) -> None:
        self.validate_encoder()


class MoCo(ClipPairMethod):
    """Batch: ``a/video``, ``b/video`` ``(B, 3, T, H, W)``. Loss terms: ``loss_nce``.

    Modules: ``online`` (encoder + head, trained), ``target`` (:class:`MomentumEncoder` copy),
    ``queue`` (:class:`StagedQueue` ``(queue_size, proj_dim)``).
    """

    name = "moco"
    config_class = MoCoConfig
    momentum_pairs = (("online", "target"),)  # EMA update of the key encoder, then ...
    step_queues = ("queue",)  # ... the step's keys enter the queue (Method.on_step_end)

    def __init__(self, cfg: MoCoConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        self.target = MomentumEncoder(self.online, cfg.momentum, bn_train=cfg.key_bn_train,
                                      shuffle_bn=cfg.shuffle_bn)
        self.queue = StagedQueue(cfg.queue_size, cfg.proj_dim)

    def _direction(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """InfoNCE of online(query) against target(key) and the queue; stages the keys. Also
        returns the diagnostic entries (query/key pairs, the query's backbone features)."""
        h, q = self.online(query)
        _, k = self.target(key)
        with fp32(query.device):
            loss = info_nce(q.float(), k.float(), tau=self.cfg.tau, queue=self.queue.queue, in_batch_negatives=False)
        self.queue.stage(k)
        return loss, diag_entries(**{"pair/loss_nce": torch.stack([q.float(), k.float()]), "feat/video": h.float()})

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        a, b = self.pair(batch)
        loss, diag = self._direction(a, b)
        if self.cfg.symmetric:
            loss = 0.5 * (loss + self._direction(b, a)[0])
        return {"loss": loss, "loss_nce": loss.detach(), **diag}

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Key + queue InfoNCE at constant scores: ``ln(1 + K)``."""
        return {"loss_nce": info_nce_chance(1, self.cfg.queue_size, in_batch_negatives=False)}
