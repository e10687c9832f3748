"""MultiViewDataset: one decode per sample, exact cuts, region geometry on pixels, determinism."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal.data import io as gio
from glocal.data.av_writer import write_mp4
from glocal.data.dataset import MultiViewDataset, collate_samples
from glocal.data.io import read_window
from glocal.data.manifest import read_manifest
from glocal.data.samplers import ContiguousClipSampler, GlobalLocalSampler, SpeedDirectionSampler
from glocal.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, CropParams, compose_crop
from glocal.data.views import SamplePlan, ViewRequest

SR = 16000
XYT_FPS, XYT_T, XYT_H, XYT_W = 16, 24, 48, 64


@dataclass
class FixedSampler:
    """Always the same views (and a constant target)."""

    views: list[ViewRequest]
    targets: dict = field(default_factory=lambda: {"answer": 42})

    def plan(self, rng, origin, duration, fps):
        return SamplePlan(list(self.views), dict(self.targets))


class RawFrames:
    """Identity 'transform': uint8 (T, H, W, 3) -> float (3, T, H, W), full-frame crop."""

    def __call__(self, frames, rng, crop=None):
        return frames.permute(3, 0, 1, 2).float(), crop or CropParams(0.0, 0.0, 1.0, 1.0)


def manifest_for(tmp_path: Path, *paths: Path, extra: str = ""):
    header = "path,label" + ("," + extra.split("=")[0] if extra else "")
    rows = "".join(f"{p.name},x" + ("," + extra.split("=")[1] if extra else "") + "\n" for p in paths)
    (tmp_path / "m.csv").write_text(header + "\n" + rows)
    return read_manifest(tmp_path / "m.csv")


@pytest.fixture
def xyt_video(tmp_path: Path) -> Path:
    """1.5 s, 16 fps, 64x48: red = column (0..255 over x), green = row, blue = 10 + 10 * frame."""
    yy, xx = np.mgrid[0:XYT_H, 0:XYT_W]
    frames = np.zeros((XYT_T, XYT_H, XYT_W, 3), np.uint8)
    frames[..., 0] = np.round(xx * 255 / (XYT_W - 1))
    frames[..., 1] = np.round(yy * 255 / (XYT_H - 1))
    frames[..., 2] = (10 + 10 * np.arange(XYT_T))[:, None, None]
    return write_mp4(tmp_path / "xyt.mp4", frames, XYT_FPS, crf=10)


def snap(t: float) -> float:
    return round(t * SR) / SR


def test_views_cut_from_one_decode_equal_separate_reads(tmp_path, tiny_av_video, monkeypatch):
    views = [
        ViewRequest("a", np.array([0.1, 0.3, 0.5]), audio=(0.1, 0.5)),
        ViewRequest("b", np.array([1.5, 1.2, 0.9]), audio=(0.9037, 0.4), reverse_audio=True),
        ViewRequest("c", np.array([1.9]), transform="clip"),
    ]
    ds = MultiViewDataset(manifest_for(tmp_path, tiny_av_video), FixedSampler(views), {"clip": RawFrames()})
    calls = []
    original = gio.MediaReader.read_window

    def counting(self, *args, **kwargs):
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(gio.MediaReader, "read_window", counting)
    s = ds[0]
    assert len(calls) == 1  # one decode of the union window
    (t0, t1), kw = calls[0]
    assert (t0, t1) == (0.1, 1.9) and kw["audio"][0] == snap(0.1)
    monkeypatch.undo()
    for v in views:
        alone = read_window(tiny_av_video, v.times.min(), v.times.max(), keep=v.times)
        expected = torch.from_numpy(alone.frames_at(v.times)).permute(3, 0, 1, 2).float()
        assert torch.equal(s[f"{v.name}/video"], expected), v.name
        np.testing.assert_array_equal(s[f"{v.name}/times"].numpy(), v.times)
        if v.audio is not None:
            start = snap(v.audio[0])
            sep = read_window(tiny_av_video, start, start, read_video=False, audio=(start, v.audio[1])).audio[0]
            if v.reverse_audio:
                sep = sep[::-1].copy()
            assert torch.equal(s[f"{v.name}/audio"], torch.from_numpy(sep)), v.name
            assert bool(s[f"{v.name}/audio_mask"])
    assert "c/audio" not in s and int(s["target/answer"]) == 42
    # Frame on screen at each time: grey level 10 + 7 k of frame k = floor(16 t).
    grey = s["b/video"].mean(dim=(0, 2, 3))
    assert torch.allclose(grey, torch.tensor([10 + 7 * 24, 10 + 7 * 19, 10 + 7 * 14.0]), atol=3)


def test_audio_speed_and_reversal_in_dataset(tmp_path, tiny_av_video):
    views = [
        ViewRequest("f", np.zeros(0), audio=(0.2, 1.0), audio_speed=2.0),
        ViewRequest("r", np.zeros(0), audio=(0.2, 1.0), audio_speed=2.0, reverse_audio=True),
        ViewRequest("n", np.zeros(0), audio=(0.2, 1.0)),
    ]
    s = MultiViewDataset(manifest_for(tmp_path, tiny_av_video), FixedSampler(views), {})[0]
    assert s["f/audio"].shape == (8000,) and s["n/audio"].shape == (16000,)
    assert torch.equal(s["r/audio"], s["f/audio"].flip(0))
    spec = np.abs(np.fft.rfft(s["f/audio"].numpy() * np.hanning(8000)))
    assert abs(np.argmax(spec) * SR / 8000 - 880) < 6  # the 440 Hz tone, played twice as fast
    assert "f/video" not in s
    stretched = MultiViewDataset(manifest_for(tmp_path, tiny_av_video), FixedSampler(views), {}, speed_mode="stretch")[0]
    assert stretched["f/audio"].shape == (8000,) and torch.equal(stretched["r/audio"], stretched["f/audio"].flip(0))
    spec = np.abs(np.fft.rfft(stretched["f/audio"].numpy() * np.hanning(8000)))
    assert abs(np.argmax(spec) * SR / 8000 - 440) < 6  # twice as fast, same pitch


def test_speed_direction_views_are_exact_reversals_of_decoded_frames(tmp_path, tiny_av_video):
    ds = MultiViewDataset(
        manifest_for(tmp_path, tiny_av_video),
        SpeedDirectionSampler(num_frames=4, fps=8.0, n_speeds=3, reverse_p=0.5),
        {"clip": RawFrames()},
    )
    backward = 0
    for epoch in range(6):
        ds.set_epoch(epoch)
        s = ds[0]
        for c in "ab":
            times = s[f"{c}/times"].numpy()
            fwd_times = np.sort(times)
            win = read_window(tiny_av_video, fwd_times[0], fwd_times[-1], keep=fwd_times)
            fwd = torch.from_numpy(win.frames_at(fwd_times)).permute(3, 0, 1, 2).float()
            if int(s[f"target/dir_{c}"]):
                backward += 1
                assert torch.equal(s[f"{c}/video"], fwd.flip(1))
            else:
                assert torch.equal(s[f"{c}/video"], fwd)
            assert s[f"{c}/audio"].shape == (8000,)  # 4 frames / 8 fps of audio at any speed
    assert backward > 0


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    """(3, T, S, S) normalised -> [0, 255]."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    return (x * std + mean) * 255


