"""WAV sidecars (``NAME.EXT.audio.wav``): the header, the fast read against FFmpeg's decode of the
same file, the readers' rule (a file without audio takes the sidecar's), timing, the slow path."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest

from glocal.data.audio_sidecar import SidecarWriter, find_sidecar, read_header, read_samples, remove_sidecar, sidecar_path
from glocal.data.av_writer import write_mp4
from glocal.data.io import MediaReader, probe, read_audio, read_clip
from glocal.errors import DataError

SR = 8000


def _tone(n: int, f: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f * np.arange(n) / SR)).astype(np.float32)


def _write(path: Path, x: np.ndarray, start: float = 0.0, rate: int = SR) -> None:
    w = SidecarWriter(path, rate, x.shape[0], start=start)
    for k in range(0, x.shape[1], 1000):  # in pieces, as the encoder delivers them
        w.write(x[:, k : k + 1000])
    w.close()


def _ffmpeg_decode(path: Path) -> np.ndarray:
    """Reference: FFmpeg's own decode of the WAV, float ``(C, N)``."""
    parts = []
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            a = f.to_ndarray()
            if f.format.is_packed:  # interleaved (1, S * C) -> (C, S)
                a = a.reshape(-1, len(f.layout.channels)).T
            parts.append(a.astype(np.float32) / 32768.0 if a.dtype.kind == "i" else a.astype(np.float32))
    return np.concatenate(parts, axis=1)


def test_header_and_round_trip(tmp_path):
    x = _tone(12_345)[None]
    _write(tmp_path / "a.wav", x, start=0.25)
    info = read_header(tmp_path / "a.wav")
    assert (info.sample_rate, info.channels, info.dtype, info.frames, info.start) == (SR, 1, "<i2", 12_345, 0.25)
    assert info.end == pytest.approx(0.25 + 12_345 / SR)
    assert not list(tmp_path.glob(".*"))  # the temporary name is gone
    got, valid = read_samples(info, 0.25, 12_345)
    assert valid.all() and np.abs(got - x).max() <= 1 / 32768 + 1e-7


def test_fast_read_matches_ffmpeg_decode(tmp_path):
    """Any window read by seek + read equals the same samples of FFmpeg's decode of the file (a
    plain WAV any player reads; FFmpeg skips the ``glst`` chunk)."""
    x = np.stack([_tone(20_000), _tone(20_000, 660.0, 0.3)])
    _write(tmp_path / "s.wav", x)
    ref = _ffmpeg_decode(tmp_path / "s.wav")
    assert ref.shape == (2, 20_000)
    info = read_header(tmp_path / "s.wav")
    for k0, n in [(0, 100), (1234, 16_000), (19_990, 50), (-30, 60)]:
        got, valid = read_samples(info, k0 / SR, n, mono=False)
        want = np.zeros((2, n), np.float32)
        lo, hi = max(k0, 0), min(k0 + n, 20_000)
        want[:, lo - k0 : hi - k0] = ref[:, lo:hi]
        np.testing.assert_array_equal(got, want)
        assert valid.tolist() == [lo <= k0 + i < hi for i in range(n)]


def test_cut_off_and_damaged_files(tmp_path):
    _write(tmp_path / "a.wav", _tone(8000)[None])
    data = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) - 2 * 3000])  # the last 3000 samples lost
    info = read_header(tmp_path / "cut.wav")
    assert info.frames == 5000
    _, valid = read_samples(info, 0.0, 8000)
    assert valid.sum() == 5000
    (tmp_path / "bad.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(DataError, match="bad.wav: not a WAV file"):
        read_header(tmp_path / "bad.wav")
    (tmp_path / "nodata.wav").write_bytes(data[:36])
    with pytest.raises(DataError, match="nodata.wav: WAV without a data chunk"):
        read_header(tmp_path / "nodata.wav")


def test_other_formats_are_not_fast(tmp_path):
    """24-bit PCM parses but is left to FFmpeg; 32-bit float is read directly."""
    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 3, 3, 24)
    body = b"\0" * 30
    wav = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body)) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) \
        + fmt + b"data" + struct.pack("<I", len(body)) + body
    (tmp_path / "p24.wav").write_bytes(wav)
    info = read_header(tmp_path / "p24.wav")
    assert info.dtype == "" and info.frames == 10 and not info.fast(SR, True)
    x = _tone(100)
    fmt = struct.pack("<HHIIHH", 3, 1, SR, SR * 4, 4, 32)
    wav = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + 400) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) \
        + fmt + b"data" + struct.pack("<I", 400) + x.astype("<f4").tobytes()
    (tmp_path / "f32.wav").write_bytes(wav)
    info = read_header(tmp_path / "f32.wav")
    assert info.fast(SR, True) and not info.fast(16000, True)
    np.testing.assert_array_equal(read_samples(info, 0.0, 100)[0][0], x)


