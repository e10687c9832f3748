"""Small helpers for pretext tasks: order permutations, gradient reversal, JSD MI bound.

* :func:`order_permutations` — VCLR order classes (k = 3: the 4 non-identity,
  non-reversal orders), CtrlAug permutation classes (``exclude_identity_and_reverse=False``).
* :class:`GradientReversal` / :func:`grad_reverse` — CtrlAug adversarial MI minimisation.
* :func:`jsd_mi_lower_bound` — the JSD mutual-information lower bound of CtrlAug's critic.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch.nn.functional as F
from torch import Tensor, autograd, nn

__all__ = [
    "order_permutations",
    "GradientReversal",
    "GradientReversalLayer",
    "grad_reverse",
    "jsd_mi_lower_bound",
    "mi_jsd_lower_bound",
]


def order_permutations(k: int, exclude_identity_and_reverse: bool = True) -> list[tuple[int, ...]]:
    """All permutations of ``range(k)`` in lexicographic order (class ``c`` = list index ``c``).

    With ``exclude_identity_and_reverse`` the identity ``(0, ..., k-1)`` and the reversal
    ``(k-1, ..., 0)`` are dropped (``k! - 2`` classes; for ``k = 3``:
    ``(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1)``).
    """
    if k < 1:
        raise ValueError(f"order_permutations: k must be >= 1; got {k}")
    perms = list(itertools.permutations(range(k)))
    if exclude_identity_and_reverse:
        ident = tuple(range(k))
        rev = ident[::-1]
        perms = [p for p in perms if p != ident and p != rev]
    return perms


class GradientReversal(autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by ``-lambd`` backwards.

    Use through :func:`grad_reverse`.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambd: float) -> Tensor:  # noqa: D102
        ctx.lambd = float(lambd)
        # y = x
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        # dL/dx = -λ dL/dy
        return grad_output.neg() * ctx.lambd, None


def grad_reverse(x: Tensor, lambd: float = 1.0) -> Tensor:
    """``y = x`` forward, ``dL/dx = -lambd * dL/dy`` backward (any shape)."""
    return GradientReversal.apply(x, lambd)


class GradientReversalLayer(nn.Module):
    """Module form of :func:`grad_reverse` with a fixed coefficient ``lambd``."""

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"


def jsd_mi_lower_bound(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Jensen–Shannon MI lower bound of a critic ``T`` (to be **maximised** by the critic).

    Args:
        pos_scores: critic outputs on joint (positive) pairs, any shape.
        neg_scores: critic outputs on product-of-marginals (shuffled) pairs, any shape.

    Returns:
        0-dim tensor ``Î = E_pos[-softplus(-T)] - E_neg[softplus(T)]``.
    """
    # Î = mean(-softplus(-T_pos)) - mean(softplus(T_neg))
    return (-F.softplus(-pos_scores)).mean() - F.softplus(neg_scores).mean()


#: Alias using the name of spec 7.6.
mi_jsd_lower_bound = jsd_mi_lower_bound
