"""Nearest-neighbour positives (NNCLR, Dwibedi et al. 2021): each clip's positive is replaced by
its nearest neighbour in a support set of embeddings of *other* samples from earlier steps.

With ``a``, ``b`` the embeddings of two clips of each video ``(N, D)`` and ``S`` the support set
``(K, D)`` (rows L2-normalised, no gradient), ``NN(x) = S[argmax_m cos(x, S_m)]``, and::

    L = 1/2 [ -1/N Σ_i log e^{NN(a_i)·b_i/τ} / Σ_j e^{NN(a_i)·b_j/τ}
              -1/N Σ_i log e^{NN(b_i)·a_i/τ} / Σ_j e^{NN(b_i)·a_j/τ} ]

(``a``, ``b`` L2-normalised first). Gradients reach ``a`` and ``b`` through the candidates only:
the neighbour is a constant. When the same object recurs across videos, its neighbour is
another video showing it, so the pair can no longer be matched by what only one video has
(its background, its own trajectory).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .info_nce import info_nce

__all__ = ["nearest_support", "nnclr_loss"]


@torch.no_grad()
def nearest_support(x: Tensor, support: Tensor) -> Tensor:
    """``(N, D)`` rows of ``support`` ``(K, D)`` most cosine-similar to each row of ``x`` ``(N, D)``
    (returned L2-normalised, detached)."""
    if x.dim() != 2 or support.dim() != 2 or x.shape[1] != support.shape[1]:
        raise ValueError(f"nearest_support needs x (N, D) and support (K, D); got {tuple(x.shape)}, {tuple(support.shape)}")
    s = F.normalize(support.float(), dim=1)
    idx = (F.normalize(x.detach().float(), dim=1) @ s.t()).argmax(dim=1)  # (N,)
    return s[idx]


def nnclr_loss(a: Tensor, b: Tensor, support: Tensor, *, tau: float, gather: bool = False) -> Tensor:
    """Symmetric InfoNCE with nearest-neighbour anchors (module docstring); 0-dim tensor.

    Args:
        a, b: ``(N, D)`` embeddings of the two clips of each of ``N`` videos.
        support: ``(K, D)`` support set (e.g. a :class:`~glocal.objectives.FeatureQueue`'s rows).
        tau: temperature.
        gather: in-batch candidates from every rank (:func:`~glocal.objectives.info_nce`).
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must both be (N, D); got {tuple(a.shape)} and {tuple(b.shape)}")
    nn_a, nn_b = nearest_support(torch.cat([a, b]), support).chunk(2)  # one search for both views
    return 0.5 * (info_nce(nn_a, b, tau=tau, gather=gather) + info_nce(nn_b, a, tau=tau, gather=gather))
