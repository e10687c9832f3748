"""Tests of the generated audio-visual world (``glocal.data.synth``) on tiny worlds."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from glocal.config import check
from glocal.data.synth import SHAPES, WorldConfig, generate_world
from glocal.data.synth.render_audio import render_audio
from glocal.data.synth.render_video import object_colors, render_frames
from glocal.data.synth.scene import min_flash_gap
from glocal.data.synth.world import MANIFEST_COLUMNS, FAKE_MANIFEST_COLUMNS, plan_world, video_scene
from glocal.errors import ConfigError

TINY = dict(num_videos=12, duration=1.0, height=32, width=32)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldConfig, Path, dict]:
    """One tiny world shared by the read-only tests (fakes for every split)."""
    cfg = WorldConfig(**TINY, fake_splits=("train", "val", "test"))
    out = tmp_path_factory.mktemp("world")
    summary = generate_world(cfg, out, workers=1, progress=False)
    return cfg, out, summary


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Decoded ``(frames (T, H, W, 3) uint8, audio (N,) float32, audio sample rate)``."""
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.rate
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(stream)])
    return frames, audio.astype(np.float32), rate


def _local_peaks(x: np.ndarray, min_height: float) -> np.ndarray:
    """Indices k with x[k] > x[k-1] (or k = 0), x[k] >= x[k+1] and x[k] - min(x) > min_height."""
    left = np.concatenate([[-np.inf], x[:-1]])
    right = np.concatenate([x[1:], [-np.inf]])
    return np.flatnonzero((x > left) & (x >= right) & (x - x.min() > min_height))


def _brightness(scene, obj_index: int) -> np.ndarray:
    """Per-frame luminance ``(T,)`` of one object rendered alone on black: the max over pixels,
    i.e. the colour of its fully covered pixels (independent of size and anti-aliasing)."""
    frames = render_frames(scene, objects=[obj_index], background=False).astype(np.float64)
    lum = frames @ np.array([0.299, 0.587, 0.114])
    return lum.reshape(len(lum), -1).max(axis=1)


def _audio_onsets(x: np.ndarray, sr: int, low: float = 0.05, high: float = 0.25) -> np.ndarray:
    """Energy onsets (s): starts of the segments where a 4 ms RMS envelope exceeds ``low * max``
    (gaps < 5 ms bridged) whose peak exceeds ``high * max`` (hysteresis against tail wiggles)."""
    win = max(1, int(0.004 * sr))
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(win) / win, mode="same"))
    above = np.flatnonzero(env > low * env.max())
    if above.size == 0:
        return np.zeros(0)
    breaks = np.flatnonzero(np.diff(above) > 0.005 * sr)
    starts = above[np.concatenate([[0], breaks + 1])]
    stops = above[np.concatenate([breaks, [above.size - 1]])]
    loud = np.array([env[a : b + 1].max() > high * env.max() for a, b in zip(starts, stops)])
    # the centred window reacts win/2 samples early
    return (starts[loud] + win / 2) / sr


# ---------------------------------------------------------------------------- files & formats
def test_manifest_annotations_and_files(world):
    cfg, out, summary = world
    assert summary["skipped"] is False and summary["num_videos"] == 12
    header, rows = _read_csv(out / "manifest.csv")
    assert header == list(MANIFEST_COLUMNS)
    assert [r["path"] for r in rows] == [f"videos/{i:06d}.mp4" for i in range(12)]
    ann = json.loads((out / "annotations.json").read_text())
    assert ann["format"] == "glocal-annotations-v1"
    assert ann["classes"] == list(SHAPES[:6]) and ann["rhythm_classes"] == ["regular", "pairs", "triplets"]
    for r in rows:
        assert r["label"] in ann["classes"] and r["sound_label"] == r["label"]
        assert r["rhythm_label"] in ann["rhythm_classes"] and r["split"] in ("train", "val", "test")
        assert 1 <= int(r["fold"]) <= 5 and float(r["duration"]) == 1.0 and int(r["fps"]) == 16
        a = ann["videos"][r["path"]]
        assert (a["label"], a["rhythm"]) == (r["label"], r["rhythm_label"])
        assert a["num_frames"] == 16 and len(a["source_boxes"]) == 16
        boxes = np.array(a["source_boxes"] + [b for d in a["distractors"] for b in d["boxes"]])
        assert ((boxes >= 0) & (boxes <= 1)).all() and (boxes[:, 2:] > boxes[:, :2]).all()
        for d in a["distractors"]:
            assert d["label"] != a["label"] and len(d["boxes"]) == 16
        ev = np.array(a["events"])
        assert ev.ndim == 2 and len(ev) >= 1 and (ev[:, 1] > ev[:, 0]).all() and ev.max() <= 1.0
    # Every file decodes: frame count and an audio stream.
    for r in rows[:4]:
        path = out / r["path"]
        with av.open(str(path)) as c:
            assert len(c.streams.audio) == 1 and c.streams.audio[0].rate == cfg.sample_rate
            assert sum(1 for _ in c.decode(video=0)) == 16
    world_json = json.loads((out / "world.json").read_text())
    assert world_json["config"] == cfg.to_dict() and world_json["counts"]["videos"] == 12


