"""order_permutations, gradient reversal and the JSD MI lower bound."""

from __future__ import annotations

import math

import pytest
import torch

from glocal.objectives import (
    GradientReversalLayer,
    grad_reverse,
    jsd_mi_lower_bound,
    mi_jsd_lower_bound,
    order_permutations,
)


def test_order_permutations_k3() -> None:
    assert order_permutations(3) == [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1)]
    assert len(order_permutations(3, exclude_identity_and_reverse=False)) == 6
    perms4 = order_permutations(4)
    assert len(perms4) == 22 and (0, 1, 2, 3) not in perms4 and (3, 2, 1, 0) not in perms4
    assert order_permutations(4, exclude_identity_and_reverse=False)[0] == (0, 1, 2, 3)
    with pytest.raises(ValueError):
        order_permutations(0)


def test_gradient_reversal_flips_and_scales() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    w = torch.randn(3, 2)
    y = grad_reverse(x, 0.25)
    assert torch.equal(y, x)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    assert torch.allclose(g, -0.25 * w)
    layer = GradientReversalLayer(2.0)
    (g2,) = torch.autograd.grad((layer(x) * w).sum(), x)
    assert torch.allclose(g2, -2.0 * w)


def test_jsd_mi_lower_bound() -> None:
    pos = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    neg = torch.tensor([[0.3, -0.2]], dtype=torch.float64)

    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    expected = sum(-softplus(-t) for t in pos.tolist()) / 3 - sum(softplus(t) for t in neg.flatten().tolist()) / 2
    assert jsd_mi_lower_bound(pos, neg).item() == pytest.approx(expected, rel=1e-12)
    assert mi_jsd_lower_bound is jsd_mi_lower_bound
    # a perfect critic drives the bound to its maximum 0
    assert jsd_mi_lower_bound(torch.full((4,), 50.0), torch.full((4,), -50.0)).item() == pytest.approx(0.0, abs=1e-12)
