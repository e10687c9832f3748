"""Embedding and attention health metrics (read-only diagnostics, never part of a loss).

* :func:`alignment` / :func:`uniformity` — Wang & Isola (2020), "Understanding contrastive
  representation learning through alignment and uniformity on the hypersphere".
* :func:`attention_entropy` — entropy of attention maps normalised by ``ln P``
  (1 = uniform: the map points nowhere; 0 = one-hot).

All take detached tensors and return 0-dim tensors (no host sync).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["alignment", "uniformity", "attention_entropy"]


def alignment(x: Tensor, y: Tensor, *, normalize: bool = True) -> Tensor:
    """``E_i ||f(x_i) - f(y_i)||²`` over the ``N`` positive pairs ``(x_i, y_i)``.

    Args:
        x, y: ``(N, D)`` embeddings; L2-normalised over ``D`` first when ``normalize``.

    Returns:
        0-dim tensor in ``[0, 4]`` (0: positives coincide).
    """
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(f"alignment needs x, y of the same shape (N, D); got {tuple(x.shape)}, {tuple(y.shape)}")
    if normalize:
        x, y = F.normalize(x.float(), dim=1), F.normalize(y.float(), dim=1)
    # A = (1/N) Σ_i ||x_i - y_i||²
    return (x - y).pow(2).sum(dim=1).mean()


def uniformity(x: Tensor, *, t: float = 2.0, normalize: bool = True) -> Tensor:
    """``log E_{i<j} exp(-t ||f(x_i) - f(x_j)||²)`` over the distinct pairs of ``N >= 2`` rows.

    Args:
        x: ``(N, D)`` embeddings; L2-normalised over ``D`` first when ``normalize``.
        t: the kernel scale (2 in the paper).

    Returns:
        0-dim tensor in ``[-4t, 0]``; lower = more uniform (0: every embedding the same point).
    """
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"uniformity needs x of shape (N >= 2, D); got {tuple(x.shape)}")
    if normalize:
        x = F.normalize(x.float(), dim=1)
    n = x.shape[0]
    # ||x_i - x_j||² for i < j  (pdist: the n(n-1)/2 upper-triangle distances)
    sq = torch.pdist(x.float(), p=2).pow(2)
    # U = log (2/(n(n-1))) Σ_{i<j} e^{-t d_ij²} = LSE(-t d²) - ln(n(n-1)/2)
    return torch.logsumexp(-t * sq, dim=0) - math.log(n * (n - 1) / 2)


def attention_entropy(attn: Tensor) -> Tensor:
    """Mean normalised entropy of ``B`` attention maps over ``P`` positions.

    Args:
        attn: ``(B, P)`` (or ``(B, *spatial)``) non-negative weights, each map summing to 1.

    Returns:
        0-dim tensor ``(1/B) Σ_b [-Σ_p a_bp ln a_bp] / ln P`` (``0 ln 0 = 0``): 1.0 for uniform maps,
        0.0 for one-hot maps. ``P = 1`` gives 0.
    """
    a = attn.float().flatten(1)
    p = a.shape[1]
    if p <= 1:
        return a.new_zeros(())
    # H_b = -Σ_p a_bp ln a_bp, with 0 ln 0 = 0
    h = -torch.where(a > 0, a * a.clamp_min(1e-30).log(), torch.zeros_like(a)).sum(dim=1)
    return (h / math.log(p)).mean()