def test_global_local_boxes_match_decoded_pixels(tmp_path, xyt_video):
    sampler = GlobalLocalSampler(global_frames=8, global_stride=2, local_frames=4, n_local=3)
    tfs = {
        "global": ClipTransform(size=32, scale=(0.4, 1.0), jitter_p=0.0, grayscale_p=0.0),
        "local": ClipTransform(size=24, jitter_p=0.0, grayscale_p=0.0),
    }
    ds = MultiViewDataset(manifest_for(tmp_path, xyt_video), sampler, tfs, with_audio=False)
    flips = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        s = ds[0]
        gcrop = CropParams(*s["global/crop"][:4].tolist(), flip=bool(s["global/crop"][4]))
        flips.add(gcrop.flip)
        g_times = s["global/times"].numpy()
        span = 8 * (g_times[1] - g_times[0])
        boxes = s["target/boxes"].numpy()
        for i in range(3):
            t0, t1, *region = boxes[i].tolist()
            expected_crop = compose_crop(gcrop, tuple(region))
            crop = s[f"local{i}/crop"].tolist()
            assert crop == pytest.approx([*expected_crop.as_list()], abs=1e-6)
            px = _unnormalise(s[f"local{i}/video"])  # (3, 4, 24, 24)
            # red encodes the source column: x_src = (red / 255 * (W - 1) + 0.5) / W
            x_src = (px[0].mean(dim=(0, 1)) / 255 * (XYT_W - 1) + 0.5) / XYT_W  # per output column
            u = (torch.arange(24) + 0.5) / 24
            w = expected_crop.x1 - expected_crop.x0
            want_x = expected_crop.x1 - u * w if gcrop.flip else expected_crop.x0 + u * w
            inner = slice(2, -2)  # borders clamp at the frame edge
            assert torch.allclose(x_src[inner], want_x[inner].float(), atol=1.5 / XYT_W)
            y_src = (px[1].mean(dim=(0, 2)) / 255 * (XYT_H - 1) + 0.5) / XYT_H
            want_y = expected_crop.y0 + u * (expected_crop.y1 - expected_crop.y0)
            assert torch.allclose(y_src[inner], want_y[inner].float(), atol=1.5 / XYT_H)
            # blue encodes the frame: frame k is on screen at local time t0 + k (t1 - t0) / 4
            frame = torch.round((px[2].mean(dim=(1, 2)) - 10) / 10)
            local_t = g_times[0] + (t0 + (t1 - t0) * np.arange(4) / 4) * span
            np.testing.assert_allclose(s[f"local{i}/times"].numpy(), local_t, atol=1e-9)
            assert frame.tolist() == np.floor(local_t * XYT_FPS + 1e-6).tolist()
            assert g_times[0] <= local_t[0] and local_t[-1] < g_times[0] + span
    assert flips == {False, True}


