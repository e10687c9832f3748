"""VCLR: video contrastive learning with global context (methods.md §2; SeCo + MoCo v2 base).

Each video is split into ``K`` segments; per segment two items are drawn, the first to the key
tuple ``k`` (EMA encoder), the second to the query tuple ``q`` (online encoder). An item is one
frame for the paper's 2-D encoder (``encoder="2d"``) or a short clip for our 3-D encoders
(``encoder="3d"``). The SeCo anchor ``x_q`` is the query item of segment 0 or ``K-1``; ``x1`` is
the same frame re-augmented. With ``f`` the backbone, ``C`` the mean consensus and ``g^*`` the
heads (keys from the EMA copies), L2-normalised:

- inter: ``1/K Σ_{k+ ∈ {x1, other q items}} L_NCE(g^inter(x_q), k+, SeCo queue)``;
- intra: ``L_NCE(g^intra(x_q), x1, {other q items})`` (release: one 2-way row per negative);
- segment: ``L_NCE(g^s(C[f(q_1..q_K)]), g^s_ema(C[f(k_1..k_K)]), VCLR queue)``;
- order: 4-way CE of ``h_o([o(q_π), o(k_π')])`` — was the query / key tuple shuffled;

with ``L_NCE(q, k+, N) = -log e^{q·k+/τ} / (e^{q·k+/τ} + Σ_{n∈N} e^{q·n/τ})`` and total
``L = w_inter L_inter + w_intra L_intra + w_order L_order + w_segment L_segment``. After each
step: EMA update, then the gathered inter keys (all ``K`` sets) enter the SeCo queue and the
segment keys the VCLR queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Range, check_range
from ..data.config import DataConfig
from ..data.samplers import SegmentSampler
from ..data.samplers_vclr import VCLRSampler
from ..errors import ConfigError
from ..models import MLPHead
from ..models.resnet2d import TSNConsensus
from ..models.pooling import SpatialPool
from ..objectives import (
    info_nce,
    normalize_order_features,
    permute_tuples,
    seco_inter_loss,
    seco_intra_loss,
    cross_entropy_chance,
    info_nce_chance,
    multi_positive_chance,
    seco_intra_chance,
)
from .base import Method, diag_entries, fp32, num_outputs
from .common import MomentumEncoder, StagedQueue, VideoEncoderConfig, build_clip_encoder, clip_transform

__all__ = ["VCLRConfig", "VCLR", "VCLRNet", "other_segments"]

ORDER_CLASSES = 4


@dataclass
class VCLRConfig:
    """VCLR knobs (defaults = the release: ResNet-50 on frames, K = 3, queues 131072, τ = 0.1)."""

    name: Literal["vclr"] = "vclr"
    encoder: Literal["2d", "3d"] = "2d"  # 2d: frame-wise ResNet (paper); 3d: short clips per segment
    backbone_3d: Literal["r3d", "r2plus1d"] = "r3d"
    #: encoder 2d: the frame network, the paper's ResNet or the plain CNN for small frames
    #: (``glocal.models.cnn2d``; docs/methods_results.md "What the encoders learn with labels")
    backbone_2d: Literal["resnet2d", "cnn2d"] = "resnet2d"
    depth: int | None = None  # None: 50 (2d resnet2d) / 6 (2d cnn2d) / 18 (3d)
    #: how each item's map becomes its feature (``VideoEncoderConfig.spatial_pool``; the paper: mean)
    spatial_pool: SpatialPool = "mean"
    width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0
    temporal_stride: bool = False
    num_segments: Annotated[int, Range(3, 64)] = 3
    #: release: 300 (30 fps); None: the video's own length (>= num_segments, <= 2^24)
    frames_per_video: int | None = None
    #: frames per item; None: 1 (2d) / data.clip_frames (3d)
    clip_frames: Annotated[int, Range(1, 4096)] | None = None
    clip_stride: Annotated[int, Range(1, 1024)] = 1  # native frames between the frames of an item
    shuffle_p: Annotated[float, Range(0.0, 1.0)] = 0.5  # probability of shuffling each tuple (order task)
    per_frame_aug: bool | None = None  # None: per frame (2d, release) / per clip (3d)
    blur_p: Annotated[float, Range(0.0, 1.0)] = 0.5
    proj_hidden: Annotated[int, Range(1, 1 << 16)] = 2048
    proj_dim: Annotated[int, Range(1, 1 << 16)] = 128
    queue_size: Annotated[int, Range(1, 1 << 24)] = 131072  # each of the two queues
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.1
    tau_intra: Annotated[float, Range(1e-4, 100.0)] = 0.1
    momentum: Annotated[float, Range(0.0, 1.0)] = 0.999
    ema_bn_train: bool = True  # EMA copy in eval mode except BatchNorm (release)
    shuffle_bn: bool = False  # MoCo's shuffling BN for the EMA encoder pass (no-op with one process)
    order_norm_axis: Literal["frames", "features"] = "frames"  # release quirk: across the K items
    intra_mode: Literal["pairwise", "joint"] = "pairwise"  # release rows / paper equation
    weight_inter: Annotated[float, Range(0.0)] = 1.0
    weight_intra: Annotated[float, Range(0.0)] = 1.0
    weight_order: Annotated[float, Range(0.0)] = 1.0
    weight_segment: Annotated[float, Range(0.0)] = 1.0

    def validate(self) -> None:
        self.video_encoder.validate_encoder()  # depth: the encoder's depths
        if self.frames_per_video is not None:
            check_range("method.frames_per_video", self.frames_per_video, self.num_segments, 1 << 24)
        if self.weight_inter + self.weight_intra + self.weight_order + self.weight_segment == 0:
            raise ConfigError("method.weight_* must be >= 0 and not all 0")

    @property
    def video_encoder(self) -> VideoEncoderConfig:
        """The backbone as :class:`VideoEncoderConfig` fields."""
        backbone = self.backbone_2d if self.encoder == "2d" else self.backbone_3d
        depth = self.depth if self.depth is not None else {"resnet2d": 50, "cnn2d": 6}.get(backbone, 18)
        return VideoEncoderConfig(backbone=backbone, depth=depth, width_mult=self.width_mult,  # type: ignore[arg-type]
                                  temporal_stride=self.temporal_stride, proj_hidden=self.proj_hidden,
                                  proj_dim=self.proj_dim, proj_bn=False, spatial_pool=self.spatial_pool)

    def item_frames(self, data_cfg: DataConfig) -> int:
        """Frames per segment item."""
        if self.clip_frames is not None:
            return self.clip_frames
        return 1 if self.encoder == "2d" else int(data_cfg.clip_frames)


def other_segments(anchor: torch.Tensor, k: int) -> torch.Tensor:
    """The non-anchor segments of each row in increasing order: ``(B,)`` -> int64 ``(B, K-1)``,
    ``others[b, j] = j + [j >= anchor_b]`` (no boolean mask: its size would need a host sync)."""
    j = torch.arange(k - 1, device=anchor.device)
    return j + (j >= anchor[:, None]).long()


class VCLRNet(nn.Module):
    """Backbone + the four heads ``Linear-ReLU-Linear`` (no BN): ``inter``, ``intra``, ``order``,
    ``segment`` (the release's ``fc_inter``, ``fc_intra``, ``fc_order``, ``fc_tsn``); the EMA
    encoder is a copy of this module."""

    def __init__(self, cfg: VCLRConfig) -> None:
        super().__init__()
        enc = cfg.video_encoder
        self.encoder = build_clip_encoder(enc)
        c = self.encoder.out_channels
        self.inter = MLPHead(c, enc.proj_hidden, enc.proj_dim, l2=True)
        self.intra = MLPHead(c, enc.proj_hidden, enc.proj_dim, l2=True)
        self.order = MLPHead(c, enc.proj_hidden, enc.proj_dim, l2=False)  # normalised per order_norm_axis
        self.segment = MLPHead(c, enc.proj_hidden, enc.proj_dim, l2=True)


class VCLR(Method):
    """Batch: ``{k,q}{i}/video`` and ``x1/video`` ``(B, 3, T, H, W)`` (``T = 1`` for frames),
    ``target/{anchor,q_perm,k_perm,order}``. Terms: ``loss_inter``, ``loss_intra``,
    ``loss_order``, ``loss_segment``."""

    name = "vclr"
    config_class = VCLRConfig
    modalities = ("video",)
    momentum_pairs = (("online", "target"),)  # EMA update, then the step's gathered keys enter ...
    step_queues = ("seco_queue", "vclr_queue")  # ... both queues (Method.on_step_end)

    def __init__(self, cfg: VCLRConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        self.online = VCLRNet(cfg)
        self.target = MomentumEncoder(self.online, cfg.momentum, bn_train=cfg.ema_bn_train,
                                      shuffle_bn=cfg.shuffle_bn)
        self.consensus = TSNConsensus("mean")
        self.order_head = nn.Linear(2 * cfg.num_segments * cfg.proj_dim, ORDER_CLASSES)
        self.seco_queue = StagedQueue(cfg.queue_size, cfg.proj_dim)
        self.vclr_queue = StagedQueue(cfg.queue_size, cfg.proj_dim)

    # ---------------------------------------------------------------- data hooks
    def build_sampler(self) -> VCLRSampler:
        """``K`` segments x 2 draws (views ``k{i}``, ``q{i}``), ``x1``, order targets."""
        cfg = self.cfg
        segments = SegmentSampler(num_segments=cfg.num_segments, per_segment=2, frames_per_video=cfg.frames_per_video,
                                  prefixes=("k", "q"), seco_anchor=True, transform="frame")
        return VCLRSampler(segments, clip_frames=cfg.item_frames(self.data), clip_stride=cfg.clip_stride,
                           shuffle_p=cfg.shuffle_p)

    def transforms(self) -> dict[str, Any]:
        """``"frame"``: crop / jitter / grayscale / blur / flip drawn independently per frame (2d,
        release) or once per clip (3d)."""
        per_frame = self.cfg.encoder == "2d" if self.cfg.per_frame_aug is None else self.cfg.per_frame_aug
        return {"frame": clip_transform(self.data, blur_p=self.cfg.blur_p, per_frame=per_frame)}

    # ------------------------------------------------------------------ training
    def _tuple(self, batch: dict[str, Any], prefix: str) -> torch.Tensor:
        """``(B, K, 3, T, H, W)`` items of tuple ``prefix`` in segment order."""
        return torch.stack([batch[f"{prefix}{i}/video"] for i in range(self.cfg.num_segments)], dim=1)

    @staticmethod
    def _heads(head: nn.Module, feats: torch.Tensor) -> torch.Tensor:
        """Apply a head to ``(B, K, C)`` item features -> ``(B, K, D)``."""
        b, k, c = feats.shape
        return head(feats.reshape(b * k, c)).reshape(b, k, -1)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        q_items, k_items, x1 = self._tuple(batch, "q"), self._tuple(batch, "k"), batch["x1/video"]
        anchor = batch["target/anchor"].long()  # (B,)
        b, k = q_items.shape[:2]
        rows = torch.arange(b, device=anchor.device)
        others = other_segments(anchor, k)  # (B, K-1)

        # online: the K query items (the anchor x_q is the query item of its segment)
        net = self.online
        f_q = net.encoder(q_items.flatten(0, 1)).float().reshape(b, k, -1)  # (B, K, C)
        f_anchor = f_q[rows, anchor]  # (B, C)
        q_inter, q_intra = net.inter(f_anchor).float(), net.intra(f_anchor).float()  # (B, D)
        q_seg = net.segment(self.consensus(f_q)).float()  # (B, D)
        o_q = normalize_order_features(self._heads(net.order, f_q).float(), cfg.order_norm_axis)  # (B, K, D)

        # EMA keys: x1, the other query items, the key tuple (one pass)
        ema = self.target.module
        with torch.no_grad():
            key_in = torch.cat([x1, q_items[rows[:, None], others].flatten(0, 1), k_items.flatten(0, 1)])
            f = self.target.run(ema.encoder, key_in).float()  # shuffle-BN across ranks when on
            f_x1, f_oth, f_k = f.split([b, b * (k - 1), b * k])
            f_pos = torch.cat([f_x1[:, None], f_oth.reshape(b, k - 1, -1)], dim=1)  # (B, K, C): x1 first
            k_inter = self._heads(ema.inter, f_pos).float()  # (B, K, D)
            k_intra = self._heads(ema.intra, f_pos).float()
            f_k = f_k.reshape(b, k, -1)
            p_seg = ema.segment(self.consensus(f_k)).float()  # (B, D)
            o_k = normalize_order_features(self._heads(ema.order, f_k).float(), cfg.order_norm_axis)

        with fp32(q_items.device):
            l_inter = seco_inter_loss(q_inter, k_inter, self.seco_queue.queue, tau=cfg.tau)
            l_intra = seco_intra_loss(q_intra, k_intra[:, 0], k_intra[:, 1:], tau=cfg.tau_intra, mode=cfg.intra_mode)
            l_seg = info_nce(q_seg, p_seg, tau=cfg.tau, queue=self.vclr_queue.queue, in_batch_negatives=False)
            o = torch.cat([permute_tuples(o_q, batch["target/q_perm"].long()).flatten(1),
                           permute_tuples(o_k, batch["target/k_perm"].long()).flatten(1)], dim=1)
            l_order = F.cross_entropy(self.order_head(o).float(), batch["target/order"].long())
        self.seco_queue.stage(k_inter.transpose(0, 1).reshape(b * k, -1))  # key sets x1, x2, x3 in turn
        self.vclr_queue.stage(p_seg)
        total = (cfg.weight_inter * l_inter + cfg.weight_intra * l_intra + cfg.weight_order * l_order
                 + cfg.weight_segment * l_seg)
        out = {"loss": total, "loss_inter": l_inter.detach(), "loss_intra": l_intra.detach(),
               "loss_order": l_order.detach(), "loss_segment": l_seg.detach()}
        out.update(diag_entries(**{"pair/loss_segment": torch.stack([q_seg, p_seg]),
                                   "pair/loss_inter": torch.stack([q_inter, k_inter[:, 0]]), "feat/video": f_anchor}))
        return out

    def term_weights(self) -> dict[str, float]:
        """The four terms' weights (``method.weight_inter`` ... ``weight_segment``)."""
        cfg = self.cfg
        return {"loss_inter": cfg.weight_inter, "loss_intra": cfg.weight_intra, "loss_order": cfg.weight_order,
                "loss_segment": cfg.weight_segment}

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Constant-score levels: inter ``ln(1 + K)`` per row, intra ``ln 2`` (pairwise) or
        ``ln K_seg`` (joint), segment ``ln(1 + K)``, order ``ln 4``."""
        cfg = self.cfg
        return {
            "loss_inter": multi_positive_chance(1, self.seco_queue.size, mode="separate_rows"),
            "loss_intra": seco_intra_chance(cfg.num_segments - 1, mode=cfg.intra_mode),
            "loss_segment": info_nce_chance(1, self.vclr_queue.size, in_batch_negatives=False),
            "loss_order": cross_entropy_chance(num_outputs(self.order_head)),
        }

    # ---------------------------------------------------------------- evaluation
    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """Pooled online backbone features ``(B, C)``; 2d: mean over the clip's frames (TSN
        consensus, the release's 30-frame average)."""
        return self.online.encoder(video).float()

    def video_feature_maps(self, video: torch.Tensor) -> list[torch.Tensor]:
        """The online backbone map ``[(B, C, T', h, w)]`` (2d: one map per frame, ``T' = T``)."""
        return [self.online.encoder.feature_map(video)]
