"""max_position_nce against an explicit-loop reference (double precision), value and gradient."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives.position_max import max_position_nce, max_position_scores


def ref_losses(a: torch.Tensor, v: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """s_ij = max over positions of the dot product, written out; then both cross-entropies by hand."""
    b, p, _ = v.shape
    s = [[None] * b for _ in range(b)]
    for i in range(b):
        for j in range(b):
            best = (a[i] * v[j, 0]).sum()
            for k in range(1, p):
                best = torch.maximum(best, (a[i] * v[j, k]).sum())
            s[i][j] = best / tau
    a2v = sum(torch.log(sum(torch.exp(s[i][j]) for j in range(b))) - s[i][i] for i in range(b)) / b
    v2a = sum(torch.log(sum(torch.exp(s[i][j]) for i in range(b))) - s[j][j] for j in range(b)) / b
    return a2v, v2a


@pytest.mark.parametrize("b,p,tau", [(1, 1, 0.1), (3, 5, 0.07), (4, 2, 1.0)])
def test_value_and_gradient_match_the_loop_reference(b: int, p: int, tau: float) -> None:
    g = torch.Generator().manual_seed(b * 10 + p)
    a0 = F.normalize(torch.randn(b, 6, generator=g, dtype=torch.float64), dim=1)
    v0 = F.normalize(torch.randn(b, p, 6, generator=g, dtype=torch.float64), dim=2)
    a1, v1 = a0.clone().requires_grad_(), v0.clone().requires_grad_()
    a2, v2 = a0.clone().requires_grad_(), v0.clone().requires_grad_()
    got = max_position_nce(a1, v1, tau)
    ref = ref_losses(a2, v2, tau)
    for x, y in zip(got, ref):
        torch.testing.assert_close(x, y)
    (got[0] + 2 * got[1]).backward()
    (ref[0] + 2 * ref[1]).backward()
    torch.testing.assert_close(a1.grad, a2.grad)
    torch.testing.assert_close(v1.grad, v2.grad)


def test_one_position_is_plain_info_nce_and_constant_scores_give_ln_b() -> None:
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    v = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    s = a @ v.t() / 0.2
    a2v, v2a = max_position_nce(a, v[:, None], 0.2)
    torch.testing.assert_close(a2v, F.cross_entropy(s, torch.arange(5)))
    torch.testing.assert_close(v2a, F.cross_entropy(s.t(), torch.arange(5)))
    same = F.normalize(torch.ones(5, 3, 8), dim=2)
    for loss in max_position_nce(F.normalize(torch.ones(5, 8), dim=1), same, 0.1):
        assert loss.item() == pytest.approx(math.log(5), rel=1e-6)


def test_the_best_position_decides_and_bad_shapes_are_refused() -> None:
    a = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]]])
    assert max_position_scores(a, v, 0.5).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"\(B, P, D\)"):
        max_position_scores(a, v[0], 0.1)
    with pytest.raises(ValueError, match="tau"):
        max_position_scores(a, v, 0.0)
