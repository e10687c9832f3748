"""One-clip samples of MultiViewDataset: deterministic (seed, epoch, index) sampling, uniform clips as
parts, and the bad-input policies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from glocal.data.dataset import MultiViewDataset, collate_samples
from glocal.data.manifest import read_manifest
from glocal.data.samplers import ContiguousClipSampler, MultiClipSampler
from glocal.data.transforms import ClipTransform
from glocal.errors import DataError


def _dataset(tmp_path, rows, sampler=None, **kw):
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(f"{p},{l}\n" for p, l in rows))
    sampler = sampler or ContiguousClipSampler(num_frames=4, fps=8.0)
    return MultiViewDataset(read_manifest(tmp_path / "m.csv"), sampler, {"clip": ClipTransform(size=16)},
                            sample_rate=8000, **kw)


def _start(sample) -> float:
    return float(sample["clip/times"][0])


def test_sample_contents_and_determinism(tmp_path, tiny_av_video):
    ds = _dataset(tmp_path, [(tiny_av_video.name, "a")])
    s1, s2 = ds[0], ds[0]
    assert s1["clip/video"].shape == (3, 4, 16, 16)
    assert s1["clip/audio"].shape == (4000,) and bool(s1["clip/audio_mask"])
    assert s1["clip/audio"].abs().max() > 0.1  # the 440 Hz tone is there
    assert torch.equal(s1["clip/video"], s2["clip/video"]) and _start(s1) == _start(s2)
    ds.set_epoch(1)
    assert _start(ds[0]) != _start(s1)
    assert s1["skipped"] == []


def test_centre_and_uniform_clips_are_parts(tmp_path, tiny_av_video):
    rows = [(tiny_av_video.name, "a"), (tiny_av_video.name, "b")]
    ds = _dataset(tmp_path, rows, MultiClipSampler(n_clips=3, num_frames=4, fps=8.0))
    assert len(ds) == 6 and [int(ds[i]["index"]) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    starts = [_start(ds[i]) for i in range(3)]
    np.testing.assert_allclose(starts, 1.5 * (np.arange(3) + 0.5) / 3)  # slack 2 s - 0.5 s, from t = 0
    assert _start(ds[3]) == starts[0]
    centre = _dataset(tmp_path, rows[:1], MultiClipSampler(n_clips=1, num_frames=4, fps=8.0))
    assert _start(centre[0]) == pytest.approx((2.0 - 0.5) / 2)


def test_broken_file_raise_names_it(tmp_path, tiny_av_video):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    ds = _dataset(tmp_path, [("broken.mp4", "a"), (tiny_av_video.name, "a")])
    with pytest.raises(DataError, match="broken.mp4"):
        ds[0]


def test_broken_file_skip_is_counted(tmp_path, tiny_av_video):
    (tmp_path / "broken.mp4").write_bytes(b"")
    ds = _dataset(tmp_path, [("broken.mp4", "a"), (tiny_av_video.name, "a")], on_error="skip")
    sample = ds[0]
    assert int(sample["index"]) == 1
    assert len(sample["skipped"]) >= 1 and "broken.mp4" in sample["skipped"][0]
    batch = collate_samples([sample, ds[1]])
    assert batch["clip/video"].shape[0] == 2 and len(batch["skipped"]) == len(sample["skipped"])


def test_all_broken_gives_up(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    ds = _dataset(tmp_path, [("a.mp4", "x")], on_error="skip", max_retries=3)
    with pytest.raises(DataError, match="4 consecutive samples failed"):
        ds[0]


def test_missing_audio_policies(tmp_path, tiny_video_no_audio):
    rows = [(tiny_video_no_audio.name, "a")]
    with pytest.raises(DataError, match="no audio stream"):
        _dataset(tmp_path, rows)[0]
    silent = _dataset(tmp_path, rows, missing_audio="silence")[0]
    assert not bool(silent["clip/audio_mask"]) and silent["clip/audio"].abs().sum() == 0
    shutil.copy(tiny_video_no_audio, tmp_path / "b.mp4")
    skip = _dataset(tmp_path, rows, missing_audio="skip", max_retries=2)
    with pytest.raises(DataError, match="consecutive samples failed"):
        skip[0]


def test_missing_audio_skip_replaces_even_with_on_error_raise(tmp_path, tiny_video_no_audio, tiny_av_video):
    ds = _dataset(tmp_path, [(tiny_video_no_audio.name, "a"), (tiny_av_video.name, "b")], missing_audio="skip")
    sample = ds[0]
    assert int(sample["index"]) == 1 and "no audio stream" in sample["skipped"][0]
