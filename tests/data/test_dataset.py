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


def _loader_batches(ds, sampler, epoch, workers, persistent, loader=None):
    """The batches of ``epoch``: the given (persistent) loader, or a fresh one after the main process's
    ``set_epoch`` (the old way: the epoch reached the workers only because they restarted)."""
    sampler.set_epoch(epoch)
    if loader is None:
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=workers,
                                             persistent_workers=persistent, collate_fn=collate_samples)
    return list(loader)


def test_persistent_workers_get_the_epoch_with_each_index(tmp_path, tiny_av_video):
    """(epoch, index) items: 2 persistent workers (their dataset copy stays at epoch 0) draw each epoch's
    samples, bit-identical to a fresh non-persistent loader over plain indices after set_epoch, replacements
    of a broken file under on_error=skip included."""
    from glocal.runtime.distributed import DistributedBatchSampler

    (tmp_path / "broken.mp4").write_bytes(b"")
    rows = [(tiny_av_video.name, str(i % 2)) for i in range(5)] + [("broken.mp4", "0")]
    ds = _dataset(tmp_path, rows, on_error="skip")
    tagged = DistributedBatchSampler(len(ds), 3, seed=4, with_epoch=True)
    persistent = torch.utils.data.DataLoader(ds, batch_sampler=tagged, num_workers=2, persistent_workers=True,
                                             collate_fn=collate_samples)
    plain = DistributedBatchSampler(len(ds), 3, seed=4)
    got = {e: _loader_batches(ds, tagged, e, 2, True, loader=persistent) for e in (0, 1)}
    assert ds.epoch == 0  # nobody called set_epoch: the epoch came with the items
    for epoch in (0, 1):
        want = _loader_batches(ds, plain, epoch, 2, False)
        assert len(got[epoch]) == len(want) == 2
        for g, w in zip(got[epoch], want):
            assert g.keys() == w.keys() and g["skipped"] == w["skipped"]
            for key in w:
                if isinstance(w[key], torch.Tensor):
                    assert torch.equal(g[key], w[key]), (epoch, key)
    assert any(b["skipped"] for e in (0, 1) for b in got[e])  # the broken file was drawn and replaced
    starts = [[float(t) for t in b["clip/times"][:, 0]] for e in (0, 1) for b in got[e][:1]]
    assert starts[0] != starts[1]  # epoch 1 is not a repeat of epoch 0
    ds.set_epoch(1)
    at_one = ds[2]
    ds.set_epoch(5)
    assert torch.equal(ds[(1, 2)]["clip/video"], at_one["clip/video"])  # the pair's epoch wins over set_epoch


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
