"""VCLR / SeCo loss pieces against slow transcriptions of the release's logits construction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives import normalize_order_features, permute_tuples, seco_inter_loss, seco_intra_loss


def _unit(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _ce_row(logits: list[float], label: int = 0) -> float:
    m = max(logits)
    return -(logits[label] - m - math.log(sum(math.exp(x - m) for x in logits)))


def test_inter_matches_release_rows() -> None:
    b, p, d, k, tau = 3, 3, 8, 5, 0.1
    q, keys, queue = _unit(b, d, seed=0), _unit(b, p, d, seed=1), _unit(k, d, seed=2)
    # release: P·B rows [q·k+, q·Queue] / τ, label 0, mean cross-entropy
    rows = [[float(q[i] @ keys[i, j]) / tau] + [float(q[i] @ n) / tau for n in queue] for j in range(p) for i in range(b)]
    ref = sum(_ce_row(r) for r in rows) / len(rows)
    assert seco_inter_loss(q, keys, queue, tau=tau).item() == pytest.approx(ref, rel=1e-5)


def test_intra_pairwise_and_joint_match_release_rows() -> None:
    b, j, d, tau = 4, 2, 8, 0.1
    q, pos, negs = _unit(b, d, seed=3), _unit(b, d, seed=4), _unit(b, j, d, seed=5)
    # release: J·B rows of 2-way logits [q·p+, q·p_j] / τ, label 0
    pair_rows = [[float(q[i] @ pos[i]) / tau, float(q[i] @ negs[i, n]) / tau] for n in range(j) for i in range(b)]
    ref_pair = sum(_ce_row(r) for r in pair_rows) / len(pair_rows)
    joint_rows = [[float(q[i] @ pos[i]) / tau] + [float(q[i] @ negs[i, n]) / tau for n in range(j)] for i in range(b)]
    ref_joint = sum(_ce_row(r) for r in joint_rows) / len(joint_rows)
    assert seco_intra_loss(q, pos, negs, tau=tau, mode="pairwise").item() == pytest.approx(ref_pair, rel=1e-5)
    assert seco_intra_loss(q, pos, negs, tau=tau, mode="joint").item() == pytest.approx(ref_joint, rel=1e-5)
    with pytest.raises(ValueError):
        seco_intra_loss(q, pos, negs, tau=tau, mode="other")  # type: ignore[arg-type]


def test_intra_gradient_matches_autograd_of_reference() -> None:
    q = _unit(2, 4, seed=6).requires_grad_(True)
    pos, negs = _unit(2, 4, seed=7), _unit(2, 2, 4, seed=8)
    seco_intra_loss(q, pos, negs, tau=0.5).backward()
    q2 = q.detach().clone().requires_grad_(True)
    logits = torch.stack([torch.stack([(q2 * pos).sum(1), (q2 * negs[:, n]).sum(1)], dim=1) for n in range(2)]) / 0.5
    F.cross_entropy(logits.reshape(-1, 2), torch.zeros(4, dtype=torch.long)).backward()
    assert torch.allclose(q.grad, q2.grad, atol=1e-6)


def test_order_norm_axes() -> None:
    o = torch.randn(2, 3, 4)
    frames = normalize_order_features(o, "frames")
    feats = normalize_order_features(o, "features")
    assert torch.allclose(frames.norm(dim=1), torch.ones(2, 4), atol=1e-6)  # release: across the K items
    assert torch.allclose(feats.norm(dim=2), torch.ones(2, 3), atol=1e-6)
    with pytest.raises(ValueError):
        normalize_order_features(o, "time")  # type: ignore[arg-type]


def test_permute_tuples() -> None:
    x = torch.arange(6).reshape(2, 3)
    perm = torch.tensor([[2, 0, 1], [0, 1, 2]])
    assert permute_tuples(x, perm).tolist() == [[2, 0, 1], [3, 4, 5]]
