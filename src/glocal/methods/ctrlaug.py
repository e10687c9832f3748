"""CtrlAug: controllable local/global augmentations (methods.md §3, a reconstruction ``[INF]``).

Each video gives one global view (a sparse ``global_frames``-frame window, RandomResizedCrop)
and ``N`` local clips (dense, a fraction of the window, a sub-box of the global crop) whose 3-D
boxes ``b_n`` in the global view are known exactly (:class:`~glocal.data.samplers.GlobalLocalSampler`;
the locals inherit the global flip, photometric augmentation is independent). One shared
encoder ``f`` (a 3-D ResNet, or the frame-wise cnn2d, whose map keeps every frame) embeds both;
with the MLP head ``h`` (L2-normalised): ``z^g = h(mean f(global))``,
``z^l_n = h(mean f(local_n))`` and per cell ``c`` of the global map ``z^g_c = h(f(global)_c)``.

- instance: ``L_inst = -log e^{z^l_n·z^g/τ} / Σ_{videos} e^{z^l_n·z^g'/τ}`` (mean over clips);
- region: ``L_region = -Σ_c w_nc log e^{s_nc} / (Σ_c' e^{s_nc'} + Σ_{m∈𝒩} e^{z^l_n·m/τ_r})``,
  ``s_nc = z^l_n·z^g_c/τ_r``, ``w_nc ∝ vol(b_n ∩ β_c)`` (or IoU), ``𝒩`` = other videos' cells;
- MI: ``L_MI = -Î`` of a critic on low-level pairs ``[e^l_n; e^g_n]`` (``e^l_n`` = pooled early
  map of local ``n``, ``e^g_n`` = RoIAlign-3D of the global early map over ``b_n``; negatives =
  shifted pairs) behind a gradient-reversal layer (the encoder minimises ``Î``);
- order: ``L_order`` = CE of the permutation that sorts the locals by time, from
  ``[z^g; z^l_1; ...; z^l_N]`` (``N!`` classes), or of each clip's temporal bin;

``L = w_inst L_inst + w_region L_region + w_mi L_MI + w_order L_order`` (defaults 1, 1, 0.1, 0.5).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Interval, Range, check_range
from ..data.config import DataConfig
from ..data.samplers import GlobalLocalSampler
from ..errors import ConfigError
from ..models import MLPHead
from ..models.roi import roi_align_3d
from ..objectives import (
    adversarial_cue_loss,
    adversarial_mi_loss,
    grid_cell_boxes,
    local_global_nce,
    low_level_cues,
    permutation_labels,
    region_soft_targets,
    soft_region_contrast,
    temporal_bin_labels,
    cross_entropy_chance,
)
from ..runtime.gather import dist_info
from .base import Method, diag_entries, fp32, num_outputs
from .common import VideoEncoderConfig, build_clip_encoder, clip_transform

__all__ = ["CtrlAugConfig", "CtrlAug"]

N_CUES = 7  # low_level_cues: 3 channel means, 3 channel stds, 1 motion


@dataclass
class CtrlAugConfig(VideoEncoderConfig):
    """CtrlAug knobs; every default is the spec's ``[INF]`` reconstruction (methods.md 3.2-3.4)."""

    name: Literal["ctrlaug"] = "ctrlaug"
    #: a backbone whose map keeps (t, y, x) for the region boxes and gives an early map (mi_layer):
    #: the 3-D ResNets, or cnn2d (frame by frame; its map keeps every frame)
    backbone: Literal["r3d", "r2plus1d", "cnn2d"] = "r3d"
    # ---- views (GlobalLocalSampler + transforms, spec 3.2)
    global_frames: Annotated[int, Range(1, 4096)] = 16  # T_g, sparse
    global_stride: Annotated[int, Range(1, 1024)] = 4  # native frames between global frames
    #: seconds of the global window (None: frames x stride)
    global_span: Annotated[float, Range(1e-3, 1e6)] | None = None
    local_frames: Annotated[int, Range(1, 4096)] = 16  # T_l, dense over the local span
    n_local: int = 4  # N_l: 2..6 with order_task=permutation, else 1..64
    #: local duration / global window
    local_span: Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)] = (0.1, 0.3)
    #: local box area / global crop
    local_area: Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)] = (0.2, 0.6)
    local_ratio: Annotated[tuple[float, float], Interval(0.0, None, lo_open=True)] = (3 / 4, 4 / 3)
    global_size: Annotated[int, Range(8, 4096)] | None = None  # S_g (None: data.crop_size)
    local_size: Annotated[int, Range(8, 4096)] | None = None  # S_l (None: data.crop_size)
    #: None: data.crop_scale
    global_crop_scale: Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)] | None = (0.4, 1.0)
    blur_p: Annotated[float, Range(0.0, 1.0)] = 0.5
    #: controllable placement (3.2 step 4): each local box at a drawn 3-D IoU with a random cell
    #: of local_iou_grid (None: region_grid, else 2x4x4); None: uniform placement
    local_iou: Annotated[tuple[float, float], Interval(0.0, 1.0)] | None = None
    #: curriculum: local_iou -> this ...
    local_iou_final: Annotated[tuple[float, float], Interval(0.0, 1.0)] | None = None
    local_iou_epochs: int = 0  # ... linearly over this many epochs
    local_iou_grid: tuple[Annotated[int, Range(1)], Annotated[int, Range(1)], Annotated[int, Range(1)]] | None = None
    # ---- instance + soft region contrast (3.4.1)
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.1  # instance term
    tau_region: Annotated[float, Range(1e-4, 100.0)] = 0.1
    #: cells (t, h, w) of the global map (None: native map)
    region_grid: tuple[Annotated[int, Range(1)], Annotated[int, Range(1)], Annotated[int, Range(1)]] | None = None
    region_head: Literal["shared", "separate"] = "shared"  # cell embeddings by the pooled head or their own
    region_targets: Literal["overlap", "iou"] = "overlap"  # w_nc ∝ vol(b ∩ β) | IoU(b, β)
    target_temperature: Annotated[float, Range(1e-3, 100.0)] = 1.0  # w ∝ r^(1/τ_w): < 1 sharpens, > 1 flattens
    region_negatives: Literal["cells", "pooled", "none"] = "cells"  # other videos' cells / pooled / none
    gather_negatives: bool = False  # other-video candidates from every rank (with gradients)
    # ---- adversarial MI minimisation (3.4.2)
    mi_shortcut: Literal["pair", "cues"] = "pair"  # critic on low-level local/global pairs | cue regression
    mi_bound: Literal["jsd", "dv"] = "jsd"  # pair critic's bound: JSD | Donsker-Varadhan (MINE)
    mi_negatives: Literal["other_video", "other_region"] = "other_video"  # which shifted pairs are negatives
    #: early map: 0 = stem (cnn2d: its first conv), k = after stage k (cnn2d has depth / 2 stages)
    mi_layer: Annotated[int, Range(0, 4)] = 1
    roi_samples: Annotated[int, Range(1, 16)] = 4  # RoIAlign-3D sample points per axis
    critic_hidden: Annotated[int, Range(1, 1 << 16)] = 256
    grl_lambda: Annotated[float, Range(0.0, 1e3)] = 1.0  # encoder gradient of the MI term = -grl_lambda x that of the critic
    # ---- local-global temporal order (3.4.3)
    order_task: Literal["permutation", "bin"] = "permutation"  # N! classes | temporal bin per clip
    order_bins: Annotated[int, Range(2, 1024)] = 4
    order_hidden: Annotated[int, Range(1, 1 << 16)] = 512
    # ---- total (3.4.4)
    weight_inst: Annotated[float, Range(0.0)] = 1.0
    weight_region: Annotated[float, Range(0.0)] = 1.0
    weight_mi: Annotated[float, Range(0.0)] = 0.1
    weight_order: Annotated[float, Range(0.0)] = 0.5

    def validate(self) -> None:
        self.validate_encoder()
        if self.backbone == "cnn2d":
            check_range("method.mi_layer", self.mi_layer, 0, self.depth // 2)
        permutation = self.order_task == "permutation"  # N_l! classes
        check_range("method.n_local", self.n_local, 2 if permutation else 1, 6 if permutation else 64)
        if self.local_iou_final is not None and (self.local_iou is None or self.local_iou_epochs < 1):
            raise ConfigError("config key 'method.local_iou_final' needs method.local_iou and method.local_iou_epochs >= 1")
        if self.weight_inst + self.weight_region + self.weight_mi + self.weight_order == 0:
            raise ConfigError("method.weight_* must be >= 0 and not all 0")


class CtrlAug(Method):
    """Batch: ``global/video`` ``(B, 3, T_g, S_g, S_g)``, ``local{i}/video`` ``(B, 3, T_l, S_l, S_l)``,
    ``target/boxes`` ``(B, N, 6)``, ``target/order`` ``(B, N)``. Terms: ``loss_inst``,
    ``loss_region``, ``loss_mi``, ``loss_order``.

    Modules: ``encoder`` (:class:`~glocal.methods.common.ClipEncoder` over a 3-D ResNet or cnn2d),
    ``head`` (pooled and, with ``region_head: shared``, cell embeddings), ``cell_head``
    (``separate`` only), ``critic`` (MI pair critic or cue regressor), ``order_head``.
    """

    name = "ctrlaug"
    config_class = CtrlAugConfig
    modalities = ("video",)

    def __init__(self, cfg: CtrlAugConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        self.encoder = build_clip_encoder(cfg)
        c, d = self.encoder.out_channels, cfg.proj_dim
        self.head = MLPHead(c, cfg.proj_hidden, d, bn=cfg.proj_bn, l2=True)
        self.cell_head = MLPHead(c, cfg.proj_hidden, d, bn=cfg.proj_bn, l2=True) if cfg.region_head == "separate" \
            else None
        if cfg.mi_shortcut == "pair":
            e = self.encoder.trunk.tap_channels(cfg.mi_layer)
            self.critic = MLPHead(2 * e, cfg.critic_hidden, 1)
        else:
            self.critic = MLPHead(c, cfg.critic_hidden, N_CUES)
        if cfg.order_task == "permutation":
            self.order_head = MLPHead((cfg.n_local + 1) * d, cfg.order_hidden, math.factorial(cfg.n_local))
        else:
            self.order_head = MLPHead(2 * d, cfg.order_hidden, cfg.order_bins)

    # ---------------------------------------------------------------- data hooks
    def build_sampler(self) -> GlobalLocalSampler:
        """View ``"global"`` + ``n_local`` views ``"local{i}"`` (no audio); targets ``boxes``, ``order``."""
        cfg = self.cfg
        return GlobalLocalSampler(
            global_frames=cfg.global_frames, global_stride=cfg.global_stride, local_frames=cfg.local_frames,
            n_local=cfg.n_local, local_span=tuple(cfg.local_span), local_area=tuple(cfg.local_area),
            local_ratio=tuple(cfg.local_ratio), global_span=cfg.global_span, with_audio=False,
            iou_range=tuple(cfg.local_iou) if cfg.local_iou is not None else None,
            iou_grid=tuple(cfg.local_iou_grid or cfg.region_grid or (2, 4, 4)),
            iou_range_final=tuple(cfg.local_iou_final) if cfg.local_iou_final is not None else None,
            iou_epochs=cfg.local_iou_epochs,
        )

    def transforms(self) -> dict[str, Any]:
        """``"global"``: RandomResizedCrop (``global_crop_scale``) + flip to ``S_g``; ``"local"``: the
        exact sub-box of the global crop (its flip) resized to ``S_l``; both with independent
        colour jitter / grayscale / blur draws."""
        cfg = self.cfg
        base = clip_transform(self.data, blur_p=cfg.blur_p)
        scale = tuple(cfg.global_crop_scale) if cfg.global_crop_scale is not None else base.scale
        return {
            "global": dataclasses.replace(base, size=cfg.global_size or self.data.crop_size, scale=scale),
            "local": dataclasses.replace(base, size=cfg.local_size or self.data.crop_size),
        }

    # ------------------------------------------------------------------ training
    def _maps(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, T, H, W)`` -> (early map after stage ``mi_layer``, last map ``(B, C, T', H', W')``)."""
        return self.encoder.trunk.forward_with_tap(self.encoder.backbone_input(video), self.cfg.mi_layer)

    def _embed(self, h_g: Tensor, h_l: Tensor, h_c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Pooled global ``(B, C)``, local ``(BN, C)`` and cell ``(BG, C)`` features -> embeddings
        (one head pass per head, so BatchNorm sees every row of the step)."""
        b, bn = h_g.shape[0], h_l.shape[0]
        if self.cell_head is None:
            z = self.head(torch.cat([h_g, h_l, h_c])).float()
            return z[:b], z[b : b + bn], z[b + bn :]
        z = self.head(torch.cat([h_g, h_l])).float()
        return z[:b], z[b:], self.cell_head(h_c).float()

    def _mi_loss(self, early_g: Tensor, early_l: Tensor, boxes: Tensor, h_l: Tensor, locs: Tensor) -> Tensor:
        cfg = self.cfg
        if cfg.mi_shortcut == "cues":
            return adversarial_cue_loss(self.critic, h_l.float(), low_level_cues(locs.float()), lambd=cfg.grl_lambda)
        b, n = boxes.shape[:2]
        e_l = early_l.float().mean(dim=(2, 3, 4))  # (BN, E)
        e_g = roi_align_3d(early_g.float(), boxes, cfg.roi_samples).reshape(b * n, -1)  # (BN, E)
        shift = n if cfg.mi_negatives == "other_video" else 1
        return adversarial_mi_loss(self.critic, e_l, e_g, lambd=cfg.grl_lambda, bound=cfg.mi_bound, shift=shift)

    def _order_loss(self, z_g: Tensor, z_l: Tensor, boxes: Tensor, order: Tensor) -> Tensor:
        b, n, d = z_l.shape
        if self.cfg.order_task == "permutation":
            # class of the permutation that sorts the clips (as presented, local0..local{N-1}) by start time
            logits = self.order_head(torch.cat([z_g, z_l.reshape(b, n * d)], dim=1))
            return F.cross_entropy(logits, permutation_labels(order))
        logits = self.order_head(torch.cat([z_g[:, None].expand(b, n, d), z_l], dim=2).reshape(b * n, 2 * d))
        return F.cross_entropy(logits, temporal_bin_labels(boxes, self.cfg.order_bins).reshape(b * n))

    def training_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        cfg = self.cfg
        glob = batch["global/video"]
        locs = torch.stack([batch[f"local{i}/video"] for i in range(cfg.n_local)], dim=1)  # (B, N, 3, T, H, W)
        boxes = batch["target/boxes"].float()  # (B, N, 6)
        b, n = locs.shape[:2]
        early_g, fmap_g = self._maps(glob)
        early_l, fmap_l = self._maps(locs.flatten(0, 1))
        cells = fmap_g if cfg.region_grid is None else F.adaptive_avg_pool3d(fmap_g, tuple(cfg.region_grid))
        gt, gh, gw = cells.shape[2:]
        # pooled as the encoder pools (method.spatial_pool), so training and video_features agree
        h_l = self.encoder.pool_map(fmap_l, locs.flatten(0, 1))  # (BN, C)
        h_g = self.encoder.pool_map(fmap_g, glob)  # (B, C): what video_features returns
        z_g, z_l, z_c = self._embed(h_g, h_l, cells.flatten(2).transpose(1, 2).flatten(0, 1))
        z_l, z_c = z_l.reshape(b, n, -1), z_c.reshape(b, gt * gh * gw, -1)
        with fp32(glob.device):
            targets = region_soft_targets(boxes, grid_cell_boxes(gt, gh, gw, device=boxes.device),
                                          mode=cfg.region_targets, temperature=cfg.target_temperature)
            l_inst = local_global_nce(z_l, z_g, tau=cfg.tau, gather=cfg.gather_negatives)
            l_region = soft_region_contrast(z_l, z_c, targets, tau=cfg.tau_region, negatives=cfg.region_negatives,
                                            pooled=z_g, gather=cfg.gather_negatives)
            l_mi = self._mi_loss(early_g, early_l, boxes, h_l, locs.flatten(0, 1))
            l_order = self._order_loss(z_g, z_l, boxes, batch["target/order"].long())
        total = (cfg.weight_inst * l_inst + cfg.weight_region * l_region + cfg.weight_mi * l_mi
                 + cfg.weight_order * l_order)
        self._cells = gt * gh * gw  # for loss_chance (a shape, not a tensor)
        out = {"loss": total, "loss_inst": l_inst.detach(), "loss_region": l_region.detach(),
               "loss_mi": l_mi.detach(), "loss_order": l_order.detach()}
        out.update(diag_entries(**{
            "pair/loss_inst": torch.stack([z_l.flatten(0, 1), z_g[:, None].expand(b, n, -1).flatten(0, 1)]),
            "feat/video": h_g.float(),
        }))
        return out

    def term_weights(self) -> dict[str, float]:
        """The four terms' weights (``method.weight_inst`` ... ``weight_order``)."""
        cfg = self.cfg
        return {"loss_inst": cfg.weight_inst, "loss_region": cfg.weight_region, "loss_mi": cfg.weight_mi,
                "loss_order": cfg.weight_order}

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Constant-score levels: instance ``ln B`` (``B`` globals; all ranks' with gather), region
        ``ln(G + negatives)`` (``G`` own cells; ``cells``: ``(B-1)·G``, ``pooled``: ``B-1`` other
        candidates), order ``ln(N!)`` or ``ln(order_bins)``. ``loss_mi`` (adversarial) has none;
        the region level needs one training step (its cell count comes from the feature map)."""
        cfg = self.cfg
        b = batch["global/video"].shape[0] * (dist_info()[1] if cfg.gather_negatives else 1)
        out = {"loss_inst": cross_entropy_chance(b), "loss_order": cross_entropy_chance(num_outputs(self.order_head))}
        g = getattr(self, "_cells", None)
        if g is not None:
            others = {"cells": (b - 1) * g, "pooled": b - 1, "none": 0}[cfg.region_negatives]
            out["loss_region"] = cross_entropy_chance(g + others)
        return out

    # ---------------------------------------------------------------- evaluation
    def video_features(self, video: Tensor) -> Tensor:
        """Pooled backbone features ``(B, C)`` of a clip ``(B, 3, T, H, W)``."""
        return self.encoder(video).float()

    def video_feature_maps(self, video: Tensor) -> list[Tensor]:
        """The backbone map ``[(B, C, T', h, w)]``."""
        return [self.encoder.feature_map(video)]
