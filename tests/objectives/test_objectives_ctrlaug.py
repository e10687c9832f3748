"""CtrlAug losses against slow loop references, sanity reductions, gradient reversal, and 2-rank
equivalence of the gathered terms (two threads standing in for two ranks)."""

from __future__ import annotations

import itertools
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

import glocal.objectives.ctrlaug as ctrlaug_mod
from glocal.models.roi import roi_align_3d
from glocal.objectives import (
    adversarial_cue_loss,
    adversarial_mi_loss,
    dv_mi_lower_bound,
    grid_cell_boxes,
    info_nce,
    local_global_nce,
    low_level_cues,
    order_permutations,
    permutation_labels,
    region_soft_targets,
    soft_region_contrast,
    temporal_bin_labels,
)


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _boxes(b: int, n: int, seed: int) -> torch.Tensor:
    """Random valid ``(B, N, 6)`` boxes ``(t0, t1, x0, y0, x1, y1)`` inside [0, 1]^3."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(b, n, 3, generator=g) * 0.6
    hi = lo + 0.05 + torch.rand(b, n, 3, generator=g) * 0.35
    return torch.stack([lo[..., 0], hi[..., 0], lo[..., 1], lo[..., 2], hi[..., 1], hi[..., 2]], dim=-1)


def _overlap(a: list[float], c: list[float]) -> float:
    """Intersection volume of two ``(t0, t1, x0, y0, x1, y1)`` boxes, one axis at a time."""
    vol = 1.0
    for lo, hi in ((0, 1), (2, 4), (3, 5)):
        vol *= max(0.0, min(a[hi], c[hi]) - max(a[lo], c[lo]))
    return vol


def _volume(a: list[float]) -> float:
    return (a[1] - a[0]) * (a[4] - a[2]) * (a[5] - a[3])


def _log_softmax_row(logits: list[float]) -> list[float]:
    m = max(x for x in logits if x != -math.inf)
    lse = m + math.log(sum(math.exp(x - m) for x in logits if x != -math.inf))
    return [x - lse for x in logits]


# ------------------------------------------------------------------------------- geometry
def test_grid_cells_tile_the_volume_in_flatten_order() -> None:
    t, h, w = 2, 3, 4
    cells = grid_cell_boxes(t, h, w)
    assert cells.shape == (t * h * w, 6)
    assert float(sum(_volume(c) for c in cells.tolist())) == pytest.approx(1.0)
    for idx, (i, j, k) in enumerate(itertools.product(range(t), range(h), range(w))):  # flatten(2) order
        assert cells[idx].tolist() == pytest.approx([i / t, (i + 1) / t, k / w, j / h, (k + 1) / w, (j + 1) / h])


def test_roi_align_at_cell_centres_reads_the_cells_in_flatten_order() -> None:
    fmap = _randn(2, 5, 2, 3, 4, seed=0).float()
    cells = grid_cell_boxes(2, 3, 4).expand(2, -1, -1)
    # one sample per box = its centre = the cell centre: exactly the cell's value
    out = roi_align_3d(fmap, cells, samples=1)
    assert torch.allclose(out, fmap.flatten(2).transpose(1, 2), atol=1e-6)


@pytest.mark.parametrize("mode", ["overlap", "iou"])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_region_soft_targets_match_loop(mode: str, temperature: float) -> None:
    boxes, cells = _boxes(2, 3, seed=1), grid_cell_boxes(2, 3, 3)
    got = region_soft_targets(boxes, cells, mode=mode, temperature=temperature)
    for b in range(2):
        for n in range(3):
            box = boxes[b, n].tolist()
            r = []
            for c in cells.tolist():
                inter = _overlap(box, c)
                r.append(inter if mode == "overlap" else inter / (_volume(box) + _volume(c) - inter))
            top = max(r)
            r = [(x / top) ** (1 / temperature) for x in r]
            ref = [x / sum(r) for x in r]
            assert got[b, n].tolist() == pytest.approx(ref, abs=1e-6)


def test_soft_targets_sum_to_one_vanish_off_box_and_are_box_fractions() -> None:
    boxes, cells = _boxes(3, 4, seed=2), grid_cell_boxes(4, 3, 3)
    w = region_soft_targets(boxes, cells)
    assert torch.allclose(w.sum(dim=2), torch.ones(3, 4), atol=1e-6)
    for b, n, c in itertools.product(range(3), range(4), range(cells.shape[0])):
        inter = _overlap(boxes[b, n].tolist(), cells[c].tolist())
        if inter == 0:
            assert w[b, n, c] == 0  # spec 7.10: vanish on non-overlapping cells
        # cells tile the volume: w_nc = vol(b ∩ β_c) / vol(b)
        assert float(w[b, n, c]) == pytest.approx(inter / _volume(boxes[b, n].tolist()), abs=1e-6)


def test_low_target_temperature_is_one_hot_on_the_largest_overlap() -> None:
    boxes, cells = _boxes(2, 2, seed=3), grid_cell_boxes(2, 2, 2)
    w = region_soft_targets(boxes, cells, temperature=1e-3)
    raw = region_soft_targets(boxes, cells)
    assert torch.equal(w.argmax(dim=2), raw.argmax(dim=2))
    assert torch.allclose(w.amax(dim=2), torch.ones(2, 2), atol=1e-4)
    with pytest.raises(ValueError):
        region_soft_targets(boxes, cells, mode="dice")
    with pytest.raises(ValueError):
        region_soft_targets(boxes, cells, temperature=0.0)


# -------------------------------------------------------------------------- contrastive terms
def _region_reference(local: torch.Tensor, cells: torch.Tensor, targets: torch.Tensor, pooled: torch.Tensor,
                      tau: float, negatives: str) -> float:
    """Loop over clips: own cells with the soft targets, other videos' candidates as negatives."""
    local, cells, pooled = F.normalize(local, dim=-1), F.normalize(cells, dim=-1), F.normalize(pooled, dim=-1)
    b_sz, n_sz, g_sz = targets.shape
    total = 0.0
    for b in range(b_sz):
        for n in range(n_sz):
            q = local[b, n]
            logits = [float(q @ cells[b, c]) / tau for c in range(g_sz)]
            for o in range(b_sz):
                if o == b or negatives == "none":
                    continue
                if negatives == "cells":
                    logits += [float(q @ cells[o, c]) / tau for c in range(g_sz)]
                else:
                    logits.append(float(q @ pooled[o]) / tau)
            logp = _log_softmax_row(logits)
            total -= sum(float(targets[b, n, c]) * logp[c] for c in range(g_sz))
    return total / (b_sz * n_sz)


