"""CtrlAug loss pieces (methods.md 3.4, a reconstruction ``[INF]``), pure functions on tensors.

Geometry: a local clip's box ``b_n = (t0, t1, x0, y0, x1, y1)`` and a global cell's box ``β_c``
are normalised to the global view (``t`` over its time window, ``x, y`` over its displayed crop).

* :func:`grid_cell_boxes`, :func:`box_intersection`, :func:`region_soft_targets` — the soft
  targets ``w_nc`` from the exact overlap of ``b_n`` with each cell (fraction of the local box in
  the cell, or IoU), optionally sharpened by a target temperature.
* :func:`soft_region_contrast` — cross-entropy of each local embedding's softmax over its own
  video's cells (plus negatives from other videos) against ``w_n``.
* :func:`local_global_nce` — instance InfoNCE of every local clip against its global video.
* :func:`adversarial_mi_loss` — a critic's JSD / Donsker–Varadhan MI lower bound between
  low-level features of a local clip and of the same region of the global video, behind a
  gradient-reversal layer: the critic maximises the bound, the encoder minimises it.
  :func:`adversarial_cue_loss` + :func:`low_level_cues` — the alternative shortcut critic that
  regresses low-level colour / motion statistics from the features.
* :func:`permutation_labels`, :func:`temporal_bin_labels` — labels of the local–global order task.

Distributed (``gather=True``): the candidates of other videos (cells, pooled globals) are gathered
from every rank with gradients and each rank returns the mean over its own local clips (the
pattern of :mod:`glocal.runtime.gather`), so the mean over ranks equals the loss of one
process holding the whole batch.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..boxes import box_intersection, box_iou, box_volume, grid_cell_boxes  # geometry re-exported here
from ..runtime.gather import all_gather_with_grad, dist_info
from .checks import check_all
from .info_nce import soft_target_nce
from .pretext import grad_reverse, jsd_mi_lower_bound

__all__ = [
    "TARGET_MODES",
    "REGION_NEGATIVES",
    "MI_BOUNDS",
    "grid_cell_boxes",
    "box_volume",
    "box_intersection",
    "region_soft_targets",
    "soft_region_contrast",
    "local_global_nce",
    "dv_mi_lower_bound",
    "adversarial_mi_loss",
    "low_level_cues",
    "adversarial_cue_loss",
    "permutation_labels",
    "temporal_bin_labels",
]

TARGET_MODES = ("overlap", "iou")
REGION_NEGATIVES = ("cells", "pooled", "none")
MI_BOUNDS = ("jsd", "dv")


def region_soft_targets(boxes: Tensor, cells: Tensor, *, mode: str = "overlap", temperature: float = 1.0) -> Tensor:
    """Soft targets over the global cells for every local clip.

    Args:
        boxes: ``(B, N, 6)`` local boxes ``b_n``.
        cells: ``(G, 6)`` cell boxes ``β_c`` (e.g. :func:`grid_cell_boxes`).
        mode: ``"overlap"``: ``r_nc = vol(b_n ∩ β_c)`` (with cells tiling the volume,
            ``w_nc`` is the fraction of the local box inside cell ``c``, spec 3.4);
            ``"iou"``: ``r_nc = vol(b_n ∩ β_c) / vol(b_n ∪ β_c)``.
        temperature: ``τ_w > 0``; ``w_nc ∝ (r_nc / max_c' r_nc')^(1/τ_w)`` (1: plain
            normalisation; -> 0: one-hot on the most-overlapped cell; > 1: flatter).

    Returns:
        ``(B, N, G)`` non-negative, each row sums to 1, zero on cells that do not overlap.
    """
    if mode not in TARGET_MODES:
        raise ValueError(f"mode must be one of {TARGET_MODES}; got {mode!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if boxes.dim() != 3 or boxes.shape[-1] != 6 or cells.dim() != 2 or cells.shape[-1] != 6:
        raise ValueError(f"expected boxes (B, N, 6) and cells (G, 6); got {tuple(boxes.shape)}, {tuple(cells.shape)}")
    boxes, cells = boxes.double(), cells.to(boxes.device).double()
    pairs = (boxes[:, :, None, :], cells[None, None])
    inter = box_iou(*pairs) if mode == "iou" else box_intersection(*pairs)  # (B, N, G)
    top = inter.amax(dim=2, keepdim=True)
    check_all(~(top <= 0), "region_soft_targets: a local box overlaps no cell (empty box?)")  # on the device
    # w_nc = (r_nc / max r_n)^(1/τ_w) / Σ_c' (r_nc' / max r_n)^(1/τ_w)
    r = (inter / top).pow(1.0 / temperature)
    return (r / r.sum(dim=2, keepdim=True)).float()


# ---------------------------------------------------------------------------- contrastive terms
def soft_region_contrast(
    local: Tensor,
    cells: Tensor,
    targets: Tensor,
    *,
    tau: float,
    negatives: str = "cells",
    pooled: Tensor | None = None,
    normalize: bool = True,
    gather: bool = False,
) -> Tensor:
    """Soft spatio-temporal region contrast.

    Args:
        local: ``(B, N, D)`` embeddings ``z^l_n`` of the ``N`` local clips of each video.
        cells: ``(B, G, D)`` embeddings ``z^g_c`` of the ``G`` cells of each global video.
        targets: ``(B, N, G)`` soft targets ``w_nc`` (:func:`region_soft_targets`).
        tau: temperature.
        negatives: the set ``𝒩`` of other-video candidates: ``"cells"`` (every cell of every
            other video), ``"pooled"`` (the pooled global embedding of every other video, needs
            ``pooled``) or ``"none"`` (a softmax over the own video's cells only).
        pooled: ``(B, D)`` pooled global embeddings ``z^g`` (for ``negatives="pooled"``).
        normalize: L2-normalise the embeddings over ``D`` first.
        gather: take the other-video candidates from every rank (with gradients).

    Returns:
        0-dim ``L = -(1/BN) Σ_{b,n} Σ_c w_nc log( e^{s_nc} / (Σ_c' e^{s_nc'} + Σ_{m∈𝒩} e^{z^l_n·m/τ}) )``
        with ``s_nc = z^l_n·z^g_c / τ``.
    """
    if negatives not in REGION_NEGATIVES:
        raise ValueError(f"negatives must be one of {REGION_NEGATIVES}; got {negatives!r}")
    if local.dim() != 3 or cells.dim() != 3 or local.shape[0] != cells.shape[0] or local.shape[2] != cells.shape[2]:
        raise ValueError(
            f"expected local (B, N, D) and cells (B, G, D); got {tuple(local.shape)}, {tuple(cells.shape)}")
    b, n, d = local.shape
    g = cells.shape[1]
    if targets.shape != (b, n, g):
        raise ValueError(f"targets must be (B, N, G) = {(b, n, g)}; got {tuple(targets.shape)}")
    if negatives == "pooled" and (pooled is None or pooled.shape != (b, d)):
        raise ValueError(f"negatives='pooled' needs pooled (B, D) = {(b, d)}")
    if normalize:
        local, cells = F.normalize(local, dim=-1), F.normalize(cells, dim=-1)
        pooled = F.normalize(pooled, dim=-1) if pooled is not None else None
    # s_nc = z^l_n · z^g_c / τ over the own video's cells                       -> (B·N, G)
    logits = torch.einsum("bnd,bgd->bng", local, cells).reshape(b * n, g) / tau
    soft = targets.reshape(b * n, g).to(logits.dtype)
    if negatives != "none":
        rank, world = dist_info()
        cand, group = (cells.reshape(b * g, d), g) if negatives == "cells" else (pooled, 1)
        cand = all_gather_with_grad(cand) if gather and world > 1 else cand  # (W'·B·group, D), rank-major
        offset = rank * b if gather and world > 1 else 0
        # z^l_n · m / τ for every candidate m; the own video's columns are already in `logits`
        neg = local.reshape(b * n, d) @ cand.t() / tau
        video_of_col = torch.arange(cand.shape[0], device=neg.device) // group
        own = (torch.arange(b, device=neg.device) + offset).repeat_interleave(n)
        neg = neg.masked_fill(video_of_col[None, :] == own[:, None], float("-inf"))
        logits = torch.cat([logits, neg], dim=1)
        soft = torch.cat([soft, torch.zeros_like(neg)], dim=1)
    return soft_target_nce(logits, soft)


def local_global_nce(
    local: Tensor, glob: Tensor, *, tau: float, normalize: bool = True, gather: bool = False
) -> Tensor:
    """Instance term: every local clip against the pooled global embeddings of the batch.

    Args:
        local: ``(B, N, D)`` local embeddings ``z^l_n``.
        glob: ``(B, D)`` pooled global embeddings ``z^g``; ``glob[b]`` is the positive of
            ``local[b, n]``, the other videos' globals are negatives.
        gather: candidates from every rank (with gradients); mean over this rank's clips.

    Returns:
        0-dim ``L = -(1/BN) Σ_{b,n} log e^{z^l_bn·z^g_b/τ} / Σ_{b'} e^{z^l_bn·z^g_b'/τ}``.
    """
    if local.dim() != 3 or glob.dim() != 2 or glob.shape != (local.shape[0], local.shape[2]):
        raise ValueError(f"expected local (B, N, D) and glob (B, D); got {tuple(local.shape)}, {tuple(glob.shape)}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau}")
    b, n, d = local.shape
    if normalize:
        local, glob = F.normalize(local, dim=-1), F.normalize(glob, dim=-1)
    rank, world = dist_info()
    gathered = gather and world > 1
    cand = all_gather_with_grad(glob) if gathered else glob
    labels = (torch.arange(b, device=local.device) + (rank * b if gathered else 0)).repeat_interleave(n)
    # logits_{(b,n), b'} = z^l_bn · z^g_b' / τ;  L = CE(logits, own video)
    return F.cross_entropy(local.reshape(b * n, d) @ cand.t() / tau, labels)


# -------------------------------------------------------------------------- adversarial terms
def dv_mi_lower_bound(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Donsker–Varadhan (MINE) MI lower bound of a critic ``T`` (maximised by the critic).

    Returns 0-dim ``Î = E_pos[T] - log E_neg[e^T]`` (``pos_scores``, ``neg_scores`` any shape).
    """
    neg = neg_scores.reshape(-1)
    # log E_neg e^T = LSE(T_neg) - log |neg|
    return pos_scores.mean() - (torch.logsumexp(neg, dim=0) - math.log(neg.numel()))


