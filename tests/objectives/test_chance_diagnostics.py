"""Chance levels = each objective on all-equal scores; alignment / uniformity vs slow loops; entropy."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from glocal.objectives import (
    alignment,
    attention_entropy,
    cross_entropy_chance,
    glcm_global_loss,
    glcm_local_loss,
    info_nce,
    info_nce_chance,
    local_global_nce,
    mil_nce,
    mil_nce_chance,
    multi_positive_chance,
    multi_positive_nce,
    nn_augmented_chance,
    nn_augmented_nce,
    seco_intra_chance,
    seco_intra_loss,
    soft_region_contrast,
    uniformity,
)


def same(n: int, d: int = 8, *lead: int) -> torch.Tensor:
    """``(*lead, n, d)`` copies of one unit vector: every dot product equal."""
    v = F.normalize(torch.arange(1.0, d + 1), dim=0)
    return v.expand(*lead, n, d).clone()


@pytest.mark.parametrize("symmetric,pool", list(itertools.product([True, False], ["lse", "mean", "max"])))
def test_mil_nce_chance_is_the_loss_of_constant_scores(symmetric, pool):
    scores = torch.full((5, 5, 3), 0.7)
    got = mil_nce(scores, symmetric=symmetric, pool=pool)
    assert float(got) == pytest.approx(mil_nce_chance(5, 3, symmetric=symmetric, pool=pool), abs=1e-6)


def test_glcm_terms_at_constant_inputs_equal_ln_2b_and_ln_2bt():
    b, d, p, t, r = 4, 6, 9, 5, 3
    # global: audio == every video position -> all scores equal
    loss_g = glcm_global_loss(same(b, d), same(b, d).unsqueeze(-1).expand(b, d, p).clone())
    assert float(loss_g) == pytest.approx(math.log(2 * b), abs=1e-5)
    assert mil_nce_chance(b, p) == pytest.approx(math.log(2 * b))
    loss_l = glcm_local_loss(same(b, d).unsqueeze(-1).expand(b, d, t).clone(),
                             same(b, d).unsqueeze(-1).expand(b, d, t * r).clone())
    assert float(loss_l) == pytest.approx(math.log(2 * b * t), abs=1e-5)
    assert mil_nce_chance(b * t, r) == pytest.approx(math.log(2 * b * t))


@pytest.mark.parametrize("queue,symmetric,in_batch", [(0, False, True), (0, True, True), (7, False, True),
                                                      (7, True, True), (7, False, False)])
def test_info_nce_chance_is_the_loss_of_constant_scores(queue, symmetric, in_batch):
    n = 6
    q = same(n)
    got = info_nce(q, same(n), tau=0.1, queue=same(queue) if queue else None, symmetric=symmetric,
                   in_batch_negatives=in_batch)
    want = info_nce_chance(n, queue, symmetric=symmetric, in_batch_negatives=in_batch)
    assert float(got) == pytest.approx(want, abs=1e-5)
    if symmetric and queue:
        assert want == pytest.approx(0.5 * (math.log(n + queue) + math.log(n)))


@pytest.mark.parametrize("mode", ["sum_numerator", "separate_rows"])
def test_multi_positive_chance(mode):
    got = multi_positive_nce(same(4), same(3, 8, 4), same(10, 8, 1), tau=0.2, mode=mode)
    assert float(got) == pytest.approx(multi_positive_chance(3, 10, mode=mode), abs=1e-5)


@pytest.mark.parametrize("mode", ["pairwise", "joint"])
def test_seco_intra_chance(mode):
    got = seco_intra_loss(same(4), same(4), same(2, 8, 4), tau=0.1, mode=mode)
    assert float(got) == pytest.approx(seco_intra_chance(2, mode=mode), abs=1e-5)


@pytest.mark.parametrize("in_batch,nn_pos,m", [(False, True, 0), (False, True, 3), (True, True, 3),
                                               (True, False, 3)])
def test_nn_augmented_chance(in_batch, nn_pos, m):
    n, k = 5, 12
    nn_idx = torch.stack([torch.randperm(k)[:m] for _ in range(n)]) if m else None
    got = nn_augmented_nce(same(n), same(n), same(k), nn_idx, tau=0.1, nn_positives=nn_pos,
                           in_batch_negatives=in_batch)
    want = nn_augmented_chance(n, k, m, nn_positives=nn_pos, in_batch_negatives=in_batch)
    assert float(got) == pytest.approx(want, abs=1e-5)


def test_cross_entropy_and_ctrlaug_terms_at_constant_scores():
    logits = torch.zeros(7, 5)
    assert float(F.cross_entropy(logits, torch.randint(0, 5, (7,)))) == pytest.approx(cross_entropy_chance(5))
    b, n, g, d = 3, 2, 4, 8
    assert float(local_global_nce(same(n, d, b), same(b, d), tau=0.1)) == pytest.approx(math.log(b), abs=1e-5)
    targets = torch.softmax(torch.randn(b, n, g), dim=2)
    for neg, others in (("cells", (b - 1) * g), ("pooled", b - 1), ("none", 0)):
        got = soft_region_contrast(same(n, d, b), same(g, d, b), targets, tau=0.1, negatives=neg,
                                   pooled=same(b, d))
        assert float(got) == pytest.approx(cross_entropy_chance(g + others), abs=1e-5), neg


# ------------------------------------------------------------------ alignment / uniformity / entropy
def test_alignment_and_uniformity_match_slow_loops():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    xn, yn = F.normalize(x, dim=1), F.normalize(y, dim=1)
    ref_align = sum(float(((xn[i] - yn[i]) ** 2).sum()) for i in range(7)) / 7
    assert float(alignment(x, y)) == pytest.approx(ref_align, rel=1e-5)
    terms = [math.exp(-2 * float(((xn[i] - xn[j]) ** 2).sum())) for i in range(7) for j in range(i + 1, 7)]
    assert float(uniformity(x)) == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-5)


def test_alignment_uniformity_extremes():
    x = same(4)
    assert float(alignment(x, x)) == pytest.approx(0.0, abs=1e-7)
    assert float(uniformity(x)) == pytest.approx(0.0, abs=1e-6)  # every point the same: log e^0
    # two antipodal points: ||x - y||^2 = 4 -> alignment 4, uniformity -2 * 4
    pair = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert float(alignment(pair[:1], pair[1:])) == pytest.approx(4.0)
    assert float(uniformity(pair)) == pytest.approx(-8.0)


def test_attention_entropy_uniform_is_one_and_one_hot_is_zero():
    assert float(attention_entropy(torch.full((3, 16), 1 / 16))) == pytest.approx(1.0, abs=1e-6)
    assert float(attention_entropy(torch.eye(16)[:3])) == pytest.approx(0.0, abs=1e-7)
    # hand case: (1/2, 1/2, 0, 0) -> ln 2 / ln 4 = 0.5
    assert float(attention_entropy(torch.tensor([[0.5, 0.5, 0.0, 0.0]]))) == pytest.approx(0.5, abs=1e-6)