@pytest.mark.parametrize("negatives", ["cells", "pooled", "none"])
def test_soft_region_contrast_matches_loop(negatives: str) -> None:
    b, n, g, d, tau = 3, 2, 4, 5, 0.2
    local, cells, pooled = _randn(b, n, d, seed=4), _randn(b, g, d, seed=5), _randn(b, d, seed=6)
    targets = region_soft_targets(_boxes(b, n, seed=7), grid_cell_boxes(1, 2, 2)).double()
    got = soft_region_contrast(local, cells, targets, tau=tau, negatives=negatives, pooled=pooled)
    assert got.item() == pytest.approx(_region_reference(local, cells, targets, pooled, tau, negatives), rel=1e-9)


def test_soft_region_contrast_gradient_matches_autograd_of_dense_reference() -> None:
    b, n, g, d, tau = 2, 3, 4, 6, 0.1
    local, cells = _randn(b, n, d, seed=8).requires_grad_(True), _randn(b, g, d, seed=9).requires_grad_(True)
    targets = region_soft_targets(_boxes(b, n, seed=10), grid_cell_boxes(1, 2, 2)).double()
    soft_region_contrast(local, cells, targets, tau=tau, negatives="cells").backward()
    # dense form: every clip against all B·G cells, targets only on its own video's block
    l2 = local.detach().clone().requires_grad_(True)
    c2 = cells.detach().clone().requires_grad_(True)
    logits = F.normalize(l2, dim=-1).reshape(b * n, d) @ F.normalize(c2, dim=-1).reshape(b * g, d).t() / tau
    dense = torch.zeros(b, n, b, g, dtype=torch.float64)
    for i in range(b):
        dense[i, :, i] = targets[i]
    (-(dense.reshape(b * n, b * g) * logits.log_softmax(dim=1)).sum(dim=1).mean()).backward()
    assert torch.allclose(local.grad, l2.grad, atol=1e-10) and torch.allclose(cells.grad, c2.grad, atol=1e-10)


