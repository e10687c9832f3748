"""Tests for glocal.data.io: pts-based frame selection, pts-placed audio, robustness, errors."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from glocal.data.av_writer import write_mp4
from glocal.data.io import probe, read_audio, read_clip
from glocal.errors import DataError

FPS = 16
SR = 16000


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def ramp_index(frames: np.ndarray) -> np.ndarray:
    """Frame indices of ``tiny_av_video`` frames (grey level ``10 + 7 k``): ``(T, H, W, 3)`` -> ``(T,)``."""
    return np.round((frames.reshape(len(frames), -1).mean(axis=1) - 10) / 7).astype(int)


def onset(x: np.ndarray, rel: float = 0.3) -> int:
    """First sample index of ``(N,)`` whose magnitude exceeds ``rel`` of the peak."""
    return int(np.argmax(np.abs(x) > rel * np.abs(x).max()))


def dominant_freq(x: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the largest FFT bin of ``(N,)``."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sample_rate / len(x))


def remux(src: Path, dst: Path, fmt: str, options: dict[str, str] | None = None) -> Path:
    """Copy the packets of ``src`` into container format ``fmt`` without re-encoding."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt, options=options or {}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float ``(C, N)`` audio in ``[-1, 1]`` as 16-bit PCM WAV with the stdlib."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.T.tobytes())
    return path


def write_custom_video(path: Path, frames: np.ndarray, pts_ms: list[int], rotation: int = 0) -> Path:
    """H.264 mp4 with explicit per-frame pts in ms (variable frame rate) and a display rotation."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(1000, 1))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for img, pts in zip(frames, pts_ms):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def flash_click_video(path: Path, i0: int, num_frames: int = 48) -> Path:
    """Dark frames with a white flash at frame ``i0``; silence with a 40 ms 1 kHz click at ``i0 / FPS``."""
    frames = np.full((num_frames, 32, 32, 3), 30, np.uint8)
    frames[i0] = 255
    audio = np.zeros(int(num_frames / FPS * SR), np.float32)
    s0, n = int(round(i0 / FPS * SR)), int(0.04 * SR)
    audio[s0 : s0 + n] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / SR)
    return write_mp4(path, frames, FPS, audio, SR)


def raw_decoded_audio(path: Path) -> tuple[np.ndarray, float]:
    """All audio the decoder emits, priming included (flags2=+skip_manual), concatenated without
    looking at pts -> (``(N,)``, pts of the first decoded frame in seconds)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        stream.codec_context.options = {"flags2": "+skip_manual"}
        chunks, first = [], None
        for frame in c.decode(stream):
            first = float(frame.pts * frame.time_base) if first is None else first
            chunks.append(frame.to_ndarray()[0])
    return np.concatenate(chunks), first


# ------------------------------------------------------------------------------------------
# A/V alignment
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp4", "matroska", "mpegts", "mov"])
def test_flash_and_click_are_aligned(tmp_path: Path, fmt: str) -> None:
    i0 = 20  # flash at frame 20 = 1.25 s after the first frame
    src = flash_click_video(tmp_path / "flash.mp4", i0)
    path = src if fmt == "mp4" else remux(src, tmp_path / f"flash.{fmt}", fmt)
    info = probe(path)
    first = 12  # window starts 0.75 s after the first frame: neither a frame-0 nor a packet boundary
    clip = read_clip(path, info.video_start + first / FPS, 16, FPS)

    bright = clip.frames.reshape(16, -1).mean(axis=1) > 128
    assert np.flatnonzero(bright).tolist() == [i0 - first]
    flash_t = clip.frame_times[i0 - first] - clip.frame_times[0]
    click_t = onset(clip.audio[0]) / SR
    assert abs(click_t - flash_t) < 0.010, (click_t, flash_t)
    assert clip.audio_valid.all()

    # The file really carries AAC priming: the decoder's raw output, read sample by sample from
    # its first frame as if that were the first video frame, puts the click >= 40 ms late.
    raw, first_pts = raw_decoded_audio(path)
    assert first_pts < info.video_start  # priming frame presented before the first video frame
    assert onset(raw) / SR - i0 / FPS > 0.040


