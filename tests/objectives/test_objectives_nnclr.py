"""NNCLR loss: value against a loop reference, the neighbour is a constant, shape errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives import info_nce, nearest_support, nnclr_loss


def _reference(a: torch.Tensor, b: torch.Tensor, support: torch.Tensor, tau: float) -> float:
    """Loops: the neighbour by scanning every support row, then the two InfoNCE directions."""
    a, b, s = F.normalize(a, dim=1), F.normalize(b, dim=1), F.normalize(support, dim=1)
    total, n = 0.0, a.shape[0]
    for x, y in ((a, b), (b, a)):
        for i in range(n):
            best = max(range(s.shape[0]), key=lambda m: float(x[i] @ s[m]))
            anchor = s[best]
            denom = sum(math.exp(float(anchor @ y[j]) / tau) for j in range(n))
            total += -math.log(math.exp(float(anchor @ y[i]) / tau) / denom)
    return total / (2 * n)


def test_value_matches_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    a, b, s = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), torch.randn(11, 5, generator=g)
    assert abs(float(nnclr_loss(a, b, s, tau=0.2)) - _reference(a, b, s, 0.2)) < 1e-5


def test_nearest_support_by_hand() -> None:
    support = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    x = torch.tensor([[0.1, 3.0], [-5.0, 1.0], [2.0, -0.1]])
    expected = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])  # normalised rows 1, 2, 0
    assert torch.allclose(nearest_support(x, support), expected)


def test_neighbour_is_constant_gradient_only_through_candidates() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 3, generator=g, requires_grad=True)
    b = torch.randn(4, 3, generator=g, requires_grad=True)
    s = torch.randn(7, 3, generator=g)
    nnclr_loss(a, b, s, tau=0.1).backward()
    # the same loss written with the neighbours as fixed tensors gives the same gradients
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    na, nb = nearest_support(a2, s), nearest_support(b2, s)
    (0.5 * (info_nce(na, b2, tau=0.1) + info_nce(nb, a2, tau=0.1))).backward()
    assert torch.allclose(a.grad, a2.grad, atol=1e-6) and torch.allclose(b.grad, b2.grad, atol=1e-6)


def test_support_equal_to_own_other_view_is_simclr() -> None:
    """If the support set holds exactly the other view (so each neighbour is the true positive's
    twin), NNCLR is SimCLR's symmetric InfoNCE."""
    g = torch.Generator().manual_seed(2)
    a = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    loss = nnclr_loss(a, a.clone(), a.clone(), tau=0.5)
    assert torch.allclose(loss, info_nce(a, a.clone(), tau=0.5, symmetric=True), atol=1e-6)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="a and b"):
        nnclr_loss(torch.randn(3, 4), torch.randn(2, 4), torch.randn(5, 4), tau=0.1)
    with pytest.raises(ValueError, match="nearest_support"):
        nearest_support(torch.randn(3, 4), torch.randn(5, 3))
