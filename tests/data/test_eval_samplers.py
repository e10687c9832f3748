"""The evaluation part samplers (windows, centre clip + edit, audio track + crops) against hand
computations, alone and on MultiViewDataset (one decode, the one sample schema)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal.data.dataset import MissingAudioError, MultiViewDataset, collate_samples
from glocal.data.eval_samplers import (
    AudioTrackSampler,
    CentreClipSampler,
    UniformCrops,
    WindowSampler,
    frame_counts,
    video_durations,
)
from glocal.data.io import probe, read_audio
from glocal.data.manifest import Manifest
from glocal.data.views import PartSampler, ViewSampler


def _raw(clip: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, None]:
    """Video transform keeping the decoded frames: uint8 ``(T, H, W, 3)`` -> float ``(T,)`` mean grey level."""
    return clip.float().mean(dim=(1, 2, 3)), None


def _files(*paths: Path, **columns: list) -> Manifest:
    return Manifest(root=paths[0].parent, paths=[str(p) for p in paths], labels=[-1] * len(paths), class_names=[],
                    columns=columns)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


# ------------------------------------------------------------------------------------------ samplers
def test_frame_counts_and_durations(tmp_path, tiny_av_video):
    np.testing.assert_array_equal(frame_counts(np.array([2.0, 0.01, 1.9999999, 0.5]), 8.0), [16, 1, 16, 4])
    m = _files(tiny_av_video, tiny_av_video, duration=["3.5", ""])
    np.testing.assert_allclose(video_durations(m), [3.5, probe(tiny_av_video).duration])  # column, else probed


def test_window_sampler_tiles_each_video_from_zero():
    s = WindowSampler(num_frames=4, fps=8.0, frames=np.array([10, 16]))
    assert isinstance(s, PartSampler) and not isinstance(s, ViewSampler)
    assert [s.parts(0), s.parts(1)] == [3, 4]  # ceil(10 / 4), 16 / 4
    for origin in (0.0, 0.3):  # the windows sit on the labels' timeline, whatever the stream start
        plan = s.plan_part(0, 2, origin, 1.25, 8.0)
        (view,) = plan.views
        np.testing.assert_array_equal(view.times, [1.0, 1.125, 1.25, 1.375])  # frames 8..11 at 8 fps
        assert view.name == "clip" and view.audio == (1.0, 0.5) and plan.targets == {"window": 2}
    assert WindowSampler(4, 8.0, np.array([10]), with_audio=False).plan_part(0, 0, 0.0, 1.0, 8.0).views[0].audio is None


def test_centre_clip_sampler_extends_the_source_and_seeds_the_view():
    s = CentreClipSampler(num_frames=4, fps=8.0, durations=np.array([2.0, 0.3]), span=1.25, seed=(7, 3))
    assert s.parts(1) == 1
    (view,) = s.plan_part(0, 0, 0.0, 2.0, 8.0).views
    np.testing.assert_array_equal(view.times, 0.75 + np.arange(5) / 8.0)  # (2 - 0.5) / 2; ceil(4 * 1.25) frames
    assert view.audio == (0.75, 5 / 8.0) and view.seed == (7, 0, 3)
    (short,) = s.plan_part(1, 0, 0.0, 0.3, 8.0).views  # shorter than the clip: from t = 0
    assert short.times[0] == 0.0 and short.seed == (7, 1, 3)
    (plain,) = CentreClipSampler(4, 8.0, np.array([2.0]), with_audio=False).plan_part(0, 0, 0.0, 2.0, 8.0).views
    assert len(plain.times) == 4 and plain.audio is None and plain.seed is None


def test_audio_track_sampler_and_uniform_crops():
    (view,) = AudioTrackSampler().plan_part(3, 0, 0.0, 2.5, 25.0).views
    assert len(view.times) == 0 and view.audio == (0.0, 2.5)
    w = torch.arange(10, dtype=torch.float32)
    crops, _ = UniformCrops(4, 3)(w, np.random.default_rng(0))  # slack 6: starts round(6 (j + 0.5) / 3) = 1, 3, 5
    np.testing.assert_array_equal(crops.numpy(), [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]])
    np.testing.assert_array_equal(UniformCrops(4)(w, None)[0].numpy(), [[3, 4, 5, 6]])  # slack // 2
    np.testing.assert_array_equal(UniformCrops(4, 2)(w[:3], None)[0].numpy(), [[0, 1, 2, 0], [0, 1, 2, 0]])


# ------------------------------------------------------------------------------------------ on the dataset
def test_windows_on_the_dataset(tiny_av_video):
    """32 frames at 16 fps (grey 10 + 7 k), windows of 5 frames at 16 fps: 7 windows, the last one
    repeating frame 31 and with audio zero-padded past the 2 s track."""
    m = _files(tiny_av_video)
    s = WindowSampler(5, 16.0, frame_counts(video_durations(m), 16.0))
    ds = MultiViewDataset(m, s, {"clip": _raw}, sample_rate=16000)
    assert len(ds) == 7
    batch = collate_samples([ds[i] for i in range(7)])
    np.testing.assert_array_equal(batch["target/window"].numpy(), np.arange(7))
    frame = np.minimum(np.arange(7)[:, None] * 5 + np.arange(5), 31)
    np.testing.assert_allclose(batch["clip/video"].numpy(), 10 + 7 * frame, atol=2)
    assert batch["clip/audio"].shape == (7, 5000) and bool(batch["clip/audio_mask"].all())
    tone, _ = read_audio(tiny_av_video, 0.0, 2.0, sample_rate=16000)
    np.testing.assert_array_equal(batch["clip/audio"][0].numpy(), tone[0, :5000])
    assert float(batch["clip/audio"][6, 2000:].abs().max()) == 0.0  # 30 / 16 s + 2000 samples = 2 s


def test_seeded_edit_on_the_dataset(tiny_av_video):
    """The av transform sees the decoded source (5 frames + their audio), draws from the view's seed,
    and its output goes through the video transform."""
    seen = {}

    def edit(frames, audio, rng):
        seen["shapes"] = (frames.shape, audio.shape)
        return frames[::-1][:4], audio * float(rng.uniform())

    m = _files(tiny_av_video, tiny_av_video, duration=["2.0", "2.0"])
    s = CentreClipSampler(4, 16.0, video_durations(m), span=1.25, seed=(9, 2))
    ds = MultiViewDataset(m, s, {"clip": _raw}, av_transforms={"clip": edit}, sample_rate=16000, seed=5)
    sample = ds[1]
    assert seen["shapes"] == ((5, 32, 32, 3), (5000,))  # ceil(4 * 1.25) frames from (2 - 0.25) / 2 s
    np.testing.assert_allclose(sample["clip/video"].numpy(), 10 + 7 * np.array([18, 17, 16, 15]), atol=2)
    source, _ = read_audio(tiny_av_video, 0.875, 5 / 16, sample_rate=16000)
    gain = np.random.default_rng((9, 1, 2)).uniform()
    np.testing.assert_allclose(sample["clip/audio"].numpy(), source[0] * gain, rtol=1e-6)
    unseeded = MultiViewDataset(m, CentreClipSampler(4, 16.0, video_durations(m)), {"clip": _raw},
                                av_transforms={"clip": edit}, sample_rate=16000, seed=5)[1]
    gain = np.random.default_rng([5, 0, 1, 3, 0]).uniform()  # (seed, epoch, item, 3, view)
    np.testing.assert_allclose(unseeded["clip/audio"].numpy(), source[0, :4000] * gain, rtol=1e-6)


def test_audio_track_crops_of_a_wav_and_of_a_video(tmp_path, tiny_av_video):
    rng = np.random.default_rng(0)
    samples = rng.integers(-20000, 20000, size=8000 + 1234)
    wav = _write_wav(tmp_path / "a.wav", samples, 8000)
    m = _files(wav, tiny_av_video)
    ds = MultiViewDataset(m, AudioTrackSampler(), {}, audio_transforms={"clip": UniformCrops(4000, 3)},
                          timeline="audio", sample_rate=8000)
    a, v = ds[0], ds[1]
    assert a["clip/audio"].shape == v["clip/audio"].shape == (3, 4000) and "clip/video" not in a
    slack = len(samples) - 4000
    for j in range(3):
        k = int(round(slack * (j + 0.5) / 3))
        np.testing.assert_array_equal(a["clip/audio"][j].numpy(), samples[k:k + 4000] / 32768.0)
    track, _ = read_audio(tiny_av_video, sample_rate=8000)  # the video's whole audio track, from t = 0
    expected, _ = UniformCrops(4000, 3)(torch.from_numpy(track[0]), None)
    assert torch.equal(v["clip/audio"], expected)


def test_audio_timeline_needs_an_audio_stream(tiny_video_no_audio, tiny_av_video):
    m = _files(tiny_video_no_audio, tiny_av_video)
    kw = dict(timeline="audio", audio_transforms={"clip": UniformCrops(800)}, sample_rate=8000)
    with pytest.raises(MissingAudioError, match="no audio stream"):
        MultiViewDataset(m, AudioTrackSampler(), {}, **kw)[0]
    sample = MultiViewDataset(m, AudioTrackSampler(), {}, missing_audio="skip", **kw)[0]
    assert int(sample["index"]) == 1 and "no audio stream" in sample["skipped"][0]
