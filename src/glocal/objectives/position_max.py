"""Cross-modal InfoNCE whose video side is a bag of positions (multiple-instance, max over positions).

A clip-level audio-visual model pools its video map before it compares it with the audio, so
nothing in the loss says *where* the sound is. Scoring each audio against the best-matching
position of each video's map instead ("Objects that Sound", Arandjelović & Zisserman 2018) makes
every position's embedding answer "does this sound come from here?", which is what an
audio-visual heat map reads::

    s_ij = max_p <a_i, v_{j,p}> / τ        a_i: (D,) L2, v_{j,p}: (D,) L2, p over the T'·h·w positions
    L_a2v = -1/B Σ_i log e^{s_ii} / Σ_j e^{s_ij}
    L_v2a = -1/B Σ_j log e^{s_jj} / Σ_i e^{s_ij}
    L = (L_a2v + L_v2a) / 2

The gradient reaches only the arg-max position of each pair (as in the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["max_position_scores", "max_position_nce"]


def max_position_scores(a: Tensor, v: Tensor, tau: float) -> Tensor:
    """``s[i, j] = max_p <a_i, v[j, p]> / tau``.

    Args:
        a: ``(B, D)`` audio embeddings (L2-normalised).
        v: ``(B, P, D)`` video embeddings at each of ``P`` positions (L2-normalised).
        tau: temperature (> 0).

    Returns:
        ``(B, B)`` scores: row ``i`` = audio ``i``, column ``j`` = video ``j``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau}")
    if a.dim() != 2 or v.dim() != 3 or v.shape[0] != a.shape[0] or v.shape[2] != a.shape[1]:
        raise ValueError(f"a must be (B, D) and v (B, P, D) with the same B and D; got {tuple(a.shape)} "
                         f"and {tuple(v.shape)}")
    return torch.einsum("id,jpd->ijp", a, v).amax(dim=2) / tau


def max_position_nce(a: Tensor, v: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """The two directions ``(L_a2v, L_v2a)`` of the max-over-positions InfoNCE (module docstring),
    each a 0-dim mean over the ``B`` anchors. Shapes as :func:`max_position_scores`."""
    s = max_position_scores(a, v, tau)
    target = torch.arange(s.shape[0], device=s.device)
    return F.cross_entropy(s, target), F.cross_entropy(s.t(), target)