def adversarial_mi_loss(
    critic: Callable[[Tensor], Tensor],
    low_local: Tensor,
    low_global: Tensor,
    *,
    lambd: float,
    bound: str = "jsd",
    shift: int = 1,
) -> Tensor:
    """Adversarial MI minimisation between low-level features of corresponding views.

    Args:
        critic: ``T_ψ``: ``(M, 2E)`` concatenated pairs -> ``(M,)`` or ``(M, 1)`` scores.
        low_local: ``(M, E)`` low-level features ``e^l_n`` of the local clips.
        low_global: ``(M, E)`` low-level features ``e^g_n`` of the global video over the same
            regions (row ``i`` pairs with row ``i`` of ``low_local``).
        lambd: gradient-reversal coefficient: the features receive ``-lambd`` times the
            gradient of the returned loss.
        bound: ``"jsd"`` (:func:`~glocal.objectives.jsd_mi_lower_bound`) or ``"dv"``
            (:func:`dv_mi_lower_bound`).
        shift: negatives pair ``e^l_i`` with ``e^g_{i - shift}`` (a cyclic shift of the rows;
            with rows in ``(video, clip)`` order ``shift = N`` takes another video's region,
            ``shift = 1`` mostly another region of the same video).

    Returns:
        0-dim ``L_MI = -Î`` with ``Î = bound(T_ψ([e^l_i; e^g_i]), T_ψ([e^l_i; e^g_{i-shift}]))``.
        Minimising it maximises ``Î`` for the critic while, through the reversal, the features
        descend ``λ Î`` (the encoder minimises the mutual information the critic can find).
    """
    if bound not in MI_BOUNDS:
        raise ValueError(f"bound must be one of {MI_BOUNDS}; got {bound!r}")
    if low_local.dim() != 2 or low_local.shape != low_global.shape:
        raise ValueError(f"expected two (M, E) tensors; got {tuple(low_local.shape)}, {tuple(low_global.shape)}")
    m = low_local.shape[0]
    if shift % m == 0:
        raise ValueError(f"shift={shift} with M={m} rows pairs every row with itself: no negatives")
    xl, xg = grad_reverse(low_local, lambd), grad_reverse(low_global, lambd)
    pos = critic(torch.cat([xl, xg], dim=1)).reshape(m)
    neg = critic(torch.cat([xl, xg.roll(shift, dims=0)], dim=1)).reshape(m)
    mi = jsd_mi_lower_bound(pos, neg) if bound == "jsd" else dv_mi_lower_bound(pos, neg)
    return -mi


