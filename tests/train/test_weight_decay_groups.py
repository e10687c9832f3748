"""optim.decay_norm_and_bias: biases and normalisation weights are left out of weight decay by
default (solo-learn, open_clip), and the decay that remains is exactly Adam's L2 term."""

from __future__ import annotations

import torch
from torch import nn

from glocal.train.config import OptimConfig
from glocal.train.schedule import build_optimizer, decay_groups


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.Linear(3, 2))


def test_default_groups_split_by_dimension():
    net = _net()
    groups = decay_groups(net.parameters(), 0.1, decay_norm_and_bias=False)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(p.ndim >= 2 for p in groups[0]["params"]) and len(groups[0]["params"]) == 2  # conv + linear weights
    assert all(p.ndim == 1 for p in groups[1]["params"]) and len(groups[1]["params"]) == 4  # 2 biases, BN w + b


def test_one_group_when_asked_or_without_decay():
    net = _net()
    assert len(decay_groups(net.parameters(), 0.1, decay_norm_and_bias=True)) == 1
    assert len(decay_groups(net.parameters(), 0.0, decay_norm_and_bias=False)) == 1


def test_frozen_parameters_are_left_out():
    net = _net()
    net[1].weight.requires_grad_(False)
    groups = decay_groups(net.parameters(), 0.1, decay_norm_and_bias=False)
    assert sum(len(g["params"]) for g in groups) == 5


def _step(decay_norm_and_bias: bool) -> nn.Module:
    """One SGD step with zero gradients: only weight decay moves a parameter."""
    net = _net()
    opt = build_optimizer(net.parameters(), OptimConfig(name="sgd", lr=1.0, momentum=0.0, weight_decay=0.5,
                                                        decay_norm_and_bias=decay_norm_and_bias), global_batch=1)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    return net


def test_decay_moves_only_the_decayed_group():
    before, after = _net(), _step(decay_norm_and_bias=False)
    # SGD with weight decay: p <- p - lr * wd * p = 0.5 p for matrices; 1-D parameters unchanged
    torch.testing.assert_close(after[0].weight, 0.5 * before[0].weight)
    torch.testing.assert_close(after[2].weight, 0.5 * before[2].weight)
    for a, b in [(after[0].bias, before[0].bias), (after[1].weight, before[1].weight), (after[2].bias, before[2].bias)]:
        torch.testing.assert_close(a, b)


def test_decay_norm_and_bias_true_decays_everything():
    before, after = _net(), _step(decay_norm_and_bias=True)
    for a, b in zip(after.parameters(), before.parameters()):
        torch.testing.assert_close(a, 0.5 * b)