@pytest.fixture()
def silent_video(tmp_path) -> Path:
    frames = np.zeros((20, 32, 48, 3), np.uint8)  # 2 s at 10 fps, no audio stream
    return write_mp4(tmp_path / "v.mp4", frames, 10)


def test_readers_take_the_sidecar_of_a_file_without_audio(silent_video):
    assert not probe(silent_video).has_audio
    x = _tone(2 * SR)[None]
    _write(Path(sidecar_path(silent_video)), x, start=0.5)  # sound from 0.5 s on
    info = probe(silent_video)
    assert info.has_audio and info.audio_file == sidecar_path(silent_video)
    assert (info.audio_sample_rate, info.audio_channels, info.audio_start) == (SR, 1, 0.5)
    assert info.duration == pytest.approx(2.0)
    clip = read_clip(silent_video, 0.0, 10, 10.0, audio_duration=1.0, sample_rate=SR)
    assert clip.audio.shape == (1, SR) and clip.frames.shape[0] == 10
    assert not clip.audio_valid[: SR // 2].any() and clip.audio_valid[SR // 2 :].all()  # timed by the glst chunk
    np.testing.assert_allclose(clip.audio[0, SR // 2 :], x[0, : SR // 2], atol=1 / 32768 + 1e-7)
    with MediaReader(silent_video) as r:
        assert r.audio_end() == pytest.approx(2.5)
        win = r.read_window(1.0, 1.5, sample_rate=SR)
    np.testing.assert_allclose(win.audio[0], x[0, SR // 2 : SR], atol=1 / 32768 + 1e-7)
    whole, valid = read_audio(silent_video, sample_rate=SR)
    assert whole.shape == (1, int(2.5 * SR)) and valid.sum() == 2 * SR


def test_sidecar_at_another_rate_is_resampled(silent_video):
    x = _tone(2 * SR, 200.0)[None]
    _write(Path(sidecar_path(silent_video)), x)
    got, valid = read_audio(silent_video, sample_rate=16000)  # FFmpeg decodes and resamples it
    assert got.shape == (1, 32000) and valid.all()
    ref = (0.5 * np.sin(2 * np.pi * 200.0 * np.arange(32000) / 16000)).astype(np.float32)
    assert np.abs(got[0, 100:-100] - ref[100:-100]).max() < 0.01


def test_a_file_with_its_own_audio_ignores_a_sidecar(tmp_path):
    frames = np.zeros((20, 32, 48, 3), np.uint8)
    video = write_mp4(tmp_path / "a.mp4", frames, 10, _tone(2 * SR)[None], SR)
    _write(Path(sidecar_path(video)), np.zeros((1, 2 * SR), np.float32))
    info = probe(video)
    assert info.audio_file == ""
    a, _ = read_audio(video, 0.5, 1.0, sample_rate=SR)
    assert np.abs(a).max() > 0.3  # the file's tone, not the sidecar's silence


def test_find_and_remove(tmp_path):
    video = tmp_path / "x.avi"
    assert find_sidecar(video) is None
    _write(Path(sidecar_path(video)), _tone(100)[None])
    (tmp_path / ".x.avi.audio.wav.preparing").write_bytes(b"half")
    assert find_sidecar(video).frames == 100
    remove_sidecar(video)
    assert not list(tmp_path.iterdir())