def _flash_click_file(path: Path, i0: int, fmt: str, video: str, audio_codec: str, sr: int,
                      num_frames: int = 48) -> Path:
    """The flash / click of :func:`flash_click_video` written with any codecs into container
    ``fmt``, video and audio interleaved in time as real muxers write them."""
    frames = np.full((num_frames, 32, 32, 3), 30, np.uint8)
    frames[i0] = 255
    audio = np.zeros(int(num_frames / FPS * sr), np.float32)
    s0, n = int(round(i0 / FPS * sr)), int(0.04 * sr)
    audio[s0 : s0 + n] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / sr)
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(video, rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        a_s = out.add_stream(audio_codec, rate=sr, layout="mono")
        to_codec = av.AudioResampler(format=a_s.codec_context.format.name, layout="mono", rate=sr)
        chunk, start = 1152, 0
        for k, img in enumerate(frames):  # interleaved in time, as real muxers write
            while start < audio.size and start < (k + 1) / FPS * sr:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, start : start + chunk]),
                                                   format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = sr, start, Fraction(1, sr)
                for converted in to_codec.resample(frame):
                    for packet in a_s.encode(converted):
                        out.mux(packet)
                start += chunk
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = k, Fraction(1, FPS)
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in [*a_s.encode(), *vs.encode()]:
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    "name,fmt,video,audio_codec,sr",
    [
        ("ucf101_style.avi", "avi", "mpeg4", "pcm_s16le", SR),  # AVI: video pts in frames
        ("youtube_style.webm", "webm", "libvpx-vp9", "libopus", 48000),  # Opus pre-skip
    ],
)
def test_flash_and_click_are_aligned_in_other_codecs(tmp_path: Path, name, fmt, video, audio_codec, sr) -> None:
    i0, first = 20, 12
    path = _flash_click_file(tmp_path / name, i0, fmt, video, audio_codec, sr)
    info = probe(path)
    clip = read_clip(path, info.video_start + first / FPS, 16, FPS)
    bright = clip.frames.reshape(16, -1).mean(axis=1) > 128
    assert np.flatnonzero(bright).tolist() == [i0 - first]  # frame k at time k / fps
    flash_t = clip.frame_times[i0 - first] - clip.frame_times[0]
    click_t = onset(clip.audio[0]) / SR
    assert abs(click_t - flash_t) < 0.010, (click_t, flash_t)


def test_audio_window_after_seek_is_placed_by_pts(tiny_av_video: Path) -> None:
    # Same 440 Hz sine in a window read from t=0 and from a mid-packet start must agree.
    full = read_clip(tiny_av_video, 0.0, 32, FPS).audio[0]
    start = 0.8123
    part = read_clip(tiny_av_video, start, 8, FPS).audio[0]
    s = int(round(start * SR))
    ref = full[s : s + len(part)]
    assert np.corrcoef(part, ref)[0, 1] > 0.99


# ------------------------------------------------------------------------------------------
# frame selection
# ------------------------------------------------------------------------------------------


def test_read_at_native_half_and_double_fps(tiny_av_video: Path) -> None:
    native = read_clip(tiny_av_video, 0.0, 32, 16.0, read_audio=False)
    assert ramp_index(native.frames).tolist() == list(range(32))
    half = read_clip(tiny_av_video, 0.0, 8, 8.0, read_audio=False)
    assert ramp_index(half.frames).tolist() == [0, 2, 4, 6, 8, 10, 12, 14]
    double = read_clip(tiny_av_video, 0.5, 8, 32.0, read_audio=False)
    assert ramp_index(double.frames).tolist() == [8, 8, 9, 9, 10, 10, 11, 11]
    np.testing.assert_allclose(double.frame_times, 0.5 + np.arange(8) / 32)
    offset = read_clip(tiny_av_video, 0.53, 3, 16.0, read_audio=False)  # 0.5 <= 0.53 < 0.5625
    assert ramp_index(offset.frames).tolist() == [8, 9, 10]


