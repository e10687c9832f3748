"""The audio-swap control of ``video_pool=sound`` (glocal.eval.audio_swap): donors, the chance
rate against hand-computed cases, and the control on a leaking and a non-leaking model."""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest

from glocal.eval.audio_swap import donors, leak_chance, leak_summary
from glocal.eval.suite import TASKS


def test_donors_are_of_another_class_and_seeded() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 1])
    d = donors(labels, seed=3)
    assert d.shape == labels.shape and np.all(labels[d] != labels)
    assert np.array_equal(d, donors(labels, seed=3))
    assert donors(np.array([4, 4, 4]), seed=0) is None  # one class: no donor exists
    # uniform over the other classes' videos: video 0 (class 0) of [0, 1, 1, 2] draws 1, 2, 3 about equally
    lab = np.array([0, 1, 1, 2])
    draws = np.array([donors(lab, seed=s)[0] for s in range(600)])
    assert set(draws.tolist()) == {1, 2, 3} and np.all(np.abs(np.bincount(draws)[1:] / 600 - 1 / 3) < 0.07)


def test_leak_chance_hand_computed() -> None:
    # labels 0, 0, 1, 2. Video 0 (class 0): the other classes' videos are {1, 2}; pred 1 -> 1/2.
    # Video 1 (class 0): pred 0 is its own class, which a donor never has -> 0.
    # Video 2 (class 1): others {0, 0, 2}; pred 0 -> 2/3. Video 3 (class 2): others {0, 0, 1}; pred 1 -> 1/3.
    labels = np.array([0, 0, 1, 2])
    assert leak_chance(np.array([1, 0, 0, 1]), labels) == pytest.approx((1 / 2 + 0 + 2 / 3 + 1 / 3) / 4)


def test_leak_summary_flags_predictions_that_follow_the_donor() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 20)
    d = donors(labels, seed=1)
    follows = leak_summary(labels[d], labels, labels[d])  # the prediction is the donor audio's class
    assert follows["leak"] == 1.0 and follows["swap"] == 0.0 and follows["leaks"]
    own = leak_summary(labels, labels, labels[d])  # the prediction ignores the audio: the video's class
    assert own["leak"] == 0.0 and own["swap"] == 1.0 and not own["leaks"]
    noise = leak_summary(rng.integers(0, 5, labels.size), labels, labels[d])
    assert abs(noise["leak"] - noise["chance"]) < 0.1 and noise["videos"] == 100


def test_one_nearest_neighbour_vote_is_the_cosine_argmax_class() -> None:
    """Retrieval's control reads the nearest gallery video's class as a 1-NN vote."""
    from glocal.eval.probes import knn_predict

    gallery = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    query = np.array([[3.0, 0.1], [0.2, 0.5], [-0.1, -0.2], [1.0, -0.2]])
    assert knn_predict(gallery, np.array([7, 8, 9]), query, k=1, weighted=False).tolist() == [7, 8, 9, 7]


def _with_sound_pool(method, fn):
    m = copy.deepcopy(method)
    m.pooled_video_features = types.MethodType(fn, m)
    return m


def test_swapped_features_pool_each_video_with_its_donors_audio(tiny_method, make_ctx) -> None:
    """A 'sound pooling' that returns the audio encoder's features of the given audio: under the
    control, video ``i`` gets exactly the features of its donor ``d(i)`` (clip ``k`` with the donor's
    clip ``k``); one that ignores the audio gets its own features, and the probe scores the same."""
    from glocal.eval.audio_swap import swapped_features
    from glocal.eval.linear_probe import video_features_by_split

    def audio_only(self, video, pool="mean", audio=None):
        return self.audio_features(audio).float()

    def video_only(self, video, pool="mean", audio=None):
        return self.video_features(video).float()

    leaky = _with_sound_pool(tiny_method, audio_only)
    ctx = make_ctx(video_pool="sound")
    own, y = video_features_by_split(leaky, ctx, ["test"])["test"]
    xs, ys, yd = swapped_features(leaky, ctx, "test")
    d = donors(ctx.split("test").labels, ctx.seed)
    assert np.array_equal(ys, y) and np.array_equal(yd, y[d]) and np.all(yd != ys)
    np.testing.assert_allclose(xs, own[d], rtol=1e-5, atol=1e-6)
    res = TASKS["linear"].run(leaky, ctx)
    control = res["meta"]["audio_swap"]
    assert control["videos"] == res["meta"]["test"] == len(y)
    assert (res["leak_top1"], res["leak_chance"], res["swap_top1"]) == (control["leak"], control["chance"], control["swap"])
    ret = TASKS["retrieval"].run(leaky, ctx)
    assert {"leak_R@1", "leak_chance", "swap_R@1"} <= set(ret) and ret["meta"]["audio_swap"]["videos"] == len(y)
    knn = TASKS["knn"].run(leaky, ctx)
    assert {"leak_top1", "leak_chance", "swap_top1"} <= set(knn) and knn["meta"]["audio_swap"]["videos"] == len(y)

    clean = _with_sound_pool(tiny_method, video_only)
    ctx = make_ctx(video_pool="sound")
    res = TASKS["linear"].run(clean, ctx)
    np.testing.assert_allclose(swapped_features(clean, ctx, "test")[0], video_features_by_split(clean, ctx, ["test"])["test"][0],
                               rtol=1e-5, atol=1e-6)
    assert res["swap_top1"] == pytest.approx(res["top1"]) and res["meta"]["warnings"] == []
    assert "audio_swap" not in TASKS["linear"].run(tiny_method, make_ctx())["meta"]  # mean pooling: no control


def test_warning_only_when_the_control_finds_a_leak(capsys) -> None:
    from glocal.eval.audio_swap import warn_if_leaking

    labels = np.repeat(np.arange(4), 10)
    d = donors(labels, seed=0)
    assert warn_if_leaking(leak_summary(labels, labels, labels[d]), "linear", "probe's prediction") == []
    assert capsys.readouterr().err == ""
    lines = warn_if_leaking(leak_summary(labels[d], labels, labels[d]), "linear", "probe's prediction")
    err = capsys.readouterr().err
    assert len(lines) == 1 and lines[0] in err
    assert "follows that audio's class on 100.0% of the 40 test videos" in err
