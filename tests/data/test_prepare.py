"""``glocal prepare``: output geometry, layout and ground truth carried over, resume, broken files,
the config-asks-for-more message, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest

from glocal.cli import main
from glocal.data.audio_sidecar import find_sidecar
from glocal.data.av_writer import write_mp4
from glocal.data.build import build_dataset, default_sampler
from glocal.data.config import DataConfig
from glocal.data.denylist import read_deny_list
from glocal.data.formats import load_manifest
from glocal.data.io import probe, read_clip
from glocal.data.prepare import PREPARE_DENY, params_for, prepare_dataset, prepared_notes, read_prepared
from glocal.data.preflight import preflight_notes
from glocal.data.scan import check_file
from glocal.data.transforms import ClipTransform

W, H, FPS, N, SR = 64, 48, 20, 40, 16000  # 2 s sources
BOX = 12  # the moving square's side in pixels


def _box(k: int) -> tuple[int, int]:
    """Top-left (x, y) of the white square in source frame k."""
    return 2 + k, 4 + (k % 20)


def _source(n: int = N) -> np.ndarray:
    fr = np.full((n, H, W, 3), 20, np.uint8)
    for k in range(n):
        x, y = _box(k)
        fr[k, y:y + BOX, x:x + BOX] = 235
    return fr


def _stereo(n: int = N) -> np.ndarray:
    t = np.arange(int(SR * n / FPS)) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)


@pytest.fixture(scope="module")
def csv_src(tmp_path_factory) -> Path:
    """A CSV dataset: 2 good videos (stereo audio), boxes + masks annotations, one broken file."""
    root = tmp_path_factory.mktemp("src")
    write_mp4(root / "v" / "a.mp4", _source(), FPS, _stereo(), SR)
    write_mp4(root / "v" / "b.mp4", _source()[::-1].copy(), FPS, _stereo(), SR)
    (root / "v" / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "manifest.csv").write_text("path,label,split,start,end,fold\nv/a.mp4,up,train,0.2,1.8,1\n"
                                       "v/b.mp4,down,test,,,2\nv/bad.mp4,up,train,,,3\n")
    boxes = [[x / W, y / H, (x + BOX) / W, (y + BOX) / H] for x, y in map(_box, range(N))]
    masks = np.zeros((N, H, W), np.uint8)
    for k in range(N):
        x, y = _box(k)
        masks[k, y:y + BOX, x:x + BOX] = 1
    (root / "masks").mkdir()
    np.savez_compressed(root / "masks" / "a.npz", masks=masks)
    ann = {"format": "glocal-annotations-v1", "classes": ["down", "up"],
           "videos": {"v/a.mp4": {"label": "up", "fps": FPS, "num_frames": N, "duration": N / FPS,
                                  "source_boxes": boxes, "source_masks": "masks/a.npz", "events": [[0.5, 0.7]]}}}
    (root / "annotations.json").write_text(json.dumps(ann))
    return root


@pytest.fixture(scope="module")
def prepared(csv_src, tmp_path_factory):
    dst = tmp_path_factory.mktemp("dst") / "prep"
    params = params_for(None, {"short_side": 24, "max_fps": 10, "sample_rate": 8000})
    lines: list[str] = []
    report = prepare_dataset(csv_src, dst, params, workers=0, progress=False, log=lines.append)
    return dst, report, lines


def test_geometry(prepared):
    dst, report, _ = prepared
    assert report.encoded == 2 and report.copied == 3  # manifest, annotations, mask
    info = probe(dst / "v" / "a.mp4")
    assert (info.width, info.height) == (32, 24)  # short side 24, aspect kept
    assert info.fps == pytest.approx(10)
    assert info.audio_channels == 1 and info.audio_sample_rate == 8000
    assert info.duration == pytest.approx(2.0, abs=0.1)
    with av.open(str(dst / "v" / "a.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
        keys = sorted(float(p.pts * p.time_base) for p in c.demux(video=0) if p.pts is not None and p.is_keyframe)
    assert keys == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=1e-3)


def test_no_upscale_and_no_fps_raise(csv_src, tmp_path):
    report = prepare_dataset(csv_src, tmp_path / "p", params_for(None, {"short_side": 96, "max_fps": 60}), workers=0,
                             progress=False, log=lambda _: None)
    info = probe(tmp_path / "p" / "v" / "a.mp4")
    assert (info.width, info.height, info.fps) == (W, H, FPS) and report.encoded == 2


def test_layout_and_annotations_carried_over(csv_src, prepared):
    dst, _, _ = prepared
    for name in ("manifest.csv", "annotations.json", "masks/a.npz"):
        assert (dst / name).read_bytes() == (csv_src / name).read_bytes()
    a, b = load_manifest(csv_src), load_manifest(dst)
    assert a.relative_paths().tolist() == b.relative_paths().tolist()
    assert a.labels.tolist() == b.labels.tolist() and a.column("split").tolist() == b.column("split").tolist()
    assert a.column("fold").tolist() == b.column("fold").tolist()
    for col in ("start", "end"):
        np.testing.assert_array_equal(a.column(col), b.column(col))


def test_ground_truth_matches_prepared_frames(prepared):
    """The annotation's box at each prepared frame's time (frame index by the annotation's fps) still
    holds the white square: inside bright, outside dark."""
    dst, _, _ = prepared
    ann = json.loads((dst / "annotations.json").read_text())["videos"]["v/a.mp4"]
    times = np.arange(20) / 10.0  # the prepared grid (10 fps)
    clip = read_clip(dst / "v" / "a.mp4", 0.0, 20, 10.0, read_audio=False)
    h, w = clip.frames.shape[1:3]
    for t, frame in zip(times, clip.frames):
        x0, y0, x1, y1 = ann["source_boxes"][int(np.floor(t * ann["fps"] + 1e-6))]
        inside = frame[int(np.ceil(y0 * h)) + 1:int(y1 * h) - 1, int(np.ceil(x0 * w)) + 1:int(x1 * w) - 1, 0]
        outside = frame.copy()[..., 0]
        outside[max(0, int(y0 * h) - 1):int(np.ceil(y1 * h)) + 1, max(0, int(x0 * w) - 1):int(np.ceil(x1 * w)) + 1] = 0
        assert inside.min() > 180, t
        assert outside.max() < 80, t


def test_sampled_clip_geometry_matches_source(csv_src, prepared):
    """The same sample (seed, index) read from SRC and from DST: same frame times, same crop (normalised),
    same audio window; the pixels agree up to the resize and re-encode."""
    dst, _, _ = prepared
    sets = []
    for root in (csv_src, dst):
        cfg = DataConfig(root=str(root), split="train", clip_frames=8, fps=10, crop_size=16, sample_rate=8000,
                         deny_list=str(dst / PREPARE_DENY))
        ds = build_dataset(cfg, default_sampler(cfg), {"clip": ClipTransform(size=16, scale=(0.5, 1.0))}, {},
                           with_audio=True, seed=3, augment_on_device=True)
        sets.append(ds[0])
    a, b = sets
    np.testing.assert_allclose(a["clip/times"], b["clip/times"])
    np.testing.assert_allclose(a["clip/crop"], b["clip/crop"], atol=1e-6)
    assert a["clip/video"].shape == b["clip/video"].shape and a["clip/audio"].shape == b["clip/audio"].shape
    diff = (a["clip/video"].float() - b["clip/video"].float()).abs().mean().item()
    assert diff < 20, diff
    audio = np.corrcoef(a["clip/audio"].numpy(), b["clip/audio"].numpy())[0, 1]
    assert audio > 0.9, audio


def test_broken_file_reported_and_left_out(prepared):
    dst, report, lines = prepared
    assert [r for r, _ in report.broken] == ["v/bad.mp4"]
    assert lines == ["broken: v/bad.mp4: Invalid data found when processing input"]
    assert not (dst / "v" / "bad.mp4").exists()
    assert [r for r, _ in read_deny_list(dst / PREPARE_DENY)] == ["v/bad.mp4"]
    m = load_manifest(dst, deny_list=dst / PREPARE_DENY)
    assert m.relative_paths().tolist() == ["v/a.mp4", "v/b.mp4"] and m.report.count("denied file") == 1
    assert "broken: v/bad.mp4" in report.summary() and f"data.deny_list={dst / PREPARE_DENY}" in report.summary()
    assert not list(dst.rglob(".*preparing*"))


def test_resume_skips_done_and_redoes_partial(csv_src, tmp_path):
    params = params_for(None, {"short_side": 24, "max_fps": 10})
    dst = tmp_path / "p"
    first = prepare_dataset(csv_src, dst, params, workers=0, progress=False, log=lambda _: None)
    assert first.encoded == 2
    done = (dst / "v" / "b.mp4").stat().st_mtime_ns
    (dst / "v" / "a.mp4").unlink()  # killed while writing a.mp4: only its temporary file is there
    (dst / "v" / ".a.preparing.mp4").write_bytes(b"half a video")
    second = prepare_dataset(csv_src, dst, params, workers=0, progress=False, log=lambda _: None)
    assert (second.encoded, second.skipped, second.copied) == (1, 1, 0)
    assert (dst / "v" / "b.mp4").stat().st_mtime_ns == done
    assert probe(dst / "v" / "a.mp4").height == 24 and not (dst / "v" / ".a.preparing.mp4").exists()
    assert read_prepared(dst)["complete"] is True
    with pytest.raises(Exception, match="short_side=24 \\(now 32\\)"):
        prepare_dataset(csv_src, dst, params_for(None, {"short_side": 32, "max_fps": 10}), workers=0, progress=False)


def test_folder_layout_with_workers(tmp_path):
    src = tmp_path / "ucf"
    for cls in ("Archery", "Bowling"):
        for i in range(2):
            write_mp4(src / cls / f"v_{cls}_g0{i}.avi", _source(10), FPS)  # .avi: re-encoded under the same name
    report = prepare_dataset(src, tmp_path / "p", params_for(None, {"short_side": 24}), workers=2, progress=False)
    assert report.encoded == 4 and not report.broken
    a, b = load_manifest(src), load_manifest(tmp_path / "p")
    assert b.report.format == "folder" and a.relative_paths().tolist() == b.relative_paths().tolist()
    assert a.labels.tolist() == b.labels.tolist()
    assert probe(tmp_path / "p" / "Bowling" / "v_Bowling_g01.avi").height == 24


def test_config_asking_for_more(prepared):
    dst, _, _ = prepared
    cfg = DataConfig(root=str(dst), crop_size=32, fps=25, sample_rate=16000)
    notes = prepared_notes(dst, cfg)
    assert len(notes) == 3
    assert "data.crop_size=32" in notes[0] and "short_side=32" in notes[0]
    assert "data.fps=25" in notes[1] and "max_fps=25" in notes[1]
    assert "data.sample_rate=16000" in notes[2]
    assert all("\n" not in n for n in notes)
    assert prepared_notes(dst, DataConfig(root=str(dst), crop_size=24, fps=10, sample_rate=8000)) == []
    cfg2 = DataConfig(root=str(dst / "manifest.csv"), decode_size=48, crop_size=16, fps=10, sample_rate=8000)
    m = load_manifest(dst, deny_list=dst / PREPARE_DENY)
    assert any("data.decode_size=48" in n for n in preflight_notes(m, cfg2))


def test_params_from_config():
    p = params_for(DataConfig(crop_size=112, fps=16, sample_rate=24000))
    assert (p.short_side, p.max_fps, p.sample_rate) == (128, 16.0, 24000)
    assert params_for(DataConfig(decode_size=160)).short_side == 160
    assert params_for().short_side == 128 and params_for().max_fps == 30.0


def test_cli(csv_src, tmp_path, capsys):
    dst = tmp_path / "p"
    assert main(["prepare", str(csv_src), "--out", str(dst), "--workers", "0", "--quiet", "short_side=24"]) == 0
    out = capsys.readouterr()
    assert "2 videos encoded" in out.out and "1 broken" in out.out and "broken: v/bad.mp4" in out.out
    assert main(["prepare", str(csv_src), "--out", str(dst), "--quiet", "short_sid=24"]) == 2
    assert "unknown config key 'short_sid' (did you mean 'short_side'?)" in capsys.readouterr().err
    assert main(["prepare", str(csv_src), "--out", str(dst), "--quiet", "short_side=25"]) == 2  # odd: yuv420p
    assert "config key 'short_side' = 25 is out of range; allowed: [8, 8192], a multiple of 2" in capsys.readouterr().err
    assert main(["prepare", str(csv_src), "--out", str(dst), "--quiet", "preset=fastest"]) == 2
    assert "preset" in capsys.readouterr().err


def test_generated_world(tmp_path):
    """The world: manifest, fake manifest and annotations read from DST as from the source; the frame on
    screen at each sampled time (the times its boxes are indexed by) is the source's."""
    from glocal.data.synth import WorldConfig, generate_world

    src, dst = tmp_path / "world", tmp_path / "prep"
    generate_world(WorldConfig(num_videos=6, duration=2.0, fps=20, seed=1), src, workers=1, progress=False)
    report = prepare_dataset(src, dst, params_for(None, {"short_side": 32, "max_fps": 10}), workers=0, progress=False)
    assert not report.broken and report.encoded == len(list(src.rglob("*.mp4")))
    for manifest in ("manifest.csv", "fake/manifest.csv"):
        a, b = load_manifest(src / manifest), load_manifest(dst / manifest)
        assert [os.path.relpath(p, src) for p in a.paths] == [os.path.relpath(p, dst) for p in b.paths]
        assert a.labels.tolist() == b.labels.tolist() and all(os.path.isfile(p) for p in b.paths)
    assert (dst / "annotations.json").read_bytes() == (src / "annotations.json").read_bytes()
    rel = load_manifest(src).relative_paths()[0]
    a = read_clip(src / rel, 0.0, 36, 20.0, size=32, audio_duration=1.8)  # every source frame
    b = read_clip(dst / rel, 0.0, 18, 10.0, size=32, audio_duration=1.8)  # the prepared 10 fps grid
    np.testing.assert_allclose(b.frame_times, np.arange(18) / 10.0)
    dist = np.abs(b.frames[:, None].astype(float) - a.frames[None].astype(float)).mean(axis=(2, 3, 4))
    best = dist.argmin(axis=1)  # the source frame each prepared frame looks most like
    own = dist[np.arange(18), np.arange(0, 36, 2)]  # ... and its distance to the source frame at its time
    assert (best == np.arange(0, 36, 2)).mean() >= 0.8, best  # (near-still moments may tie with a neighbour)
    assert np.all(own <= dist[np.arange(18), best] + 1.0), (own, best)
    assert np.corrcoef(a.audio[0], b.audio[0])[0, 1] > 0.9


def test_ucf101_split_files(tmp_path):
    """Official split files are copied; the ucf101 reader finds the same rows, classes and splits in DST."""
    src = tmp_path / "ucf"
    lists = src / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 Archery\n2 Bowling\n")
    (lists / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 1\nBowling/v_Bowling_g01_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("Bowling/v_Bowling_g02_c01.avi\n")
    for rel in ("Archery/v_Archery_g01_c01.avi", "Bowling/v_Bowling_g01_c01.avi", "Bowling/v_Bowling_g02_c01.avi"):
        write_mp4(src / "UCF-101" / rel, _source(6), FPS)
    report = prepare_dataset(src, tmp_path / "p", params_for(None, {"short_side": 24}), workers=0, progress=False)
    assert report.encoded == 3 and report.copied == 3
    for split in ("train", "test"):
        a, b = load_manifest(src, "ucf101", split=split), load_manifest(tmp_path / "p", "ucf101", split=split)
        assert a.relative_paths().tolist() == b.relative_paths().tolist() and len(b) == (2 if split == "train" else 1)
        assert a.labels.tolist() == b.labels.tolist() and a.class_names == b.class_names


def test_audio_goes_to_a_wav_sidecar_by_default(csv_src, prepared):
    """audio=wav (the default): the prepared video has no audio stream, its mono audio is 16-bit
    PCM beside it, the readers take it (same window as the source) and ``glocal scan`` sees audio."""
    dst, _, _ = prepared
    video = dst / "v" / "a.mp4"
    with av.open(str(video)) as c:
        assert not c.streams.audio
    side = find_sidecar(video)
    assert side is not None and (side.sample_rate, side.channels, side.dtype) == (8000, 1, "<i2")
    assert side.start == pytest.approx(0.0) and side.end == pytest.approx(2.0, abs=1e-3)  # the source's declared end
    a = read_clip(csv_src / "v" / "a.mp4", 0.3, 4, 10.0, audio_duration=1.0, sample_rate=8000)
    b = read_clip(video, 0.3, 4, 10.0, audio_duration=1.0, sample_rate=8000)
    assert b.audio_valid.all() and np.abs(a.audio - b.audio).max() < 0.02
    check = check_file(video)
    assert check.has_audio and not [k for k, _ in check.problems if "audio" in k], check.problems
    assert not list(dst.rglob(".*"))  # no temporary file left


def test_audio_aac_keeps_it_inside(csv_src, tmp_path):
    params = params_for(None, {"short_side": 24, "max_fps": 10, "sample_rate": 8000, "audio": "aac"})
    prepare_dataset(csv_src, tmp_path / "p", params, workers=0, progress=False, log=lambda _: None)
    video = tmp_path / "p" / "v" / "a.mp4"
    with av.open(str(video)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert find_sidecar(video) is None and probe(video).audio_file == ""


def test_record_from_before_the_codec_and_audio_keys(csv_src, tmp_path):
    """A DST prepared before ``codec`` and ``audio`` existed holds H.264 and AAC: resuming it with
    the new defaults is refused by name, with codec=h264 audio=aac it resumes."""
    params = params_for(None, {"short_side": 24, "max_fps": 10, "audio": "aac", "codec": "h264"})
    prepare_dataset(csv_src, tmp_path / "p", params, workers=0, progress=False, log=lambda _: None)
    with av.open(str(tmp_path / "p" / "v" / "a.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    rec = json.loads((tmp_path / "p" / "prepared.json").read_text())
    for key in ("audio", "codec", "qscale"):
        del rec["params"][key]
    (tmp_path / "p" / "prepared.json").write_text(json.dumps(rec))
    with pytest.raises(Exception, match="codec='h264' \\(now 'mpeg4'\\).*audio='aac' \\(now 'wav'\\)"):
        prepare_dataset(csv_src, tmp_path / "p", params_for(None, {"short_side": 24, "max_fps": 10}), workers=0,
                        progress=False)
    again = prepare_dataset(csv_src, tmp_path / "p", params, workers=0, progress=False, log=lambda _: None)
    assert again.skipped == 2


def test_preparing_a_prepared_copy_carries_its_sidecars(prepared, tmp_path):
    dst, _, _ = prepared
    report = prepare_dataset(dst, tmp_path / "again", params_for(None, {"short_side": 16, "max_fps": 10,
                                                                        "sample_rate": 8000}),
                             workers=0, progress=False, log=lambda _: None)
    assert report.encoded == 2
    video = tmp_path / "again" / "v" / "a.mp4"
    assert find_sidecar(video) is not None and probe(video).has_audio
    assert (tmp_path / "again" / "v" / "a.mp4.audio.wav").read_bytes() == (dst / "v" / "a.mp4.audio.wav").read_bytes()


def test_broken_or_silent_sources_leave_no_sidecar(prepared, tmp_path):
    dst, _, _ = prepared
    assert not (dst / "v" / "bad.mp4.audio.wav").exists()
    src = tmp_path / "s"
    write_mp4(src / "mute.mp4", _source(10), FPS)  # no audio stream
    prepare_dataset(src, tmp_path / "p", params_for(None, {"short_side": 24}), workers=0, progress=False)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["mute.mp4", "prepared.json"]
    assert not probe(tmp_path / "p" / "mute.mp4").has_audio


def test_mpeg4_quantiser_is_honoured(csv_src, tmp_path):
    """codec=mpeg4 (the default) encodes at the fixed quantiser asked for: a coarser one, fewer bytes."""
    sizes = {}
    for q in (2, 12):
        prepare_dataset(csv_src, tmp_path / f"q{q}", params_for(None, {"short_side": 24, "qscale": q}), workers=0,
                        progress=False, log=lambda _: None)
        video = tmp_path / f"q{q}" / "v" / "a.mp4"
        with av.open(str(video)) as c:
            assert c.streams.video[0].codec_context.name == "mpeg4"
        sizes[q] = video.stat().st_size
    assert sizes[12] < 0.7 * sizes[2], sizes