def test_window_past_end_repeats_last_frame_and_flags_audio(tiny_av_video: Path) -> None:
    clip = read_clip(tiny_av_video, 1.75, 8, FPS)  # frames 28..31 exist, 4 targets past the end
    assert ramp_index(clip.frames).tolist() == [28, 29, 30, 31, 31, 31, 31, 31]
    assert clip.audio.shape == (1, 8000) and clip.audio_valid.shape == (8000,)
    assert clip.audio_valid[:3900].all()  # 0.25 s of real audio, then padding
    assert not clip.audio_valid[4100:].any()
    assert np.all(clip.audio[0, 4100:] == 0)


def test_window_before_start_uses_first_frame(tiny_av_video: Path) -> None:
    clip = read_clip(tiny_av_video, -0.25, 6, FPS)
    assert ramp_index(clip.frames).tolist() == [0, 0, 0, 0, 0, 1]
    assert not clip.audio_valid[:3900].any() and clip.audio_valid[4100:].all()


def test_variable_frame_rate_selects_by_pts(tmp_path: Path) -> None:
    pts_ms = [0, 40, 50, 200, 210, 500, 520, 900]  # irregular gaps
    frames = np.stack([np.full((16, 16, 3), 10 + 7 * k, np.uint8) for k in range(8)])
    path = write_custom_video(tmp_path / "vfr.mp4", frames, pts_ms)
    clip = read_clip(path, 0.0, 10, 10.0, read_audio=False)  # t = 0.0, 0.1, ..., 0.9
    expected = [max(k for k, p in enumerate(pts_ms) if p <= 100 * i) for i in range(10)]
    assert ramp_index(clip.frames).tolist() == expected


def test_vfr_gap_longer_than_skip_margin_shows_frame_before_gap(tmp_path: Path) -> None:
    # Frames every 40 ms, then nothing from 0.96 s to 3.0 s. A target inside the gap must show
    # the (B-)frame at 0.96 s even though the reader skips non-reference frames far before it.
    pts_ms = list(range(0, 1000, 40)) + list(range(3000, 4000, 40))
    yy, xx = np.mgrid[0:32, 0:32]
    planes = [[(xx + k) % 256, (yy + 2 * k) % 256, np.full_like(xx, 10 + 7 * k)] for k in range(len(pts_ms))]
    frames = np.stack([np.stack(p, -1) for p in planes]).clip(0, 255).astype(np.uint8)  # moving: B-frames
    path = write_custom_video(tmp_path / "gap.mp4", frames, pts_ms)
    for start in (1.5, 2.9):
        blue = read_clip(path, start, 1, 10.0, read_audio=False).frames[0, :, :, 2].mean()
        assert abs(blue - (10 + 7 * 24)) < 3.5, (start, blue)


# ------------------------------------------------------------------------------------------
# resize, rotation, audio formats
# ------------------------------------------------------------------------------------------


def test_resize_inside_decoder(tiny_av_video: Path) -> None:
    clip = read_clip(tiny_av_video, 0.0, 4, FPS, size=(24, 40), read_audio=False)
    assert clip.frames.shape == (4, 24, 40, 3) and clip.frames.dtype == np.uint8
    assert ramp_index(clip.frames).tolist() == [0, 1, 2, 3]


def test_rotation_metadata_makes_frames_upright(tmp_path: Path) -> None:
    frames = np.zeros((3, 16, 32, 3), np.uint8)
    frames[:, :8, :8] = 255  # white block in the top-left of the stored (landscape) frame
    path = write_custom_video(tmp_path / "rot.mp4", frames, [0, 100, 200], rotation=90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 16, 32)
    clip = read_clip(path, 0.0, 2, 10.0, read_audio=False)
    assert clip.frames.shape == (2, 32, 16, 3) and clip.info.rotation == 90
    # 90 degrees counter-clockwise: the stored top-left corner ends up bottom-left
    assert clip.frames[0, -8:, :8].mean() > 200 and clip.frames[0, :8, :8].mean() < 50
    resized = read_clip(path, 0.0, 1, 10.0, size=(20, 10), read_audio=False)
    assert resized.frames.shape == (1, 20, 10, 3)
    assert resized.frames[0, -4:, :4].mean() > 200 and resized.frames[0, :4, :4].mean() < 50


