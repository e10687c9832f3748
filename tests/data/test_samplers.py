"""View samplers: the invariants of methods.md 7.10 on the plans alone (no decoding)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glocal.data.samplers import (
    ContiguousClipSampler,
    GlobalLocalSampler,
    MultiClipSampler,
    PairSampler,
    SegmentSampler,
    SpeedDirectionSampler,
    UniformFrameSampler,
)
from glocal.data.views import PartSampler, SamplePlan, ViewRequest, ViewSampler, validate_plan


def rngs(n: int, seed: int = 0):
    return [np.random.default_rng([seed, i]) for i in range(n)]


def test_contiguous_clip_inside_video_and_audio_colocated():
    s = ContiguousClipSampler(num_frames=8, fps=4.0)
    assert isinstance(s, ViewSampler)
    for rng in rngs(50):
        plan = s.plan(rng, origin=0.5, duration=5.0, fps=25.0)
        (v,) = plan.views
        assert v.name == "clip" and v.transform == "clip"
        assert v.times[0] >= 0.5 and v.times[-1] + 0.25 <= 5.5 + 1e-9
        np.testing.assert_allclose(np.diff(v.times), 0.25)
        assert v.audio == pytest.approx((v.times[0], 2.0))
    centre = ContiguousClipSampler(8, 4.0, temporal="center", audio_duration=3.0, with_audio=True)
    (v,) = centre.plan(None, 0.0, 5.0, 25.0).views  # type: ignore[arg-type]
    assert v.times[0] == pytest.approx(1.5)
    assert v.audio == pytest.approx((1.0, 3.0))  # centred on the clip's 2 s span
    assert ContiguousClipSampler(8, 4.0, with_audio=False).plan(rngs(1)[0], 0, 5, 25).views[0].audio is None
    # A video shorter than the clip starts at the origin.
    (short,) = s.plan(rngs(1)[0], 0.0, 1.0, 25.0).views
    assert short.times[0] == 0.0


def test_pair_sampler_independent_starts():
    starts = []
    for rng in rngs(40):
        plan = PairSampler(4, 8.0).plan(rng, 0.0, 10.0, 25.0)
        assert [v.name for v in plan.views] == ["a", "b"]
        starts.append([v.times[0] for v in plan.views])
    starts = np.array(starts)
    assert np.mean(starts[:, 0] != starts[:, 1]) == 1.0
    assert abs(np.corrcoef(starts.T)[0, 1]) < 0.5


def test_multi_clip_parts_are_uniform_clips():
    s = MultiClipSampler(n_clips=3, num_frames=4, fps=8.0)
    assert isinstance(s, PartSampler) and s.parts(7) == 3
    plans = [s.plan_part(7, i, 1.0, 2.0, 16.0) for i in range(3)]
    assert all([v.name for v in p.views] == ["clip"] for p in plans)
    starts = [p.views[0].times[0] for p in plans]
    np.testing.assert_allclose(starts, 1.0 + 1.5 * (np.arange(3) + 0.5) / 3)
    np.testing.assert_allclose(plans[1].views[0].times, starts[1] + np.arange(4) / 8.0)
    assert plans[1].views[0].audio == (starts[1], 0.5)
    with pytest.raises(ValueError, match="part must be in"):
        s.plan_part(0, 3, 1.0, 2.0, 16.0)


@pytest.mark.parametrize("n_frames", [300, 31, 7, 2])
def test_segment_draws_inside_their_segment_and_distinct(n_frames):
    s = SegmentSampler(num_segments=3, per_segment=2, frames_per_video=n_frames)
    segs = s.segments(n_frames)
    if n_frames >= 3:
        assert segs[-1][1] == n_frames and segs[0][0] == 0  # last segment takes the remainder
        assert all(hi - lo == n_frames // 3 for lo, hi in segs[:-1])
    for rng in rngs(30):
        plan = s.plan(rng, origin=0.0, duration=n_frames / 30, fps=30.0)
        k, q = plan.targets["k_index"], plan.targets["q_index"]
        for i, (lo, hi) in enumerate(segs):
            assert lo <= k[i] < hi and lo <= q[i] < hi
            if hi - lo >= 2:
                assert k[i] != q[i]
        names = [v.name for v in plan.views]
        assert names == ["k0", "k1", "k2", "q0", "q1", "q2"]
        for v in plan.views:
            assert v.times.shape == (1,) and v.transform == "frame" and v.audio is None
        np.testing.assert_allclose(plan.view("q1").times, q[1] / 30.0)


def test_segment_sampler_eval_and_seco_anchor():
    s = SegmentSampler(frames_per_video=30, train=False)
    plan = s.plan(None, 0.0, 1.0, 30.0)  # type: ignore[arg-type]
    assert [v.name for v in plan.views] == ["q0", "q1", "q2"]
    assert plan.targets["q_index"].tolist() == [4, 14, 24]
    anchors = set()
    for rng in rngs(20):
        p = SegmentSampler(frames_per_video=30, seco_anchor=True).plan(rng, 0.0, 1.0, 30.0)
        a = p.targets["anchor"]
        anchors.add(a)
        np.testing.assert_array_equal(p.view("x1").times, p.view(f"q{a}").times)
    assert anchors == {0, 2}


def test_uniform_frame_sampler_is_rounded_linspace():
    plan = UniformFrameSampler(5, frames_per_video=30).plan(None, 0.0, 1.0, 30.0)  # type: ignore[arg-type]
    assert plan.targets["frame_index"].tolist() == [0, 7, 14, 22, 29]
    np.testing.assert_allclose(plan.views[0].times, np.array([0, 7, 14, 22, 29]) / 30.0)


@pytest.mark.parametrize("duration", [0.5, 1.3, 2.7, 10.0])
def test_speed_skip_never_exceeds_video_length(duration):
    fps, t = 25.0, 8
    s = SpeedDirectionSampler(num_frames=t, fps=fps, n_speeds=4)
    n = math.floor(duration * fps + 1e-9)
    s_max = s.max_speed(duration)
    assert s_max == (0 if n < t else min(int(math.log2(n / t)), 3))
    seen = set()
    for rng in rngs(60):
        plan = s.plan(rng, origin=0.0, duration=duration, fps=fps)
        for v in plan.views:
            speed = plan.targets[f"speed_{v.name}"]
            seen.add(speed)
            skip = 2**speed
            assert speed <= s_max and v.audio_speed == skip
            if n >= t:
                assert t * skip <= n  # the skipped clip fits in the video
                assert v.times.min() >= 0 and v.times.max() + skip / fps <= duration + 1e-9
            start, span = v.audio
            assert span == pytest.approx(t * skip / fps) and start == pytest.approx(v.times.min())
    assert seen == set(range(s_max + 1))


def test_reversed_clip_is_exact_reversal_and_labels():
    s = SpeedDirectionSampler(num_frames=6, fps=10.0, reverse_p=0.5)
    dirs = []
    for rng in rngs(40):
        plan = s.plan(rng, 0.0, 20.0, 30.0)
        for v in plan.views:
            backward = plan.targets[f"dir_{v.name}"]
            dirs.append(backward)
            assert v.reverse_audio == bool(backward)
            forward = v.times[::-1] if backward else v.times
            step = np.diff(forward)
            np.testing.assert_allclose(step, 2 ** plan.targets[f"speed_{v.name}"] / 10.0)
            if backward:
                assert np.all(np.diff(v.times) < 0)
        a, b = plan.view("a"), plan.view("b")
        assert plan.targets["order_ab"] == int(a.times.min() < b.times.min())
    assert 0.2 < np.mean(dirs) < 0.8


def test_speed_non_overlapping_pairs():
    s = SpeedDirectionSampler(num_frames=4, fps=10.0, n_speeds=1, non_overlapping=True)
    for rng in rngs(30):
        plan = s.plan(rng, 0.0, 10.0, 10.0)
        assert plan.targets["overlap_ab"] == 0


def test_global_local_boxes_exact_and_inside_global_view():
    s = GlobalLocalSampler(global_frames=8, global_stride=4, local_frames=4, n_local=3)
    for rng in rngs(40):
        plan = s.plan(rng, origin=0.2, duration=6.0, fps=25.0)
        g = plan.view("global")
        dg = 4 / 25.0
        tg0, span = g.times[0], 8 * dg
        np.testing.assert_allclose(np.diff(g.times), dg)
        assert tg0 >= 0.2 and tg0 + span <= 6.2 + 1e-9
        boxes, order = plan.targets["boxes"], plan.targets["order"]
        assert boxes.shape == (3, 6)
        assert np.all((boxes >= 0) & (boxes <= 1 + 1e-12))
        assert np.all(boxes[:, 0] < boxes[:, 1]) and np.all(boxes[:, 2] < boxes[:, 4]) and np.all(boxes[:, 3] < boxes[:, 5])
        frac = boxes[:, 1] - boxes[:, 0]
        assert np.all((frac >= 0.1 - 1e-9) & (frac <= 0.3 + 1e-9))
        area = (boxes[:, 4] - boxes[:, 2]) * (boxes[:, 5] - boxes[:, 3])
        assert np.all((area >= 0.2 - 1e-9) & (area <= 0.6 + 1e-9))
        assert np.all(np.diff(boxes[order, 0]) >= 0)
        for i in range(3):
            v = plan.view(f"local{i}")
            assert v.region_of == "global" and v.transform == "local"
            assert v.region == pytest.approx(tuple(boxes[i, 2:]))
            t0 = tg0 + boxes[i, 0] * span
            t1 = tg0 + boxes[i, 1] * span
            dl = (t1 - t0) / 4
            np.testing.assert_allclose(v.times, t0 + dl * np.arange(4))
            assert v.times[0] >= tg0 and v.times[-1] + dl <= tg0 + span + 1e-9


def test_global_window_shrinks_to_short_video():
    plan = GlobalLocalSampler(global_frames=16, global_stride=4, n_local=1).plan(rngs(1)[0], 0.0, 1.0, 25.0)
    g = plan.view("global")
    assert g.times[0] == 0.0 and g.times[-1] + 1 / 16 == pytest.approx(1.0)


def test_validate_plan_orders_regions_and_rejects_bad_plans():
    t = np.zeros(1)
    plan = SamplePlan([ViewRequest("l", t, region_of="g", region=(0, 0, 0.5, 0.5)), ViewRequest("g", t)])
    assert [v.name for v in validate_plan(plan)] == ["g", "l"]
    with pytest.raises(ValueError, match="unique"):
        validate_plan(SamplePlan([ViewRequest("a", t), ViewRequest("a", t)]))
    with pytest.raises(ValueError, match="cycle"):
        validate_plan(SamplePlan([ViewRequest("a", t, region_of="b", region=(0, 0, 1, 1)),
                                  ViewRequest("b", t, region_of="a", region=(0, 0, 1, 1))]))
    with pytest.raises(ValueError, match="neither"):
        validate_plan(SamplePlan([ViewRequest("a", np.zeros(0))]))
    with pytest.raises(ValueError, match="region"):
        validate_plan(SamplePlan([ViewRequest("g", t), ViewRequest("l", t, region_of="g", region=(0.5, 0, 0.4, 1))]))
