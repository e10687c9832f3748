"""mil_nce against an explicit-loop reference (double precision)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives import mil_nce


def _lse(xs: list[torch.Tensor]) -> torch.Tensor:
    # log(sum(exp(x))) written out term by term
    total = xs[0].exp()
    for x in xs[1:]:
        total = total + x.exp()
    return total.log()


def ref_mil_nce(s: torch.Tensor, symmetric: bool = True, pool: str = "lse") -> torch.Tensor:
    """Loop over anchors i; denominator = row i (and column i); numerator pools s[i, i, :]."""
    a, _, m = s.shape
    losses = []
    for i in range(a):
        den_terms = [s[i, j, k] for j in range(a) for k in range(m)]
        if symmetric:
            den_terms += [s[j, i, k] for j in range(a) for k in range(m)]
        pos = [s[i, i, k] for k in range(m)]
        if pool == "lse":
            num = _lse(pos)
        elif pool == "mean":
            num = sum(pos) / m
        else:
            num = pos[0]
            for p in pos[1:]:
                num = torch.maximum(num, p)
        losses.append(_lse(den_terms) - num)
    return sum(losses) / a


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("pool", ["lse", "mean", "max"])
def test_matches_reference_value_and_grad(symmetric: bool, pool: str) -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    out = mil_nce(s, symmetric=symmetric, pool=pool)
    ref = ref_mil_nce(s, symmetric, pool)
    assert torch.allclose(out, ref, atol=1e-12, rtol=1e-10)
    (g_out,) = torch.autograd.grad(out, s)
    (g_ref,) = torch.autograd.grad(ref, s)
    assert torch.allclose(g_out, g_ref, atol=1e-12, rtol=1e-10)


def test_math_reference_symmetric_lse() -> None:
    # independent pure-Python (math) evaluation of the symmetric LSE formula
    g = torch.Generator().manual_seed(1)
    s = torch.randn(3, 3, 2, generator=g, dtype=torch.float64)
    v = s.tolist()
    total = 0.0
    for i in range(3):
        den = sum(math.exp(v[i][j][k]) + math.exp(v[j][i][k]) for j in range(3) for k in range(2))
        num = sum(math.exp(v[i][i][k]) for k in range(2))
        total += math.log(den) - math.log(num)
    assert mil_nce(s).item() == pytest.approx(total / 3, rel=1e-12)


def test_m1_asymmetric_equals_info_nce() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 5, generator=g, dtype=torch.float64)
    ce = F.cross_entropy(logits, torch.arange(5))
    for pool in ("lse", "mean", "max"):
        assert torch.allclose(mil_nce(logits[:, :, None], symmetric=False, pool=pool), ce, atol=1e-12)


def test_batch_permutation_invariance() -> None:
    g = torch.Generator().manual_seed(3)
    s = torch.randn(5, 5, 4, generator=g, dtype=torch.float64)
    perm = torch.randperm(5, generator=g)
    s_perm = s[perm][:, perm]
    for symmetric in (True, False):
        assert torch.allclose(mil_nce(s, symmetric=symmetric), mil_nce(s_perm, symmetric=symmetric), atol=1e-12)


def test_large_scores_are_stable() -> None:
    s = torch.full((3, 3, 2), 1e4, dtype=torch.float32)
    assert torch.isfinite(mil_nce(s))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="A, A, M"):
        mil_nce(torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match="A, A, M"):
        mil_nce(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="pool"):
        mil_nce(torch.zeros(3, 3, 2), pool="sum")