def test_determinism_per_seed_epoch_index(tmp_path, tiny_av_video, tiny_video_no_audio):
    m = manifest_for(tmp_path, tiny_av_video, tiny_av_video)
    tfs = {"global": ClipTransform(size=16), "local": ClipTransform(size=8)}

    def make(seed=0):
        return MultiViewDataset(m, GlobalLocalSampler(global_frames=4, local_frames=2, n_local=2), tfs, seed=seed)

    a, b = make(), make()
    s1, s2 = a[1], b[1]
    assert s1.keys() == s2.keys()
    for k, v in s1.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, s2[k]), k
    assert not torch.equal(a[0]["target/boxes"], s1["target/boxes"])  # index matters
    assert not torch.equal(make(seed=1)[1]["target/boxes"], s1["target/boxes"])  # seed matters
    a.set_epoch(3)
    assert not torch.equal(a[1]["target/boxes"], s1["target/boxes"])  # epoch matters
    a.set_epoch(0)
    assert torch.equal(a[1]["global/video"], s1["global/video"])
    batch = collate_samples([s1, s2])
    assert batch["global/video"].shape == (2, 3, 4, 16, 16) and batch["target/boxes"].shape == (2, 2, 6)
    assert batch["local0/crop"].shape == (2, 5) and "global/audio" not in batch