def low_level_cues(video: Tensor) -> Tensor:
    """Low-level statistics of clips ``(B, 3, T, H, W)`` -> ``(B, 7)``: per-channel mean (3),
    per-channel standard deviation (3) and the mean absolute frame difference
    ``mean |x_{t+1} - x_t|`` (1; 0 for one-frame clips)."""
    if video.dim() != 5 or video.shape[1] != 3:
        raise ValueError(f"video must be (B, 3, T, H, W); got {tuple(video.shape)}")
    flat = video.flatten(2)
    motion = (video[:, :, 1:] - video[:, :, :-1]).abs().flatten(1).mean(dim=1) if video.shape[2] > 1 \
        else video.new_zeros(video.shape[0])
    return torch.cat([flat.mean(dim=2), flat.std(dim=2, unbiased=False), motion[:, None]], dim=1)


def adversarial_cue_loss(predictor: Callable[[Tensor], Tensor], feats: Tensor, cues: Tensor, *, lambd: float) -> Tensor:
    """Adversarial shortcut removal by cue prediction (the ``mi_shortcut: cues`` variant).

    Args:
        predictor: ``(M, C)`` features -> ``(M, K)`` predicted cues.
        feats: ``(M, C)`` features that should not encode the cues.
        cues: ``(M, K)`` targets (e.g. :func:`low_level_cues` of the clips; no gradient).
        lambd: gradient-reversal coefficient on ``feats``.

    Returns:
        0-dim ``L = (1/MK) Σ (predictor(feats) - cues)^2``: the predictor minimises it, the
        features (through the reversal) maximise it.
    """
    if feats.dim() != 2 or cues.dim() != 2 or feats.shape[0] != cues.shape[0]:
        raise ValueError(f"expected feats (M, C) and cues (M, K); got {tuple(feats.shape)}, {tuple(cues.shape)}")
    pred = predictor(grad_reverse(feats, lambd))
    return F.mse_loss(pred, cues.detach().to(pred.dtype))


