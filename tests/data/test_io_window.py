"""read_window / select_frames / MediaReader: one decode of a window, frames picked by pts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glocal.data.io import MediaReader, read_audio, read_clip, read_window, select_frames

FPS, SR = 16, 16000


def ramp_index(frames: np.ndarray) -> np.ndarray:
    return np.round((frames.reshape(len(frames), -1).mean(axis=1) - 10) / 7).astype(int)


def test_select_frames_is_frame_on_screen():
    pts = np.array([0.0, 0.04, 0.05, 0.2])
    times = np.array([-1.0, 0.0, 0.039, 0.04, 0.1, 0.2, 5.0])
    assert select_frames(pts, times).tolist() == [0, 0, 0, 1, 2, 3, 3]
    assert select_frames(pts, times[::-1]).tolist() == [3, 3, 2, 1, 0, 0, 0]
    assert select_frames(pts, np.array([0.0399]), tolerance=1e-3).tolist() == [1]
    with pytest.raises(ValueError):
        select_frames(np.zeros(0), times)


def test_window_holds_every_frame_on_screen_once(tiny_av_video: Path):
    win = read_window(tiny_av_video, 0.53, 1.0)
    # frames 8 (on screen at 0.53) .. 16 (pts 1.0), each once, in order
    assert ramp_index(win.frames).tolist() == list(range(8, 17))
    np.testing.assert_allclose(win.pts, np.arange(8, 17) / FPS)
    assert win.frames.shape[1:] == (32, 32, 3) and win.frames.dtype == np.uint8
    times = np.array([1.0, 0.53, 0.7, 0.7])
    assert ramp_index(win.frames_at(times)).tolist() == [16, 8, 11, 11]
    assert win.audio.shape == (1, round(0.47 * SR)) and win.audio_start == 0.53


def test_keep_converts_only_needed_frames_and_matches_read_clip(tiny_av_video: Path):
    times = 0.25 + np.arange(6) / 8.0  # every other frame
    win = read_window(tiny_av_video, times[0], times[-1], keep=times, read_audio=False)
    assert len(win.frames) == 6 and win.audio is None
    clip = read_clip(tiny_av_video, 0.25, 6, 8.0, read_audio=False)
    np.testing.assert_array_equal(win.frames_at(times), clip.frames)
    with pytest.raises(ValueError, match="keep"):
        read_window(tiny_av_video, 0.5, 0.6, keep=np.array([0.1]))


def test_audio_cut_from_window_equals_separate_read(tiny_av_video: Path):
    win = read_window(tiny_av_video, 0.0, 0.0, read_video=False, audio=(0.25, 1.5))
    for start, dur in [(0.5, 0.5), (0.25, 1.5), (1.0, 0.75)]:
        cut, valid = win.audio_at(start, dur)
        sep, sep_valid = read_audio(tiny_av_video, start, dur)
        np.testing.assert_array_equal(cut, sep)
        np.testing.assert_array_equal(valid, sep_valid)
    outside, valid = win.audio_at(1.5, 0.5)  # half of it beyond the decoded window
    assert outside.shape == (1, 8000) and valid[:4000].all() and not valid[4000:].any()


def test_int_size_keeps_aspect_and_reader_reuse(tmp_path: Path):
    from glocal.data.av_writer import write_mp4

    frames = np.full((8, 32, 64, 3), 100, np.uint8)
    path = write_mp4(tmp_path / "wide.mp4", frames, FPS)
    with MediaReader(path) as reader:
        start, duration = reader.video_span()
        assert start == 0.0 and duration == pytest.approx(0.5)
        a = reader.read_window(0.0, 0.2, size=16)
        b = reader.read_window(0.1, 0.3, size=(10, 12))
    assert a.frames.shape[1:] == (16, 32, 3) and b.frames.shape[1:] == (10, 12, 3)
    assert a.audio is None


def _moving(num_frames: int, size: int = 32) -> np.ndarray:
    """Moving texture (so the encoder uses P and B frames); blue = 10 + 5 * frame index."""
    yy, xx = np.mgrid[0:size, 0:size]
    planes = [[(xx * 4 + 3 * k) % 256, (yy * 4 + 5 * k) % 256, np.full_like(xx, 10 + 5 * k)] for k in range(num_frames)]
    return np.stack([np.stack(p, -1) for p in planes]).clip(0, 255).astype(np.uint8)


def _all_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import av

    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return np.stack([f.to_ndarray(format="rgb24") for f in frames]), np.array([float(f.pts * f.time_base) for f in frames])


def test_sparse_times_equal_a_full_decode_and_drop_frames(tmp_path: Path, monkeypatch):
    from glocal.data import io as gio
    from glocal.data.av_writer import write_mp4

    path = write_mp4(tmp_path / "moving.mp4", _moving(48), FPS)
    ref, pts = _all_frames(path)
    seen = []
    original = gio._WindowCollector.push
    monkeypatch.setattr(gio._WindowCollector, "push", lambda self, f, t: seen.append(t) or original(self, f, t))
    rng = np.random.default_rng(0)
    for _ in range(5):
        times = np.sort(rng.uniform(0, 3.0, 5))
        seen.clear()
        win = read_window(path, times[0], times[-1], keep=times, read_audio=False)
        np.testing.assert_array_equal(win.frames_at(times), ref[select_frames(pts, times)])
        assert len(seen) < np.sum((pts <= times[-1] + 1 / FPS))  # unneeded B-frames were dropped


def test_vfr_gap_with_sparse_times(tmp_path: Path):
    from fractions import Fraction

    import av

    pts_ms = list(range(0, 1000, 40)) + list(range(3000, 4000, 40))
    frames = _moving(len(pts_ms))
    path = tmp_path / "gap.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(1000, 1))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for img, p in zip(frames, pts_ms):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = p, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    ref, pts = _all_frames(path)
    times = np.array([0.5, 1.5, 2.9, 3.5])  # 1.5 and 2.9 show the last frame before the gap
    win = read_window(path, times[0], times[-1], keep=times, read_audio=False)
    np.testing.assert_array_equal(win.frames_at(times), ref[select_frames(pts, times)])


def test_a_dropped_frame_that_is_on_screen_is_detected(tmp_path: Path, monkeypatch):
    # Pretend frames are on screen for a tiny fraction of their interval: frames shown at
    # mid-interval times get dropped, the miss is detected and the window decoded again.
    from glocal.data import io as gio
    from glocal.data.av_writer import write_mp4

    path = write_mp4(tmp_path / "moving.mp4", _moving(48), FPS)
    ref, pts = _all_frames(path)
    monkeypatch.setattr(gio, "_SHOW_HORIZON_FRAMES", 0.01)
    drops = []
    original = gio._collect

    def spy(*args):
        drops.append(args[6])
        return original(*args)

    monkeypatch.setattr(gio, "_collect", spy)
    times = (np.arange(10, 30) + 0.5) / FPS
    win = read_window(path, times[0], times[-1], keep=times, read_audio=False)
    np.testing.assert_array_equal(win.frames_at(times), ref[select_frames(pts, times)])
    assert drops == [True, False]
