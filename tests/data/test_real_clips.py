"""Real clips (h264 + AAC 5.1 / stereo / mono, no audio, odd frame rates, digital silence) through
probe, read_clip, the dataset and scan. The clips come from two PyPI wheels, cached after the first
run (see tests/fixtures/real_clips.py); without network these tests skip and say why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.real_clips import CLIPS, NoNetwork, real_clips_dir
from glocal.data.dataset import MultiViewDataset
from glocal.data.formats import load_manifest
from glocal.data.io import probe, read_clip
from glocal.data.samplers import ContiguousClipSampler
from glocal.data.scan import check_file, scan_dataset
from glocal.data.transforms import ClipTransform
from glocal.errors import DataError

pytestmark = pytest.mark.real_media

VIDEOS = [name for name, clip in CLIPS.items() if clip.fps > 0]
SOUNDS = [name for name, clip in CLIPS.items() if clip.fps == 0]


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    try:
        return real_clips_dir()
    except NoNetwork as e:
        pytest.skip(f"real clips not cached and no network for pip: {e}")


@pytest.mark.parametrize("name", VIDEOS)
def test_probe(clips_dir, name):
    clip = CLIPS[name]
    info = probe(clips_dir / name)
    assert info.duration == pytest.approx(clip.duration, abs=0.05)
    assert info.fps == pytest.approx(clip.fps, rel=0.01)
    assert (info.width, info.height) == clip.size and info.rotation == 0
    assert info.has_video and info.has_audio == clip.has_audio
    assert (info.audio_sample_rate, info.audio_channels) == (clip.audio_rate, clip.audio_channels)


@pytest.mark.parametrize("name", VIDEOS)
def test_read_clip_with_audio(clips_dir, name):
    clip = CLIPS[name]
    start = max(0.0, clip.duration / 2 - 0.25)
    av_clip = read_clip(clips_dir / name, start, 8, clip.fps, size=(64, 64), audio_duration=0.25, mono=False)
    assert av_clip.frames.shape == (8, 64, 64, 3) and av_clip.frames.dtype == np.uint8
    assert av_clip.frames.std() > 1.0  # real pictures, not a blank
    if not clip.has_audio:
        assert av_clip.audio is None
        return
    assert av_clip.audio.shape == (clip.audio_channels, 4000) and av_clip.audio.dtype == np.float32
    assert av_clip.audio_valid.mean() > 0.9
    assert float(np.sqrt(np.mean(av_clip.audio[:, av_clip.audio_valid] ** 2))) > 1e-3  # real sound


@pytest.mark.parametrize("name", VIDEOS)
def test_check_file_reports_ok_or_no_audio(clips_dir, name):
    assert check_file(clips_dir / name).kinds() == ([] if CLIPS[name].has_audio else ["no-audio"])


def test_scan_of_the_clip_folder(clips_dir, tmp_path):
    report = scan_dataset(clips_dir, "unlabeled", workers=2, out=tmp_path / "deny.txt")
    assert report.files == len(VIDEOS) and report.deny == []
    assert report.ok == sum(CLIPS[v].has_audio for v in VIDEOS)
    assert report.counts == {"no-audio": sum(not CLIPS[v].has_audio for v in VIDEOS)}
    assert report.max_pixels == (1280, 720) and "no-audio (warning)" in report.table()
    mute = [v for v in VIDEOS if not CLIPS[v].has_audio]
    listed = tmp_path / "mute.csv"  # absolute paths outside the manifest folder stay absolute
    listed.write_text("path\n" + "".join(f"{clips_dir / v}\n" for v in mute))
    strict = scan_dataset(listed, require_audio=True, out=tmp_path / "strict.txt")
    assert strict.deny == [(str(clips_dir / v), "no-audio: no audio stream") for v in mute]
    with pytest.raises(DataError, match="every row is on"):
        load_manifest(listed, deny_list=tmp_path / "strict.txt")


def test_sound_files(clips_dir):
    silence, crowd = clips_dir / "silence.wav", clips_dir / "crowd.mp3"
    assert check_file(silence).kinds() == ["no-video"]
    assert check_file(silence, audio_only=True).kinds() == ["silent-audio"]  # a real all-zero recording
    assert check_file(crowd, audio_only=True).kinds() == []


@pytest.mark.parametrize("name", VIDEOS)
def test_dataset_reads_the_clip(clips_dir, name):
    manifest = load_manifest(clips_dir, "unlabeled")
    manifest = manifest.select(manifest.paths == str(clips_dir / name))
    ds = MultiViewDataset(manifest, ContiguousClipSampler(num_frames=4, fps=8.0), {"clip": ClipTransform(size=16)},
                          size=(32, 32), sample_rate=8000, missing_audio="silence")
    sample = ds[0]
    assert sample["clip/video"].shape == (3, 4, 16, 16) and sample["skipped"] == []
    assert bool(sample["clip/audio_mask"]) == CLIPS[name].has_audio
    if CLIPS[name].has_audio:
        assert float(sample["clip/audio"].abs().max()) > 1e-3


def test_prepare_keeps_every_real_clip_usable(clips_dir, tmp_path):
    """`glocal prepare` on the real clips (720p 5.1-channel AAC, no audio, 29.97 and 11.94 fps, 0.55 s,
    odd aspect ratios; the two sound files are copied): every video comes out with its duration,
    audio presence and picture at the same times, at the training geometry."""
    from glocal.data.prepare import params_for, prepare_dataset

    dst = tmp_path / "prepared"
    report = prepare_dataset(clips_dir, dst, params_for(None), workers=0, progress=False)
    assert not report.broken and report.encoded == len(VIDEOS)
    for name in SOUNDS:  # not videos: copied byte for byte
        assert (dst / name).read_bytes() == (clips_dir / name).read_bytes()
    for name in VIDEOS:
        clip, info = CLIPS[name], probe(dst / name)
        assert info.duration == pytest.approx(clip.duration, abs=0.1), name
        assert min(info.width, info.height) == min(128, *clip.size), name
        assert info.fps <= 30.0 + 1e-6 and info.has_audio == clip.has_audio, name
        if clip.has_audio:
            assert (info.audio_sample_rate, info.audio_channels) == (16000, 1), name
        # the picture at the middle of the clip is the source's, resized
        t = clip.duration / 2
        a = read_clip(clips_dir / name, t, 1, clip.fps, size=(64, 64), read_audio=False).frames[0].astype(float)
        b = read_clip(dst / name, t, 1, clip.fps, size=(64, 64), read_audio=False).frames[0].astype(float)
        assert np.abs(a - b).mean() < 5, name  # measured 1.4-3.8 (0.25 s off: 2.0-10.4)