def test_classes_folds_splits_balanced():
    cfg = WorldConfig(num_videos=180, num_classes=6, num_rhythms=3)
    plans = plan_world(cfg)
    assert set(Counter(p.label for p in plans).values()) == {30}
    assert set(Counter((p.label, p.rhythm) for p in plans).values()) == {10}
    assert set(Counter((p.label, p.fold) for p in plans).values()) == {6}
    assert Counter(p.split for p in plans) == {"train": 126, "val": 18, "test": 36}
    assert set(Counter((p.label, p.split) for p in plans if p.split == "test").values()) == {6}
    assert sum(p.fake for p in plans) == 36 and all(p.split == "test" for p in plans if p.fake)
    # Uneven sizes: class counts differ by at most one, every split non-empty.
    plans = plan_world(WorldConfig(num_videos=13))
    counts = Counter(p.label for p in plans)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert set(p.split for p in plans) == {"train", "val", "test"}


# ---------------------------------------------------------------------------- determinism
def test_determinism_and_worker_independence(tmp_path):
    cfg = WorldConfig(num_videos=6, duration=1.0, height=32, width=32)
    generate_world(cfg, tmp_path / "a", workers=1, progress=False)
    generate_world(cfg, tmp_path / "b", workers=2, progress=False)
    for name in ("manifest.csv", "annotations.json", "fake/manifest.csv", "world.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    _, fakes = _read_csv(tmp_path / "a" / "fake" / "manifest.csv")
    paths = [f"videos/{i:06d}.mp4" for i in range(6)]
    paths += [f"fake/{r['path']}" for r in fakes if r["label"] == "fake"]
    assert len(paths) > 6
    for rel in paths:
        fa, aa, _ = _decode(tmp_path / "a" / rel)
        fb, ab, _ = _decode(tmp_path / "b" / rel)
        assert np.array_equal(fa, fb) and np.array_equal(aa, ab), rel


def test_different_seed_differs(world, tmp_path):
    cfg, out, _ = world
    other = WorldConfig(**{**cfg.to_dict(), "seed": 1, "num_videos": 3})
    generate_world(other, tmp_path, workers=1, progress=False)
    a = json.loads((out / "annotations.json").read_text())["videos"]["videos/000000.mp4"]
    b = json.loads((tmp_path / "annotations.json").read_text())["videos"]["videos/000000.mp4"]
    assert a["source_boxes"] != b["source_boxes"] and a["events"] != b["events"]
    fa, _, _ = _decode(out / "videos/000000.mp4")
    fb, _, _ = _decode(tmp_path / "videos/000000.mp4")
    assert not np.array_equal(fa, fb)


# ---------------------------------------------------------------------------- ground truth
def test_source_box_contains_source(world):
    cfg, out, _ = world
    ann = json.loads((out / "annotations.json").read_text())["videos"]
    plans = plan_world(cfg)
    for i in range(cfg.num_videos):
        scene = video_scene(cfg, i, plans)
        scale = np.array([cfg.width, cfg.height, cfg.width, cfg.height])
        boxes = np.array(ann[f"videos/{i:06d}.mp4"]["source_boxes"]) * scale
        frames = render_frames(scene, objects=[0], background=False)
        color_max = object_colors(scene, scene.objects[0]).max(axis=1)
        for k in range(cfg.num_frames):
            mask = frames[k].max(axis=-1) > 0.5 * 255 * color_max[k]  # pixel centres inside
            ys, xs = np.nonzero(mask)
            measured = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            # The box contains every pixel centre inside the shape (to 0.1 px) and is tight:
            # sharp tips (star, triangle) can reach ~2 px past the last pixel centre inside.
            assert (boxes[k, :2] <= measured[:2] + 0.5 + 0.1).all(), (i, k, measured, boxes[k])
            assert (boxes[k, 2:] >= measured[2:] - 0.5 - 0.1).all(), (i, k, measured, boxes[k])
            assert np.abs(measured - boxes[k]).max() <= 2.0, (i, k, measured, boxes[k])


def test_onsets_match_flashes_and_audio(world):
    cfg, _, _ = world
    plans = plan_world(cfg)
    gap = min_flash_gap(cfg.fps)
    for i in range(cfg.num_videos):
        scene = video_scene(cfg, i, plans)
        onset_frames = scene.onsets * cfg.fps
        # Source brightness peaks <-> sound onsets, within one frame (both directions).
        peaks = _local_peaks(_brightness(scene, 0), min_height=5.0)
        assert len(peaks) == len(onset_frames), (i, peaks, onset_frames)
        assert np.abs(peaks[:, None] - onset_frames[None, :]).min(axis=0).max() <= 1.0
        # Audio energy onsets of the event waveform <-> annotated onsets, within 20 ms.
        parts = render_audio(scene)
        assert np.abs(parts.mix).max() <= 0.9 + 1e-6
        detected = _audio_onsets(parts.signal, cfg.sample_rate)
        d = np.abs(detected[:, None] - scene.onsets[None, :])
        assert d.min(axis=0).max() <= 0.02 and d.min(axis=1).max() <= 0.02, (i, detected, scene.onsets)
        # Distractor flashes never coincide with a sound onset (scene and rendered frames).
        for j in range(1, len(scene.objects)):
            flashes = scene.objects[j].flashes
            if len(flashes):
                assert np.abs(flashes[:, None] - scene.onsets[None, :]).min() >= gap
            dpeaks = _local_peaks(_brightness(scene, j), min_height=5.0)
            if len(dpeaks):
                assert np.abs(dpeaks[:, None] - onset_frames[None, :]).min() > 1.0


def test_audio_onsets_in_mix_at_high_snr():
    cfg = WorldConfig(**TINY, noise_snr_db=(30.0, 30.0))
    plans = plan_world(cfg)
    for i in range(6):
        scene = video_scene(cfg, i, plans)
        detected = _audio_onsets(render_audio(scene).mix, cfg.sample_rate)
        d = np.abs(detected[:, None] - scene.onsets[None, :])
        assert d.min(axis=0).max() <= 0.02 and d.min(axis=1).max() <= 0.02, (i, detected, scene.onsets)


# ---------------------------------------------------------------------------- fakes
def test_fake_manifest_and_shifted_audio(world):
    cfg, out, summary = world
    header, rows = _read_csv(out / "fake" / "manifest.csv")
    assert header == list(FAKE_MANIFEST_COLUMNS)
    assert summary["num_fake"] == 12
    assert Counter(r["label"] for r in rows) == {"real": 12, "fake": 12}
    _, manifest = _read_csv(out / "manifest.csv")
    split_of = {r["path"]: r["split"] for r in manifest}
    manipulations = set()
    for real, fake in zip(rows[0::2], rows[1::2]):
        assert real["label"] == "real" and fake["label"] == "fake"
        assert real["path"] == real["source"] == fake["source"]
        original = (out / "fake" / real["path"]).resolve()
        assert original == (out / real["path"][3:]).resolve() and original.exists()
        assert real["split"] == fake["split"] == split_of[real["path"][3:]]
        assert real["manipulation"] == "none" and float(real["shift"]) == 0.0
        manipulations.add(fake["manipulation"])
        if fake["manipulation"] == "audio_shift":
            shift = float(fake["shift"])
            assert 0.3 <= abs(shift) <= 0.7 + 1e-9  # duration 1 s caps the shift at 0.7 s
    assert manipulations == {"audio_shift", "event_desync"}
    # Decode one shifted fake: same frames, different audio, circularly shifted by `shift`.
    real, fake = next((a, b) for a, b in zip(rows[0::2], rows[1::2]) if b["manipulation"] == "audio_shift")
    fr, ar, sr = _decode(out / "fake" / real["path"])
    ff, af, _ = _decode(out / "fake" / fake["path"])
    assert np.array_equal(fr, ff)
    n = min(len(ar), len(af), int(cfg.duration * sr))
    ar, af = ar[:n], af[:n]
    assert not np.allclose(ar, af, atol=1e-2)
    xc = np.fft.irfft(np.fft.rfft(af) * np.conj(np.fft.rfft(ar)), n=n)
    lag = int(np.argmax(xc))  # samples by which the fake lags the original
    err = (lag / sr - float(fake["shift"])) % cfg.duration  # circular shift: compare mod D
    assert min(err, cfg.duration - err) < 0.03


# ---------------------------------------------------------------------------- config & policy
@pytest.mark.parametrize(
    "bad, option",
    [
        (dict(height=33), "height"),
        (dict(width=30), "width"),
        (dict(num_classes=len(SHAPES) + 1), "num_classes"),
        (dict(num_videos=-1), "num_videos"),
        (dict(max_distractors=-1), "max_distractors"),
        (dict(num_rhythms=0), "num_rhythms"),
        (dict(noise_snr_db=(20, 0)), "noise_snr_db"),
        (dict(fake_fraction=1.5), "fake_fraction"),
        (dict(fake_splits=("dev",)), "fake_splits"),
        (dict(train_fraction=0.9), "train_fraction"),
        (dict(seed=-3), "seed"),
        (dict(duration=0.2), "duration"),
        (dict(fps=8), "fps"),
        (dict(color_mode="shape"), "color_mode"),
        (dict(class_hue_jitter=0.7), "class_hue_jitter"),
        (dict(object_radius=(0.3, 0.2)), "object_radius"),
    ],
)
def test_config_errors(bad, option, tmp_path):
    with pytest.raises(ConfigError, match=option):
        WorldConfig.from_dict(bad)
    with pytest.raises(ConfigError, match=option):  # made directly: checked before anything is generated
        generate_world(WorldConfig(**bad), tmp_path / "w", workers=1, progress=False)
    assert not (tmp_path / "w").exists()


def test_config_dict_roundtrip_and_unknown_key():
    cfg = WorldConfig.from_dict({"noise_snr_db": [5, 10], "fake_splits": ["val", "test"]})
    assert cfg.noise_snr_db == (5.0, 10.0) and cfg.fake_splits == ("val", "test")
    assert WorldConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert check(WorldConfig(noise_snr_db=[5, 10], fake_splits=["val", "test"])) == cfg  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="colour"):
        WorldConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="fake_splits"):
        WorldConfig.from_dict({"fake_splits": ["test", "test"]})


