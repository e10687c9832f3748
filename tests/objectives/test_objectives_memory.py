"""FeatureQueue (FIFO, normalisation, independence, kNN) and momentum_update."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from glocal.objectives import FeatureQueue, momentum_update


def test_init_range_and_buffers() -> None:
    q = FeatureQueue(64, 12, generator=torch.Generator().manual_seed(0))
    sigma = 1.0 / math.sqrt(12 / 3)
    assert q.queue.shape == (64, 12)
    assert float(q.queue.abs().max()) <= sigma
    assert float(q.queue.abs().max()) > 0.8 * sigma  # actually spans the range
    assert int(q.ptr) == 0
    assert set(q.state_dict()) == {"queue", "ptr"}


def test_fifo_wraparound_and_normalisation() -> None:
    q = FeatureQueue(5, 3)
    init = q.queue.clone()
    k1 = torch.randn(3, 3) * 4
    q.enqueue(k1)
    assert int(q.ptr) == 3
    assert torch.allclose(q.queue[:3], k1 / k1.norm(dim=1, keepdim=True))
    assert torch.equal(q.queue[3:], init[3:])
    k2 = torch.randn(4, 3) * 4
    q.enqueue(k2)
    assert int(q.ptr) == 2  # (3 + 4) % 5
    k2n = k2 / k2.norm(dim=1, keepdim=True)
    # rows 3, 4, 0, 1 <- k2[0..3]; row 2 still holds k1[2]
    assert torch.allclose(q.queue[[3, 4, 0, 1]], k2n)
    assert torch.allclose(q.queue[2], k1[2] / k1[2].norm())
    assert torch.allclose(q.queue.norm(dim=1), torch.ones(5))


def test_enqueue_more_than_size_keeps_last() -> None:
    q = FeatureQueue(4, 2)
    q.enqueue(torch.randn(1, 2))  # ptr = 1
    keys = torch.randn(6, 2)
    q.enqueue(keys)
    keys_n = keys / keys.norm(dim=1, keepdim=True)
    assert int(q.ptr) == (1 + 6) % 4
    # key n went to row (1 + n) % 4; survivors are n = 2..5
    for n in range(2, 6):
        assert torch.allclose(q.queue[(1 + n) % 4], keys_n[n])


def test_enqueue_detaches_and_checks_shape() -> None:
    q = FeatureQueue(4, 2)
    x = torch.randn(2, 2, requires_grad=True)
    q.enqueue(x)
    assert not q.queue.requires_grad
    with pytest.raises(ValueError):
        q.enqueue(torch.randn(2, 3))


def test_two_queues_do_not_alias() -> None:
    a, b = FeatureQueue(6, 4), FeatureQueue(6, 4)
    assert a.queue.data_ptr() != b.queue.data_ptr() and a.ptr.data_ptr() != b.ptr.data_ptr()
    b_before = b.queue.clone()
    a.enqueue(torch.randn(3, 4))
    assert torch.equal(b.queue, b_before) and int(b.ptr) == 0 and int(a.ptr) == 3


def test_knn_returns_true_nearest_neighbours() -> None:
    g = torch.Generator().manual_seed(1)
    q = FeatureQueue(20, 5)
    q.enqueue(torch.randn(20, 5, generator=g))
    x = torch.randn(3, 5, generator=g)
    idx = q.knn(x, 4)
    assert idx.shape == (3, 4)
    for n in range(3):
        xn = x[n] / x[n].norm()
        sims = [float(xn @ (q.queue[m] / q.queue[m].norm())) for m in range(20)]
        expected = sorted(range(20), key=lambda m: -sims[m])[:4]
        assert idx[n].tolist() == expected
    # a stored key is its own nearest neighbour
    assert q.knn(q.queue[7:8] * 3.0, 1).item() == 7


def test_momentum_update_math() -> None:
    torch.manual_seed(2)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(torch.randn_like(p))
    online(torch.randn(8, 3))  # changes BN running stats of online
    before_t = [p.clone() for p in target.parameters()]
    before_o = [p.clone() for p in online.parameters()]
    momentum_update(online, target, 0.9)
    for pt, t0, o0, po in zip(target.parameters(), before_t, before_o, online.parameters()):
        assert torch.allclose(pt, 0.9 * t0 + 0.1 * o0)
        assert torch.equal(po, o0)  # online untouched
    for bt, bo in zip(target.buffers(), online.buffers()):
        assert torch.equal(bt, bo)
    momentum_update(online, target, 0.0)
    for pt, po in zip(target.parameters(), online.parameters()):
        assert torch.equal(pt, po)


def test_momentum_update_rejects_mismatch() -> None:
    with pytest.raises(ValueError):
        momentum_update(nn.Linear(2, 2), nn.Linear(2, 3), 0.9)
    with pytest.raises(ValueError):
        momentum_update(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), 0.9)
    with pytest.raises(ValueError):
        momentum_update(nn.Linear(2, 2), nn.Linear(2, 2), 1.5)