def test_stereo_downmix_and_channels(tmp_path: Path) -> None:
    n = 2 * SR
    left = (0.4 * np.sin(2 * np.pi * 440 * np.arange(n) / SR)).astype(np.float32)
    black = np.zeros((32, 16, 16, 3), np.uint8)
    path = write_mp4(tmp_path / "st.mp4", black, FPS, np.stack([left, 0 * left]), SR)
    assert probe(path).audio_channels == 2
    mono = read_clip(path, 0.5, 8, FPS).audio
    stereo = read_clip(path, 0.5, 8, FPS, mono=False).audio
    assert mono.shape == (1, 8000) and stereo.shape == (2, 8000)
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(stereo[1]) < 0.01 and abs(rms(stereo[0]) - 0.4 / np.sqrt(2)) < 0.03
    assert abs(rms(mono[0]) - rms(stereo[0]) / 2) < 0.02  # mean of the channels, not the sum


def test_44k_input_resampled_to_16k(tmp_path: Path) -> None:
    sr_in = 44100
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * sr_in) / sr_in)).astype(np.float32)
    path = write_mp4(tmp_path / "a44.mp4", np.zeros((32, 16, 16, 3), np.uint8), FPS, audio, sr_in)
    clip = read_clip(path, 0.25, 24, FPS, sample_rate=16000)  # 1.5 s
    assert clip.audio.shape == (1, 24000) and clip.audio_valid.all()
    assert abs(dominant_freq(clip.audio[0], 16000) - 440) < 2
    wav, valid = read_audio(path, 0.25, 1.5, sample_rate=16000)
    assert wav.shape == (1, 24000) and valid.all()


@pytest.mark.parametrize("sr_in", [8000, 22050, 48000])
def test_read_audio_wav_any_rate(tmp_path: Path, sr_in: int) -> None:
    x = 0.5 * np.sin(2 * np.pi * 500 * np.arange(sr_in) / sr_in)  # 1 s
    path = write_wav(tmp_path / f"a{sr_in}.wav", x[None], sr_in)
    info = probe(path)
    assert not info.has_video and info.has_audio and info.audio_sample_rate == sr_in
    assert abs(info.duration - 1.0) < 1e-3
    audio, valid = read_audio(path)  # whole file
    assert audio.shape == (1, 16000) and valid.all()
    assert abs(dominant_freq(audio[0], 16000) - 500) < 2
    part, pvalid = read_audio(path, 0.75, 0.5)  # runs 0.25 s past the end
    assert part.shape == (1, 8000)
    assert pvalid[:3900].all() and not pvalid[4100:].any()
    with pytest.raises(DataError, match=f"a{sr_in}.wav.*no video"):
        read_clip(path, 0.0, 4, FPS)
    assert read_clip(path, 0.0, 4, FPS, read_video=False).audio.shape == (1, 4000)