def test_overwrite_policy(tmp_path):
    cfg = WorldConfig(num_videos=2, duration=1.0, height=32, width=32, fake_fraction=0.0)
    assert generate_world(cfg, tmp_path, workers=1, progress=False)["skipped"] is False
    assert generate_world(cfg, tmp_path, workers=1, progress=False)["skipped"] is True
    other = WorldConfig(**{**cfg.to_dict(), "seed": 5})
    with pytest.raises(ConfigError, match="overwrite"):
        generate_world(other, tmp_path, workers=1, progress=False)
    summary = generate_world(other, tmp_path, workers=1, progress=False, overwrite=True)
    assert summary["skipped"] is False
    assert json.loads((tmp_path / "world.json").read_text())["config"]["seed"] == 5
    with pytest.raises(ConfigError, match="workers"):
        generate_world(other, tmp_path / "x", workers=0, progress=False)


def _hue(rgb: np.ndarray) -> float:
    import colorsys

    return colorsys.rgb_to_hsv(*[float(x) for x in rgb])[0]


def test_class_color_mode_ties_hue_to_shape_class():
    """With color_mode=class every object's hue is its class hue within the jitter; with the
    default (random) mode colours are not tied to the class."""
    jitter = 0.03
    cfg = WorldConfig(num_videos=60, num_classes=6, max_distractors=2, color_mode="class", class_hue_jitter=jitter)
    plans = plan_world(cfg)
    for i in range(cfg.num_videos):
        for obj in video_scene(cfg, i, plans).objects:
            d = abs(_hue(obj.color) - obj.shape / cfg.num_classes)
            assert min(d, 1.0 - d) <= jitter + 1e-6, (i, obj.shape_name)
    rand = WorldConfig(num_videos=60, num_classes=6, max_distractors=0, color_mode="random")
    plans = plan_world(rand)
    hues = [_hue(video_scene(rand, i, plans).objects[0].color) for i in range(rand.num_videos)]
    off = [min(abs(h - p.label / 6), 1 - abs(h - p.label / 6)) for h, p in zip(hues, plans)]
    assert max(off) > 0.1