def test_identity_overlap_reduces_to_info_nce() -> None:
    b, d, tau = 4, 8, 0.1
    q, k = _randn(b, d, seed=11), _randn(b, d, seed=12)
    ones = torch.ones(b, 1, 1, dtype=torch.float64)
    ref = info_nce(q, k, tau=tau)
    # one cell per video covering the whole volume (target 1), other videos' cells as negatives
    assert soft_region_contrast(q[:, None], k[:, None], ones, tau=tau, negatives="cells").item() == pytest.approx(
        ref.item(), rel=1e-12)
    assert soft_region_contrast(q[:, None], k[:, None], ones, tau=tau, negatives="pooled", pooled=k).item() == \
        pytest.approx(ref.item(), rel=1e-12)
    # the overlap targets of a box equal to the single cell are exactly that 1
    whole = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 1.0, 1.0]]]).expand(b, 1, 6)
    assert torch.equal(region_soft_targets(whole, grid_cell_boxes(1, 1, 1)), torch.ones(b, 1, 1))
    # one-hot targets over the own cells only = plain cross-entropy
    cells, local = _randn(b, 3, d, seed=13), _randn(b, 2, d, seed=14)
    labels = torch.tensor([[0, 2], [1, 1], [2, 0], [0, 0]])
    onehot = F.one_hot(labels, 3).double()
    logits = torch.einsum("bnd,bgd->bng", F.normalize(local, dim=-1), F.normalize(cells, dim=-1)) / tau
    ce = F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1))
    assert soft_region_contrast(local, cells, onehot, tau=tau, negatives="none").item() == pytest.approx(ce.item())


def test_local_global_nce_matches_loop_and_reduces_to_info_nce() -> None:
    b, n, d, tau = 3, 4, 5, 0.2
    local, glob = _randn(b, n, d, seed=15), _randn(b, d, seed=16)
    ln, gn = F.normalize(local, dim=-1), F.normalize(glob, dim=-1)
    ref = 0.0
    for i in range(b):
        for j in range(n):
            logits = [float(ln[i, j] @ gn[o]) / tau for o in range(b)]
            ref -= _log_softmax_row(logits)[i]
    assert local_global_nce(local, glob, tau=tau).item() == pytest.approx(ref / (b * n), rel=1e-9)
    assert local_global_nce(local[:, :1], glob, tau=tau).item() == pytest.approx(
        info_nce(local[:, 0], glob, tau=tau).item(), rel=1e-12)