def test_augment_on_device_gives_uint8_views_that_finish_to_the_float_sample(tmp_path, tiny_av_video):
    from glocal.data.photometric import finish_batch

    m = manifest_for(tmp_path, tiny_av_video, tiny_av_video)
    tfs = {"global": ClipTransform(size=16, blur_p=0.5), "local": ClipTransform(size=8, per_frame=True)}

    def make(on_device):
        sampler = GlobalLocalSampler(global_frames=4, local_frames=2, n_local=2)
        return MultiViewDataset(m, sampler, tfs, augment_on_device=on_device)

    floats, deferred = make(False), make(True)
    for i in range(2):
        ref, s = floats[i], deferred[i]
        assert s["global/video"].dtype == torch.uint8 and s["global/photo"].shape == (14,)
        assert s["local0/photo"].shape == (2, 14)  # per-frame draws
        assert set(s) - set(ref) == {"global/photo", "local0/photo", "local1/photo"}
        out = finish_batch(collate_samples([s]))
        for k in ref:
            if k.endswith("/video"):  # local views are composed sub-pixel crops: uint8 rounding
                torch.testing.assert_close(out[k][0], ref[k], atol=0.05 if k.startswith("local") else 2e-5, rtol=0)
            elif isinstance(ref[k], torch.Tensor):
                assert torch.equal(out[k][0], ref[k]), k


def test_missing_audio_silence_has_mask_and_right_length(tmp_path, tiny_video_no_audio):
    views = [ViewRequest("a", np.array([0.0, 0.5]), audio=(0.0, 1.0), audio_speed=4.0)]
    m = manifest_for(tmp_path, tiny_video_no_audio)
    s = MultiViewDataset(m, FixedSampler(views), {"clip": RawFrames()}, missing_audio="silence")[0]
    assert s["a/audio"].shape == (4000,) and not bool(s["a/audio_mask"]) and s["a/audio"].abs().sum() == 0
    with pytest.raises(Exception, match="no audio stream"):
        MultiViewDataset(m, FixedSampler(views), {"clip": RawFrames()})[0]


def test_manifest_start_end_narrow_the_timeline(tmp_path, tiny_av_video):
    m = manifest_for(tmp_path, tiny_av_video, extra="start,end=0.5,1.25")
    ds = MultiViewDataset(m, ContiguousClipSampler(4, 16.0), {"clip": RawFrames()})
    for epoch in range(10):
        ds.set_epoch(epoch)
        times = ds[0]["clip/times"].numpy()
        assert times[0] >= 0.5 and times[-1] + 1 / 16 <= 1.25 + 1e-9


def test_audio_only_file_through_the_same_api(tmp_path):
    x = (0.4 * np.sin(2 * np.pi * 300 * np.arange(SR) / SR) * 32767).astype("<i2")
    path = tmp_path / "sound.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(x.tobytes())
    views = [ViewRequest("s", np.zeros(0), audio=(0.25, 0.5))]
    s = MultiViewDataset(manifest_for(tmp_path, path), FixedSampler(views), {})[0]
    assert s["s/audio"].shape == (8000,) and bool(s["s/audio_mask"])
    np.testing.assert_allclose(s["s/audio"].numpy(), x[4000:12000] / 32767, atol=1e-4)


def test_collate_in_a_worker_stacks_into_shared_memory(monkeypatch):
    from types import SimpleNamespace

    import glocal.data.dataset as dmod

    samples = [{"v": torch.full((2, 3), float(i)), "t": torch.tensor(i), "skipped": [f"s{i}"]} for i in range(3)]
    plain = collate_samples(samples)
    monkeypatch.setattr(dmod.torch.utils.data, "get_worker_info", lambda: SimpleNamespace(num_workers=2))
    shared = collate_samples(samples)
    assert shared["v"].is_shared() and not plain["v"].is_shared()
    assert torch.equal(shared["v"], plain["v"]) and torch.equal(shared["t"], plain["t"])
    assert shared["skipped"] == ["s0", "s1", "s2"]
