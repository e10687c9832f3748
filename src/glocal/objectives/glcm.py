"""GLCM losses (spec 1.6): global/local cross-modal MIL-NCE and audio-visual attention.

Notation (spec 1.6): videos ``i, j``; spatial positions ``p`` (``P = H*W``, 49 at 112² input);
fast-pathway steps ``t`` (``T``, 32); audio steps ``s`` (``S``, 96); ``r = S / T`` (3).

Release-exact semantics
-----------------------
The released GLCM code uses **raw dot products: no L2 normalisation and no temperature**.
Every function here takes ``normalize`` and ``tau``; ``normalize=False, tau=1.0`` (the mapping
:data:`RELEASE_EXACT`) reproduces the release's loss values (same formula and grouping; only the
floating-point summation order may differ): a symmetric MIL-NCE whose denominators hold row *and*
column of the score tensor, positives counted twice.
``normalize=True`` L2-normalises every feature vector over the channel axis ``D`` (per position /
per step) and divides scores by ``tau`` (cosine-similarity variant, library default).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ..runtime.gather import all_gather_with_grad, dist_info

from .distributed import mil_nce_local
from .mil_nce import mil_nce

__all__ = [
    "RELEASE_EXACT",
    "global_scores",
    "glcm_global_loss",
    "av_attention",
    "attention_pool",
    "glcm_local_loss",
]

#: Keyword arguments that reproduce the released code's raw-dot-product scores.
RELEASE_EXACT: Mapping[str, Any] = MappingProxyType({"normalize": False, "tau": 1.0})


def _check_tau(tau: float) -> None:
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau}")


def _flat_map(video_map: Tensor, name: str) -> Tensor:
    """``(B, D, *spatial)`` -> ``(B, D, P)``; a ``(B, D, P)`` map passes through."""
    if video_map.dim() < 3:
        raise ValueError(f"{name} must have shape (B, D, P) or (B, D, H, W); got {tuple(video_map.shape)}")
    return video_map.flatten(2)


def _check_global(audio_g: Tensor, video_map: Tensor) -> None:
    if audio_g.dim() != 2:
        raise ValueError(f"audio_g must have shape (B, D); got {tuple(audio_g.shape)}")
    if audio_g.shape[:2] != video_map.shape[:2]:
        raise ValueError(
            f"audio_g (B, D) = {tuple(audio_g.shape)} does not match video_map (B, D, P) = "
            f"{tuple(video_map.shape)}"
        )


def _global_inputs(audio_g: Tensor, video_map: Tensor, *, normalize: bool, tau: float) -> tuple[Tensor, Tensor]:
    """Checked ``(B, D)`` audio and ``(B, D, P)`` video-map inputs of the global scores,
    L2-normalised over ``D`` when ``normalize``."""
    _check_tau(tau)
    video_map = _flat_map(video_map, "video_map")
    _check_global(audio_g, video_map)
    if normalize:
        audio_g = F.normalize(audio_g, dim=1)
        video_map = F.normalize(video_map, dim=1)
    return audio_g, video_map


def global_scores(audio_g: Tensor, video_map: Tensor, *, normalize: bool, tau: float) -> Tensor:
    """Audio-to-position scores of every audio/video pair in the batch.

    Args:
        audio_g: ``(B, D)`` global (time-pooled) audio embeddings ``ā``.
        video_map: ``(B, D, P)`` (or ``(B, D, H, W)``) time-pooled slow-pathway map ``v̄``.
        normalize: L2-normalise ``ā_i`` and every ``v̄_{j,p}`` over ``D`` first.
        tau: temperature (``1.0`` with ``normalize=False`` = release).

    Returns:
        ``(B, B, P)`` tensor ``g`` with ``g[i, j, p] = <ā_i, v̄_{j,p}> / tau``.
    """
    audio_g, video_map = _global_inputs(audio_g, video_map, normalize=normalize, tau=tau)
    # g_ij,p = <a_i, v_jp> / tau
    return torch.einsum("id,jdp->ijp", audio_g, video_map) / tau


def glcm_global_loss(
    audio_g: Tensor, video_map: Tensor, *, normalize: bool = True, tau: float = 0.07, gather: bool = False
) -> Tensor:
    """GLCM global (spatially local / temporally global) loss ``L_g``.

    Args:
        audio_g: ``(B, D)``.
        video_map: ``(B, D, P)`` or ``(B, D, H, W)``.
        normalize, tau: see :func:`global_scores`; ``normalize=False, tau=1.0`` = release.
        gather: under ``torch.distributed``, use the clips of every rank as negatives (see
            :mod:`glocal.runtime.gather`): this rank's anchors against all ranks' items;
            returns the mean over this rank's anchors (no-op with one process).

    Returns:
        0-dim tensor
        ``L_g = (1/B) sum_i [ LSE({g_ijp}_{j,p} ∪ {g_jip}_{j,p}) - LSE_p g_iip ]``
        (symmetric MIL-NCE, audio ``i`` anchors, the ``P`` positions of video ``i`` positives).
    """
    rank, world = dist_info()
    if not gather or world == 1:
        # L_g = mean_i [ LSE({g_ij,p} ∪ {g_ji,p}) - LSE_p g_ii,p ]
        return mil_nce(global_scores(audio_g, video_map, normalize=normalize, tau=tau), symmetric=True)
    audio_g, video_map = _global_inputs(audio_g, video_map, normalize=normalize, tau=tau)
    a_all, v_all = all_gather_with_grad(audio_g), all_gather_with_grad(video_map)
    # rows: g[i_local, j, p] = <a_i, v_jp> / tau;  cols: g[j, i_local, p] = <a_j, v_ip> / tau
    rows = torch.einsum("id,jdp->ijp", audio_g, v_all) / tau
    cols = torch.einsum("jd,idp->jip", a_all, video_map) / tau
    return mil_nce_local(rows, cols, rank * audio_g.shape[0], symmetric=True)


def av_attention(
    audio_g: Tensor,
    video_map: Tensor,
    *,
    normalize: bool,
    tau: float,
    stopgrad: bool = False,
) -> Tensor:
    """Audio-visual attention over positions (the sound-source-localisation map).

    Args:
        audio_g: ``(B, D)``.
        video_map: ``(B, D, P)`` or ``(B, D, H, W)``.
        normalize, tau: as in :func:`global_scores` (release: ``False, 1.0``).
        stopgrad: detach the attention from the graph (the release does **not**).

    Returns:
        ``(B, P)`` tensor ``alpha[i, p] = softmax_p(g_ii,p)``; rows sum to 1.
    """
    audio_g, video_map = _global_inputs(audio_g, video_map, normalize=normalize, tau=tau)
    if stopgrad:
        audio_g, video_map = audio_g.detach(), video_map.detach()
    # Only the diagonal blocks are needed: g_ii,p = <a_i, v_ip> / tau
    diag = torch.einsum("id,idp->ip", audio_g, video_map) / tau
    # alpha_i,p = exp(g_ii,p) / sum_p' exp(g_ii,p')
    return torch.softmax(diag, dim=1)


def attention_pool(attn: Tensor, fmap: Tensor) -> Tensor:
    """Attention-weighted spatial sum of a dense spatio-temporal map.

    Args:
        attn: ``(B, P)`` weights (usually :func:`av_attention`).
        fmap: ``(B, D, T, P)`` or ``(B, D, T, H, W)`` with ``H*W == P`` (fast-pathway map).

    Returns:
        ``(B, D, T)`` tensor ``u[i, :, t] = sum_p alpha_ip fmap[i, :, t, p]``.
    """
    if fmap.dim() < 4:
        raise ValueError(f"fmap must have shape (B, D, T, P) or (B, D, T, H, W); got {tuple(fmap.shape)}")
    fmap = fmap.flatten(3)
    if attn.dim() != 2 or attn.shape[0] != fmap.shape[0] or attn.shape[1] != fmap.shape[3]:
        raise ValueError(
            f"attn (B, P) = {tuple(attn.shape)} does not match fmap (B, D, T, P) = {tuple(fmap.shape)}"
        )
    # u_i,t = sum_p alpha_i,p f_i,t,p
    return torch.einsum("bp,bdtp->bdt", attn, fmap)


def glcm_local_loss(
    video_local: Tensor, audio_local: Tensor, *, normalize: bool = True, tau: float = 0.07, gather: bool = False
) -> Tensor:
    """GLCM local (spatially global / temporally local) loss ``L_l``.

    Args:
        video_local: ``(B, D, T)`` attention-pooled fast features ``u``.
        audio_local: ``(B, D, S)`` local audio features ``b`` with ``S = r * T`` exactly.
        normalize, tau: L2-normalise each step vector over ``D`` / temperature;
            ``normalize=False, tau=1.0`` = release.
        gather: under ``torch.distributed``, use the steps of every rank's clips as negatives
            (this rank's anchors / audio groups against all ranks'); returns the mean over this
            rank's ``B*T`` anchors (no-op with one process).

    Returns:
        0-dim tensor. With ``l(i,t; j,t',k) = <u_it, b_j,rt'+k> / tau`` (a ``(B*T, B*T, r)``
        tensor: anchor = video step ``(i, t)``, item = audio group ``(j, t')``, instance ``k``),
        ``L_l = (1/BT) sum_{i,t} [ LSE({l(i,t;j,t',k)} ∪ {l(j,t';i,t,k)}) - LSE_k l(i,t;i,t,k) ]``.
        Negatives include the other steps of the same video.

    Raises:
        ValueError: if ``S`` is not a whole multiple ``r * T`` of ``T`` (the release silently
            truncates; here it is an error), or the batch / channel sizes disagree.
    """
    _check_tau(tau)
    if video_local.dim() != 3 or audio_local.dim() != 3:
        raise ValueError(
            f"video_local must be (B, D, T) and audio_local (B, D, S); got "
            f"{tuple(video_local.shape)} and {tuple(audio_local.shape)}"
        )
    n_vid, dim, n_t = video_local.shape
    if audio_local.shape[:2] != (n_vid, dim):
        raise ValueError(
            f"video_local (B, D, T) = {tuple(video_local.shape)} and audio_local (B, D, S) = "
            f"{tuple(audio_local.shape)} disagree on B or D"
        )
    n_s = audio_local.shape[2]
    if n_t == 0 or n_s == 0 or n_s % n_t != 0:
        raise ValueError(
            f"glcm_local_loss needs S = r*T audio steps for an integer r >= 1; got "
            f"S={n_s} audio steps and T={n_t} video steps"
        )
    r = n_s // n_t
    if normalize:
        video_local = F.normalize(video_local, dim=1)
        audio_local = F.normalize(audio_local, dim=1)
    # Anchors u_(i,t): rows ordered (video, step)                          -> (B*T, D)
    u = video_local.transpose(1, 2).reshape(n_vid * n_t, dim)
    # Audio groups: b_(j,t'),k = b_j,rt'+k, ordered (video, step, member) -> (B*T, r, D)
    b = audio_local.transpose(1, 2).reshape(n_vid * n_t, r, dim)
    rank, world = dist_info()
    if not gather or world == 1:
        # l(i,t; j,t',k) = <u_it, b_j,rt'+k> / tau                        -> (B*T, B*T, r)
        scores = torch.einsum("nd,mkd->nmk", u, b) / tau
        return mil_nce(scores, symmetric=True)
    # Rank-major global order of (video, step) rows = the single-process order of the global batch
    u_all, b_all = all_gather_with_grad(u), all_gather_with_grad(b)
    rows = torch.einsum("nd,mkd->nmk", u, b_all) / tau  # local anchors vs all audio groups
    cols = torch.einsum("nd,mkd->nmk", u_all, b) / tau  # all anchors vs local audio groups
    return mil_nce_local(rows, cols, rank * u.shape[0], symmetric=True)