# ----------------------------------------------------------------- 2 ranks x B/2 == 1 x B
def _two_ranks(fn: Callable[[dict[str, torch.Tensor], bool], torch.Tensor], inputs: dict[str, torch.Tensor],
               monkeypatch: pytest.MonkeyPatch) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Run ``fn`` on rank ``r``'s half of every input in two threads whose gather concatenates
    both threads' tensors (autograd intact), like ``all_gather_with_grad``; then backpropagate the
    sum of the two ranks' losses (what the gather's backward delivers to each rank's rows)."""
    leaves = {k: v.clone().requires_grad_(k != "w") for k, v in inputs.items()}  # w: targets
    state = threading.local()
    slots: dict[tuple[int, int], torch.Tensor] = {}
    barrier = threading.Barrier(2, timeout=30)

    def gather(x: torch.Tensor) -> torch.Tensor:
        call = state.calls
        state.calls += 1
        slots[(call, state.rank)] = x
        barrier.wait()
        return torch.cat([slots[(call, 0)], slots[(call, 1)]])

    monkeypatch.setattr(ctrlaug_mod, "all_gather_with_grad", gather)
    monkeypatch.setattr(ctrlaug_mod, "dist_info", lambda: (state.rank, 2))

    def run(rank: int) -> torch.Tensor:
        state.rank, state.calls = rank, 0
        half = {k: v[rank * v.shape[0] // 2 : (rank + 1) * v.shape[0] // 2] for k, v in leaves.items()}
        return fn(half, True)

    with ThreadPoolExecutor(max_workers=2) as pool:  # result() re-raises a rank's exception here
        losses = [f.result() for f in [pool.submit(run, r) for r in range(2)]]
    (losses[0] + losses[1]).backward()
    return losses, {k: v.grad for k, v in leaves.items()}


GATHERED: dict[str, Callable[[dict[str, torch.Tensor], bool], torch.Tensor]] = {
    "region_cells": lambda x, g: soft_region_contrast(x["l"], x["c"], x["w"], tau=0.2, negatives="cells", gather=g),
    "region_pooled": lambda x, g: soft_region_contrast(x["l"], x["c"], x["w"], tau=0.2, negatives="pooled",
                                                       pooled=x["p"], gather=g),
    "local_global": lambda x, g: local_global_nce(x["l"], x["p"], tau=0.2, gather=g),
}


@pytest.mark.parametrize("name", list(GATHERED))
def test_two_ranks_half_batch_equal_one_rank_full_batch(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    b, n, g, d = 4, 3, 4, 6
    inputs = {"l": _randn(b, n, d, seed=17), "c": _randn(b, g, d, seed=18), "p": _randn(b, d, seed=19),
              "w": region_soft_targets(_boxes(b, n, seed=20), grid_cell_boxes(1, 2, 2)).double()}
    full = {k: v.clone().requires_grad_(k != "w") for k, v in inputs.items()}
    ref = GATHERED[name](full, False)
    ref.backward()
    losses, grads = _two_ranks(GATHERED[name], inputs, monkeypatch)
    # DDP optimises the mean over ranks of each rank's local-anchor loss and averages gradients
    assert (losses[0] + losses[1]).item() / 2 == pytest.approx(ref.item(), rel=1e-10)
    for k in ("l", "c", "p"):
        if full[k].grad is not None:
            assert torch.allclose(grads[k] / 2, full[k].grad, atol=1e-10), k


# ------------------------------------------------------------------------- adversarial terms
def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@pytest.mark.parametrize("bound", ["jsd", "dv"])
@pytest.mark.parametrize("shift", [1, 3])
def test_adversarial_mi_loss_matches_loop(bound: str, shift: int) -> None:
    m, e = 6, 4
    el, eg = _randn(m, e, seed=21), _randn(m, e, seed=22)
    critic = torch.nn.Sequential(torch.nn.Linear(2 * e, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    got = adversarial_mi_loss(critic, el, eg, lambd=0.3, bound=bound, shift=shift)
    with torch.no_grad():
        pos = [float(critic(torch.cat([el[i], eg[i]]))) for i in range(m)]
        neg = [float(critic(torch.cat([el[i], eg[(i - shift) % m]]))) for i in range(m)]
    if bound == "jsd":
        mi = sum(-_softplus(-t) for t in pos) / m - sum(_softplus(t) for t in neg) / m
    else:
        mi = sum(pos) / m - math.log(sum(math.exp(t) for t in neg) / m)
    assert got.item() == pytest.approx(-mi, rel=1e-9)
    with pytest.raises(ValueError):
        adversarial_mi_loss(critic, el, eg, lambd=1.0, shift=m)  # negatives = positives
    with pytest.raises(ValueError):
        adversarial_mi_loss(critic, el, eg, lambd=1.0, bound="nwj")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dv_bound_is_zero_for_a_constant_critic(dtype: torch.dtype) -> None:
    """``mean(T) - (LSE(T) - log n)`` is 0 for a constant ``T``, up to rounding: LSE = ``2 + log 7``
    is rounded to the dtype before ``log 7`` is taken off again, so the result is off by up to an
    ulp or two of that intermediate (~4): 1.2e-7 in float32 on torch 2.x (an exact 0 in float32
    was never guaranteed), ~1e-15 in float64."""
    t, n = 2.0, 7
    got = dv_mi_lower_bound(torch.full((5,), t, dtype=dtype), torch.full((n,), t, dtype=dtype)).item()
    tol = 4 * torch.finfo(dtype).eps * (abs(t) + math.log(n))
    assert got == pytest.approx(0.0, abs=tol)


def test_gradient_reversal_flips_the_sign_reaching_the_encoder() -> None:
    torch.manual_seed(0)
    encoder = torch.nn.Linear(3, 4).double()
    critic = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1)).double()
    x_l, x_g = _randn(5, 3, seed=23), _randn(5, 3, seed=24)

    def grads(lambd: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        encoder.zero_grad()
        critic.zero_grad()
        adversarial_mi_loss(critic, encoder(x_l), encoder(x_g), lambd=lambd).backward()
        return [p.grad.clone() for p in encoder.parameters()], [p.grad.clone() for p in critic.parameters()]

    enc_rev, crit_rev = grads(0.5)
    enc_plain, crit_plain = grads(-1.0)  # grad_reverse(x, -1) is the identity: no reversal
    for a, b in zip(enc_rev, enc_plain):  # the encoder ascends what the critic descends, scaled by λ
        assert torch.allclose(a, -0.5 * b, atol=1e-12) and b.abs().sum() > 0
    for a, b in zip(crit_rev, crit_plain):  # the critic itself is unaffected
        assert torch.allclose(a, b, atol=1e-12)


def test_low_level_cues_and_cue_loss() -> None:
    video = _randn(2, 3, 4, 5, 5, seed=25)
    cues = low_level_cues(video)
    for b in range(2):
        vals = video[b].reshape(3, -1)
        mean = [float(vals[c].mean()) for c in range(3)]
        std = [math.sqrt(float(((vals[c] - mean[c]) ** 2).mean())) for c in range(3)]
        motion = sum(float((video[b, :, t + 1] - video[b, :, t]).abs().sum()) for t in range(3)) / (3 * 3 * 25)
        assert cues[b].tolist() == pytest.approx(mean + std + [motion], rel=1e-9)
    assert low_level_cues(video[:, :, :1])[:, 6].abs().max() == 0
    feats = _randn(2, 4, seed=26).requires_grad_(True)
    predictor = torch.nn.Linear(4, 7).double()
    loss = adversarial_cue_loss(predictor, feats, cues, lambd=2.0)
    with torch.no_grad():
        assert loss.item() == pytest.approx(float(((predictor(feats) - cues) ** 2).mean()), rel=1e-12)
    loss.backward()
    f2 = feats.detach().clone().requires_grad_(True)
    F.mse_loss(predictor(f2), cues).backward()
    assert torch.allclose(feats.grad, -2.0 * f2.grad, atol=1e-12)


# ------------------------------------------------------------------------------ order labels
@pytest.mark.parametrize("n", [2, 3, 4])
def test_permutation_labels_index_lexicographic_permutations(n: int) -> None:
    perms = order_permutations(n, exclude_identity_and_reverse=False)
    labels = permutation_labels(torch.tensor(perms))
    assert labels.tolist() == list(range(math.factorial(n)))
    with pytest.raises(ValueError):
        permutation_labels(torch.tensor([[0, 0, 1]]))


def test_temporal_bin_labels() -> None:
    boxes = torch.tensor([[[0.0, 0.2, 0, 0, 1, 1], [0.3, 0.5, 0, 0, 1, 1], [0.8, 1.0, 0, 0, 1, 1],
                           [0.375, 0.625, 0, 0, 1, 1]]])
    assert temporal_bin_labels(boxes, 4).tolist() == [[0, 1, 3, 2]]
    assert temporal_bin_labels(boxes, 2).tolist() == [[0, 0, 1, 1]]


def test_input_checks_raise_value_errors_without_a_host_read(monkeypatch) -> None:
    """The checks run on the device (``check_all``): no Python read of a tensor value, same errors."""
    from glocal.objectives import soft_target_nce
    from glocal.objectives.avts import nn_augmented_nce
    from glocal.objectives.ctrlaug import permutation_labels

    for name in ("__bool__", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("host read"))
    logits = torch.zeros(2, 3)
    soft_target_nce(logits, torch.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="non-negative"):
        soft_target_nce(logits, torch.tensor([[1.5, -0.5, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="sum to 1"):
        soft_target_nce(logits, torch.tensor([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="permutation"):
        permutation_labels(torch.tensor([[0, 0, 1]]))
    q = F.normalize(torch.randn(2, 4), dim=1)
    with pytest.raises(ValueError, match="index the 3 queue rows"):
        nn_augmented_nce(q, q, torch.randn(3, 4), torch.tensor([[0], [3]]), tau=0.1)