# ------------------------------------------------------------------------------- order labels
def permutation_labels(order: Tensor) -> Tensor:
    """Class of each row's permutation among all ``N!`` permutations in lexicographic order (the
    index in ``order_permutations(N, exclude_identity_and_reverse=False)``).

    Args:
        order: int ``(B, N)``, each row a permutation of ``0..N-1`` (e.g. the sampler's
            ``order`` target: local indices sorted by start time).

    Returns:
        int64 ``(B,)`` Lehmer rank ``Σ_i #{j > i : p_j < p_i} · (N-1-i)!``.
    """
    if order.dim() != 2:
        raise ValueError(f"order must be (B, N); got {tuple(order.shape)}")
    n = order.shape[1]
    ref = torch.arange(n, device=order.device)
    check_all(order.sort(dim=1).values == ref, "permutation_labels: every row must be a permutation of 0..N-1")
    smaller_after = (order[:, None, :] < order[:, :, None]) & (ref[None, :] > ref[:, None])[None]  # [b, i, j]
    fact = torch.tensor([math.factorial(n - 1 - i) for i in range(n)], device=order.device)
    return (smaller_after.sum(dim=2) * fact).sum(dim=1).long()


def temporal_bin_labels(boxes: Tensor, n_bins: int) -> Tensor:
    """Temporal bin of each local clip's centre in the global window: ``(B, N, 6)`` boxes ->
    int64 ``(B, N)`` ``min(floor((t0 + t1) / 2 · n_bins), n_bins - 1)``."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    centre = (boxes[..., 0].double() + boxes[..., 1].double()) / 2
    return (centre * n_bins).floor().clamp(0, n_bins - 1).long()
