"""info_nce, multi_positive_nce and soft_target_nce against explicit-loop references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives import info_nce, multi_positive_nce, soft_target_contrast, soft_target_nce


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x * y).sum()


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum())


def _log_ratio(num_terms: list[torch.Tensor], den_terms: list[torch.Tensor]) -> torch.Tensor:
    """-log( sum exp(num) / sum exp(den) ), written out."""
    num = sum(t.exp() for t in num_terms)
    den = sum(t.exp() for t in den_terms)
    return -(num / den).log()


def ref_info_nce(q, k, tau, queue=None, symmetric=False, normalize=True, in_batch=True):
    n = q.shape[0]
    if normalize:
        q = torch.stack([_unit(x) for x in q])
        k = torch.stack([_unit(x) for x in k])
    total = 0.0
    for i in range(n):
        pos = _dot(q[i], k[i]) / tau
        den = [_dot(q[i], k[j]) / tau for j in range(n)] if in_batch else [pos]
        if queue is not None:
            den += [_dot(q[i], queue[m]) / tau for m in range(queue.shape[0])]
        total = total + _log_ratio([pos], den)
    loss = total / n
    if symmetric:
        total = 0.0
        for i in range(n):
            den = [_dot(k[i], q[j]) / tau for j in range(n)]
            total = total + _log_ratio([_dot(k[i], q[i]) / tau], den)
        loss = 0.5 * (loss + total / n)
    return loss


@pytest.mark.parametrize("use_queue", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_info_nce_matches_reference(use_queue: bool, symmetric: bool, normalize: bool) -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    queue = torch.randn(5, 3, generator=g, dtype=torch.float64) if use_queue else None
    out = info_nce(q, k, tau=0.2, queue=queue, symmetric=symmetric, normalize=normalize)
    ref = ref_info_nce(q, k, 0.2, queue, symmetric, normalize)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    go = torch.autograd.grad(out, (q, k))
    gr = torch.autograd.grad(ref, (q, k))
    for x, y in zip(go, gr):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_info_nce_queue_only() -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(4, 3, generator=g, dtype=torch.float64)
    k = torch.randn(4, 3, generator=g, dtype=torch.float64)
    queue = torch.randn(6, 3, generator=g, dtype=torch.float64)
    out = info_nce(q, k, tau=0.1, queue=queue, in_batch_negatives=False)
    ref = ref_info_nce(q, k, 0.1, queue, in_batch=False)
    assert torch.allclose(out, ref, rtol=1e-10)
    with pytest.raises(ValueError):
        info_nce(q, k, tau=0.1, in_batch_negatives=False)
    with pytest.raises(ValueError):
        info_nce(q, k, tau=0.1, queue=queue, in_batch_negatives=False, symmetric=True)


def test_info_nce_batch_permutation_invariance() -> None:
    g = torch.Generator().manual_seed(2)
    q = torch.randn(6, 4, generator=g, dtype=torch.float64)
    k = torch.randn(6, 4, generator=g, dtype=torch.float64)
    perm = torch.randperm(6, generator=g)
    a = info_nce(q, k, tau=0.1, symmetric=True)
    b = info_nce(q[perm], k[perm], tau=0.1, symmetric=True)
    assert torch.allclose(a, b, atol=1e-12)


def ref_multi_positive(q, pos, neg, tau, mode, mask=None):
    n, p_count, _ = pos.shape
    total = 0.0
    for i in range(n):
        negs_i = neg[0] if neg.shape[0] == 1 else neg[i]
        n_terms = [
            _dot(q[i], negs_i[m]) / tau
            for m in range(negs_i.shape[0])
            if mask is None or bool(mask[0 if mask.shape[0] == 1 else i, m])
        ]
        p_terms = [_dot(q[i], pos[i, p]) / tau for p in range(p_count)]
        if mode == "sum_numerator":
            total = total + _log_ratio(p_terms, p_terms + n_terms)
        else:
            total = total + sum(_log_ratio([pt], [pt] + n_terms) for pt in p_terms) / p_count
    return total / n


@pytest.mark.parametrize("mode", ["sum_numerator", "separate_rows"])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_multi_positive_matches_reference(mode: str, shared: bool, masked: bool) -> None:
    g = torch.Generator().manual_seed(3)
    n, p, k, d = 3, 2, 5, 4
    q = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    pos = torch.randn(n, p, d, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(1 if shared else n, k, d, generator=g, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:
        mask = torch.rand(n, k, generator=g) > 0.4
        mask[:, 0] = True  # keep at least one negative per row
    out = multi_positive_nce(q, pos, neg, tau=0.3, mode=mode, negative_mask=mask)
    ref = ref_multi_positive(q, pos, neg, 0.3, mode, mask)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    go = torch.autograd.grad(out, (q, pos, neg))
    gr = torch.autograd.grad(ref, (q, pos, neg))
    for x, y in zip(go, gr):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_multi_positive_single_positive_equals_moco_style_info_nce() -> None:
    g = torch.Generator().manual_seed(4)
    q = F.normalize(torch.randn(4, 3, generator=g, dtype=torch.float64), dim=1)
    k = F.normalize(torch.randn(4, 3, generator=g, dtype=torch.float64), dim=1)
    queue = torch.randn(7, 3, generator=g, dtype=torch.float64)
    a = multi_positive_nce(q, k[:, None], queue[None], tau=0.1, mode="sum_numerator")
    b = multi_positive_nce(q, k[:, None], queue[None], tau=0.1, mode="separate_rows")
    c = info_nce(q, k, tau=0.1, queue=queue, in_batch_negatives=False, normalize=False)
    assert torch.allclose(a, c, atol=1e-12) and torch.allclose(b, c, atol=1e-12)


def test_multi_positive_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        multi_positive_nce(torch.randn(2, 3), torch.randn(2, 1, 3), torch.randn(1, 4, 3), tau=0.1, mode="x")


def test_soft_target_matches_reference() -> None:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(3, 5, generator=g, dtype=torch.float64)
    w[:, 3:] = 0.0  # pure negatives
    w = w / w.sum(dim=1, keepdim=True)
    out = soft_target_nce(logits, w)
    total = 0.0
    for n in range(3):
        z = sum(logits[n, c].exp() for c in range(5))
        total = total - sum(w[n, c] * (logits[n, c].exp() / z).log() for c in range(5))
    ref = total / 3
    assert torch.allclose(out, ref, rtol=1e-10)
    (go,) = torch.autograd.grad(out, logits)
    (gr,) = torch.autograd.grad(ref, logits)
    assert torch.allclose(go, gr, rtol=1e-9, atol=1e-12)
    assert soft_target_contrast is soft_target_nce


def test_soft_target_one_hot_equals_cross_entropy() -> None:
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(4, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 5, 2, 2])
    out = soft_target_nce(logits, F.one_hot(labels, 6).double())
    assert out.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-12)
    # masked (-inf) candidate with zero target stays finite
    logits2 = logits.clone()
    logits2[:, 1] = -math.inf
    assert torch.isfinite(soft_target_nce(logits2, F.one_hot(torch.tensor([0, 5, 2, 2]), 6).double()))


def test_soft_target_rejects_bad_targets() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        soft_target_nce(torch.zeros(2, 3), torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        soft_target_nce(torch.zeros(1, 2), torch.tensor([[1.5, -0.5]]))
    with pytest.raises(ValueError):
        soft_target_nce(torch.zeros(2, 3), torch.zeros(2, 4))
