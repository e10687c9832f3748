"""AVTS objectives against explicit-loop references: NN-augmented InfoNCE, order pairs, labels."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives import (
    ORDER_SYNC_CLASS,
    FeatureQueue,
    info_nce,
    nn_augmented_nce,
    order_overlap_class,
    order_pair_batch,
    speed_direction_labels,
)
from glocal.objectives import avts as avts_mod


def _unit(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def ref_nn_nce(q, k, queue, nn_idx, tau, nn_positives=True, in_batch=False, k_all=None, offset=0) -> torch.Tensor:
    """Row by row: positives {k_i} ∪ queue[NN_i]; negatives = other keys (in-batch) + queue \\ NN_i."""
    k_all = k if k_all is None else k_all
    total = 0.0
    for i in range(q.shape[0]):
        nn = [int(j) for j in nn_idx[i]] if nn_idx is not None else []
        pos = [(q[i] * k[i]).sum() / tau]
        if nn_positives:
            pos += [(q[i] * queue[j]).sum() / tau for j in nn]
        neg = []
        if in_batch:
            neg += [(q[i] * k_all[j]).sum() / tau for j in range(k_all.shape[0]) if j != offset + i]
        neg += [(q[i] * queue[j]).sum() / tau for j in range(queue.shape[0]) if j not in nn]
        num = sum(t.exp() for t in pos)
        den = num + sum(t.exp() for t in neg)
        total = total - (num / den).log()
    return total / q.shape[0]


@pytest.mark.parametrize("nn_positives", [True, False])
@pytest.mark.parametrize("in_batch", [False, True])
def test_nn_augmented_nce_matches_reference(nn_positives: bool, in_batch: bool) -> None:
    q = _unit(4, 5, seed=0).requires_grad_(True)
    k = _unit(4, 5, seed=1).requires_grad_(True)
    queue = _unit(7, 5, seed=2)
    nn_idx = torch.tensor([[0, 3], [6, 1], [2, 5], [4, 0]])
    out = nn_augmented_nce(q, k, queue, nn_idx, tau=0.2, nn_positives=nn_positives, in_batch_negatives=in_batch)
    ref = ref_nn_nce(q, k, queue, nn_idx, 0.2, nn_positives, in_batch)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    for go, gr in zip(torch.autograd.grad(out, (q, k)), torch.autograd.grad(ref, (q, k))):
        assert torch.allclose(go, gr, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("in_batch", [False, True])
def test_no_neighbours_equals_plain_info_nce(in_batch: bool) -> None:
    q, k, queue = _unit(5, 4, seed=3), _unit(5, 4, seed=4), _unit(9, 4, seed=5)
    plain = info_nce(q, k, tau=0.1, queue=queue, normalize=False, in_batch_negatives=in_batch)
    for nn_idx in (None, torch.zeros(5, 0, dtype=torch.long)):
        for nn_pos in (True, False):
            out = nn_augmented_nce(q, k, queue, nn_idx, tau=0.1, nn_positives=nn_pos, in_batch_negatives=in_batch)
            assert torch.allclose(out, plain, rtol=1e-12, atol=1e-12)


def test_multi_positive_logic_on_a_hand_built_queue() -> None:
    """Queue rows near the key become positives via FeatureQueue.knn; the loss is then the
    hand-computed -log (sum of positive exps / all exps)."""
    fq = FeatureQueue(4, 2)
    fq.queue.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]]))
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[0.8, 0.6]], dtype=torch.float64)
    nn_idx = fq.knn(k.float(), 2)
    assert nn_idx.tolist() == [[3, 0]]  # cos(k, ·) = 0.8, 0.6, -0.8, 0.96: rows 3 and 0, most similar first
    queue = fq.queue.double()
    tau = 0.5
    s = {"k": 0.8 / tau, 0: 1.0 / tau, 1: 0.0, 2: -1.0 / tau, 3: 0.6 / tau}
    num = math.exp(s["k"]) + math.exp(s[0]) + math.exp(s[3])
    expected = -math.log(num / (num + math.exp(s[1]) + math.exp(s[2])))
    out = nn_augmented_nce(q, k, queue, nn_idx, tau=tau)
    assert out.item() == pytest.approx(expected, rel=1e-6)  # queue stored in float32
    # exclusion only: the neighbours vanish from the denominator, the numerator is k alone
    excl = -math.log(math.exp(s["k"]) / (math.exp(s["k"]) + math.exp(s[1]) + math.exp(s[2])))
    assert nn_augmented_nce(q, k, queue, nn_idx, tau=tau, nn_positives=False).item() == pytest.approx(excl, rel=1e-6)
    # more positives that agree with the query lower the loss
    assert out.item() < nn_augmented_nce(q, k, queue, None, tau=tau).item()


def test_gathered_in_batch_negatives_use_the_rank_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 of 2: candidates = both ranks' keys; the positive is at column 1·N + i."""
    q, k, other, queue = _unit(3, 4, seed=6), _unit(3, 4, seed=7), _unit(3, 4, seed=8), _unit(5, 4, seed=9)
    monkeypatch.setattr(avts_mod, "dist_info", lambda: (1, 2))
    monkeypatch.setattr(avts_mod, "all_gather_with_grad", lambda x: torch.cat([other, x]))
    nn_idx = torch.tensor([[1], [4], [0]])
    out = nn_augmented_nce(q, k, queue, nn_idx, tau=0.3, in_batch_negatives=True, gather=True)
    ref = ref_nn_nce(q, k, queue, nn_idx, 0.3, True, True, k_all=torch.cat([other, k]), offset=3)
    assert torch.allclose(out, ref, rtol=1e-10)