def test_read_audio_51_wav(tmp_path: Path) -> None:
    sr_in = 48000
    t = np.arange(sr_in // 2) / sr_in
    x = np.zeros((6, len(t)))
    x[0] = 0.5 * np.sin(2 * np.pi * 300 * t)  # front left only
    path = write_wav(tmp_path / "surround.wav", x, sr_in)
    assert probe(path).audio_channels == 6
    mono, valid = read_audio(path, sample_rate=16000)
    assert mono.shape == (1, 8000) and valid.all()
    assert abs(dominant_freq(mono[0], 16000) - 300) < 3 and np.abs(mono).max() <= 0.5
    multi, _ = read_audio(path, sample_rate=16000, mono=False)
    assert multi.shape == (6, 8000)
    assert np.abs(multi[1:]).max() < 1e-3 and np.abs(multi[0]).max() > 0.4


@pytest.mark.parametrize("codec,ext", [("flac", "flac"), ("libmp3lame", "mp3"), ("libopus", "ogg")])
def test_read_audio_compressed_audio_files(tmp_path: Path, codec: str, ext: str) -> None:
    sr_in = 48000
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr_in) / sr_in)).astype(np.float32)
    path = tmp_path / f"a.{ext}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr_in)
        stream.layout = "mono"
        fmt = stream.codec_context.codec.audio_formats[0].name
        size = stream.codec_context.frame_size or 1024
        for s in range(0, len(x), size):
            frame = av.AudioFrame.from_ndarray(x[None, s : s + size], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sr_in, s
            frame = av.AudioResampler(format=fmt, layout="mono", rate=sr_in).resample(frame)[0]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    audio, valid = read_audio(path, 0.2, 0.5)
    assert audio.shape == (1, 8000) and valid.all()
    assert abs(dominant_freq(audio[0], 16000) - 440) < 3


# ------------------------------------------------------------------------------------------
# probe, missing audio, errors, damaged files
# ------------------------------------------------------------------------------------------


def test_probe_fields(tiny_av_video: Path) -> None:
    info = probe(tiny_av_video)
    assert info.path == str(tiny_av_video)
    assert abs(info.duration - 2.0) < 0.1 and info.fps == 16.0
    assert (info.width, info.height, info.rotation) == (32, 32, 0)
    assert info.has_video and info.has_audio
    assert (info.audio_sample_rate, info.audio_channels) == (16000, 1)
    assert info.video_start == 0.0 and info.audio_start == 0.0


def test_video_without_audio(tiny_video_no_audio: Path) -> None:
    clip = read_clip(tiny_video_no_audio, 0.0, 4, FPS)
    assert clip.audio is None and clip.audio_valid is None
    assert not clip.info.has_audio and clip.info.audio_sample_rate == 0
    assert clip.frames.shape == (4, 32, 32, 3)
    with pytest.raises(DataError, match="tiny_noaudio.mp4.*no audio"):
        read_audio(tiny_video_no_audio)


def test_read_video_false_skips_frames(tiny_av_video: Path) -> None:
    clip = read_clip(tiny_av_video, 0.5, 8, FPS, read_video=False, audio_duration=1.0)
    assert clip.frames is None and clip.audio.shape == (1, 16000)


def test_bad_files_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.mp4.*not found"):
        read_clip(tmp_path / "missing.mp4", 0.0, 4, FPS)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.mp4.*empty"):
        probe(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="junk.mp4"):
        read_clip(junk, 0.0, 4, FPS)
    with pytest.raises(DataError, match="junk.mp4"):
        read_audio(junk)


def test_truncated_file_still_reads_early_window(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)).astype(np.float32)
    src = write_mp4(tmp_path / "src.mp4", frames, FPS, audio, SR)
    # Streaming-style mp4 (index first) cut by 10%: the tail is lost, the start still decodes.
    fast = remux(src, tmp_path / "fast.mp4", "mp4", {"movflags": "faststart"})
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    clip = read_clip(cut, 0.25, 8, FPS)
    assert clip.frames.shape == (8, 32, 32, 3) and clip.audio_valid.all()
    tail = read_clip(cut, 2.5, 8, FPS)  # runs into the missing part: no exception
    assert tail.frames.shape == (8, 32, 32, 3)
    # An mp4 whose index (moov) sits at the end is unreadable once cut: a clear DataError.
    (tmp_path / "cut_moov.mp4").write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.9)])
    with pytest.raises(DataError, match="cut_moov.mp4"):
        read_clip(tmp_path / "cut_moov.mp4", 0.0, 4, FPS)


def test_corrupt_audio_packet_is_skipped_and_rest_stays_aligned(tmp_path: Path) -> None:
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)).astype(np.float32)
    src = write_mp4(tmp_path / "clean.mp4", np.zeros((48, 16, 16, 3), np.uint8), FPS, audio, SR)
    with av.open(str(src)) as c:
        packets = [(p.pts, p.pos, p.size) for p in c.demux(c.streams.audio[0]) if p.size]
    pts, pos, size = packets[20]  # one AAC frame: 1024 samples starting at `pts` (1/16000 s)
    data = bytearray(src.read_bytes())
    data[pos : pos + size] = b"\xff" * size
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    clean = read_clip(src, 1.0, 16, FPS)
    clip = read_clip(bad, 1.0, 16, FPS)  # must not raise
    lo = pts - SR  # window offset of the lost packet
    assert np.flatnonzero(~clip.audio_valid).tolist() == list(range(lo, lo + 1024))
    after = slice(lo + 2048, 16000)  # one frame later the decoder has recovered
    assert np.corrcoef(clip.audio[0, after], clean.audio[0, after])[0, 1] > 0.99
