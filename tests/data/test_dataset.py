"""AVClipDataset: deterministic (seed, epoch, index) sampling and the bad-input policies."""

from __future__ import annotations

import shutil

import pytest
import torch

from glocal.data.dataset import AVClipDataset, ClipSpec, collate_samples
from glocal.data.manifest import read_manifest
from glocal.data.transforms import ClipTransform
from glocal.errors import DataError


def _dataset(tmp_path, rows, **kw):
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(f"{p},{l}\n" for p, l in rows))
    spec = ClipSpec(num_frames=4, fps=8.0, sample_rate=8000)
    return AVClipDataset(read_manifest(tmp_path / "m.csv"), spec, ClipTransform(size=16), **kw)


def test_sample_contents_and_determinism(tmp_path, tiny_av_video):
    ds = _dataset(tmp_path, [(tiny_av_video.name, "a")])
    s1, s2 = ds[0], ds[0]
    assert s1["video"].shape == (3, 4, 16, 16)
    assert s1["audio"].shape == (4000,) and bool(s1["audio_mask"])
    assert s1["audio"].abs().max() > 0.1  # the 440 Hz tone is there
    assert torch.equal(s1["video"], s2["video"]) and float(s1["start"]) == float(s2["start"])
    ds.set_epoch(1)
    assert float(ds[0]["start"]) != float(s1["start"])
    assert s1["skipped"] == []


def test_centre_and_uniform_clips(tmp_path, tiny_av_video):
    ds = _dataset(tmp_path, [(tiny_av_video.name, "a")], temporal="uniform", clips_per_video=3)
    assert len(ds) == 3
    starts = [float(ds[i]["start"]) for i in range(3)]
    assert starts == sorted(starts) and starts[0] >= 0 and starts[-1] <= 2.0 - 0.5 + 1e-6
    centre = _dataset(tmp_path, [(tiny_av_video.name, "a")], temporal="center")
    assert float(centre[0]["start"]) == pytest.approx((2.0 - 0.5) / 2)


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
    assert batch["video"].shape[0] == 2 and len(batch["skipped"]) == len(sample["skipped"])


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
    assert not bool(silent["audio_mask"]) and silent["audio"].abs().sum() == 0
    shutil.copy(tiny_video_no_audio, tmp_path / "b.mp4")
    skip = _dataset(tmp_path, rows, missing_audio="skip", max_retries=2)
    with pytest.raises(DataError, match="consecutive samples failed"):
        skip[0]


def test_missing_audio_skip_replaces_even_with_on_error_raise(tmp_path, tiny_video_no_audio, tiny_av_video):
    ds = _dataset(tmp_path, [(tiny_video_no_audio.name, "a"), (tiny_av_video.name, "b")], missing_audio="skip")
    sample = ds[0]
    assert int(sample["index"]) == 1 and "no audio stream" in sample["skipped"][0]