def test_nn_augmented_nce_input_checks() -> None:
    q, queue = _unit(2, 3, seed=0), _unit(4, 3, seed=1)
    with pytest.raises(ValueError, match="queue rows"):
        nn_augmented_nce(q, q, queue, torch.tensor([[4], [0]]), tau=0.1)
    with pytest.raises(ValueError, match="nn_idx"):
        nn_augmented_nce(q, q, queue, torch.tensor([0, 1]), tau=0.1)
    with pytest.raises(ValueError, match="queue"):
        nn_augmented_nce(q, q, queue[:, :2], tau=0.1)


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.parametrize("with_overlap", [False, True])
def test_order_pairs_and_cross_entropy_match_a_loop(sync: bool, with_overlap: bool) -> None:
    g = torch.Generator().manual_seed(10)
    n, c1, c2 = 4, 4, 2
    fa, fb = torch.randn(n, c1, generator=g), torch.randn(n, c1, generator=g)
    sa, sb = torch.randn(n, c2, generator=g), torch.randn(n, c2, generator=g)
    a_before_b = torch.tensor([1, 0, 1, 0])
    overlap = torch.tensor([0, 0, 1, 1]) if with_overlap else None
    pairs, labels = order_pair_batch(fa, fb, sa, sb, a_before_b, sync=sync, overlap=overlap)
    assert pairs.shape == ((4 if sync else 2) * n, c1 + c2)
    w = torch.randn((3 if sync else 2) + int(with_overlap), c1 + c2, generator=g)
    ce = F.cross_entropy(pairs @ w.t(), labels)
    overlap_class = (ORDER_SYNC_CLASS + 1) if sync else 2
    assert order_overlap_class(sync) == overlap_class
    rows = []
    for i in range(n):  # (features shown first, second, does the first-shown clip start earlier)
        if with_overlap and overlap[i]:
            rows += [(fa[i], sb[i], overlap_class), (fb[i], sa[i], overlap_class)]
            continue
        rows.append((fa[i], sb[i], 0 if a_before_b[i] else 1))
        rows.append((fb[i], sa[i], 1 if a_before_b[i] else 0))
    if sync:
        rows += [(fa[i], sa[i], ORDER_SYNC_CLASS) for i in range(n)]
        rows += [(fb[i], sb[i], ORDER_SYNC_CLASS) for i in range(n)]
    total = 0.0
    for first, second, label in rows:
        logits = [float(torch.cat([first, second]) @ w[c]) for c in range(w.shape[0])]
        total += -(logits[label] - math.log(sum(math.exp(x) for x in logits)))
    assert ce.item() == pytest.approx(total / len(rows), rel=1e-5)
    # both presentations of every pair: the two order classes are balanced
    assert (labels == 0).sum() == (labels == 1).sum() == (n // 2 if with_overlap else n)


def test_speed_direction_labels_and_cross_entropy() -> None:
    speed, back = torch.tensor([0, 3, 2, 1]), torch.tensor([1, 0, 1, 0])
    joint = speed_direction_labels(speed, back)
    assert joint.tolist() == [1, 6, 5, 2]
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(4, 8, generator=g, dtype=torch.float64)
    ref = sum(-math.log(math.exp(float(logits[i, joint[i]])) / sum(math.exp(float(x)) for x in logits[i]))
              for i in range(4)) / 4
    assert F.cross_entropy(logits, joint).item() == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError):
        speed_direction_labels(speed, back[:2])
