"""VCLR sampler: segment draws, SeCo anchor, clips inside the video, admissible uniform order labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from glocal.data.samplers import SegmentSampler
from glocal.data.samplers_vclr import VCLRSampler, order_label
from glocal.objectives import order_permutations


def _sampler(**kw) -> VCLRSampler:
    return VCLRSampler(SegmentSampler(num_segments=3, per_segment=2, prefixes=("k", "q"), seco_anchor=True), **kw)


def test_order_labels_admissible_and_uniform() -> None:
    s = _sampler()
    ident, rev = (0, 1, 2), (2, 1, 0)
    labels, perms = Counter(), Counter()
    n = 2000
    for i in range(n):
        t = s.plan(np.random.default_rng(i), 0.0, 4.0, 16.0).targets
        q, k = tuple(t["q_perm"].tolist()), tuple(t["k_perm"].tolist())
        for p in (q, k):
            assert p != rev
            if p != ident:
                perms[p] += 1
        assert t["order"] == order_label(q != ident, k != ident)
        labels[t["order"]] += 1
    assert set(perms) == set(order_permutations(3))
    for c in range(4):
        assert abs(labels[c] / n - 0.25) < 0.04, labels
    for p in perms:
        assert abs(perms[p] / sum(perms.values()) - 0.25) < 0.05, perms


def test_segments_anchor_and_distinct_draws() -> None:
    s = _sampler()
    for i in range(50):
        plan = s.plan(np.random.default_rng(i), 0.0, 3.0, 10.0)  # 30 frames, segments of 10
        t = plan.targets
        for seg in range(3):
            lo, hi = seg * 10, (seg + 1) * 10
            assert lo <= t["k_index"][seg] < hi and lo <= t["q_index"][seg] < hi
            assert t["k_index"][seg] != t["q_index"][seg]
        assert t["anchor"] in (0, 2)
        assert plan.view("x1").times[0] == pytest.approx(plan.view(f"q{t['anchor']}").times[0])
        assert all(len(v.times) == 1 for v in plan.views)


def test_clip_items_stay_inside_the_video() -> None:
    s = _sampler(clip_frames=4, clip_stride=2)
    for i in range(50):
        plan = s.plan(np.random.default_rng(i), 0.0, 3.0, 10.0)
        for v in plan.views:
            assert len(v.times) == 4 and np.allclose(np.diff(v.times), 0.2)
            assert v.times[-1] < 3.0


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        VCLRSampler(SegmentSampler(num_segments=3))  # no SeCo anchor
    with pytest.raises(ValueError):
        _sampler(shuffle_p=1.5)
