"""``glocal scan`` warnings with figures for files FFmpeg reads only in part (issue 11, section 5):
mid-stream corruption, an audio track that ends early, a cut-off audio packet. Each file is
generated here with PyAV; the exact warning text is asserted."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from glocal.data.av_writer import encode_frames, write_mp4
from glocal.data.denylist import read_deny_list
from glocal.data.io import read_clip
from glocal.data.scan import check_file, scan_dataset

SR = 16000


def _frames(n: int, size: int = 64) -> np.ndarray:
    """Noise frames: every picture costs ~2 KB, so a run of overwritten bytes hits whole frames."""
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _tone(seconds: float, rate: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return np.repeat((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], channels, axis=0)


def _corrupt_middle(path: Path) -> Path:
    """64 frames (4 s) + AAC; 12,000 bytes overwritten from the picture at 1.50 s on, which also
    hits the 4 audio packets muxed between the pictures 1.50-1.75 s."""
    write_mp4(path, _frames(64), 16, _tone(4.0), SR)
    with av.open(str(path)) as c:
        first = next(p.pos for p in c.demux(c.streams.video[0]) if p.pts is not None and p.pts * p.time_base == 1.5)
    data = bytearray(path.read_bytes())
    data[first:first + 12000] = np.random.default_rng(1).integers(0, 256, 12000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _number(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in {text!r}"
    return float(m.group(1))


def test_mid_stream_corruption_is_a_warning_with_figures(tmp_path):
    path = _corrupt_middle(tmp_path / "ds" / "cor.mp4")
    check = check_file(path)
    assert check.kinds() == ["damaged"]
    detail = dict(check.problems)["damaged"]
    assert detail.startswith("decoded 59 of 64 video frames (5 lost to decode errors from 1.50 s: "
                             "Invalid NAL unit size); ")
    # 4-5 AAC packets of 64 ms (the packet after the damage can fail too)
    assert re.fullmatch(r".*; \d+ % of the audio invalid \(0\.\d\d s in [45] packets from 1\.41 s\)", detail), detail
    assert 6 <= _number(detail, r"; (\d+) % of the audio") <= 8
    assert 0.25 <= _number(detail, r"invalid \((\d\.\d\d) s") <= 0.33
    # and what the reader gives there: the last good frame repeated, the lost audio marked invalid
    clip = read_clip(path, 1.4375, 6, 16.0, sample_rate=SR)
    assert all(np.array_equal(clip.frames[0], f) for f in clip.frames[1:])
    assert 0 < clip.audio_valid.mean() < 1


def test_the_warning_is_in_the_report_and_the_deny_list_file(tmp_path):
    root = tmp_path / "ds"
    _corrupt_middle(root / "cor.mp4")
    write_mp4(root / "good.mp4", _frames(16, 32), 16, _tone(1.0), SR)
    out = tmp_path / "deny.txt"
    report = scan_dataset(root, "unlabeled", out=out)
    assert report.warned == 1 and report.deny == [] and report.counts == {"damaged": 1}
    assert "damaged (warning)" in report.table() and "cor.mp4 (decoded 59 of 64 video frames" in report.table()
    assert read_deny_list(out) == []  # a warning denies nothing...
    text = out.read_text()
    assert "# warning cor.mp4  # damaged: decoded 59 of 64 video frames" in text  # ...but is listed


def test_audio_ending_early_is_a_warning_with_figures(tmp_path):
    path = write_mp4(tmp_path / "early.mp4", _frames(64, 32), 16, _tone(1.6), SR)
    check = check_file(path)
    assert check.kinds() == ["audio-ends-early"]
    detail = dict(check.problems)["audio-ends-early"]
    m = re.fullmatch(r"the audio ends (\d\.\d\d) s before the video \(at (\d\.\d\d) s of 4\.00 s\); "
                     r"windows past it get silence marked invalid", detail)
    assert m, detail
    assert abs(float(m.group(1)) - 2.40) <= 0.07 and abs(float(m.group(2)) - 1.60) <= 0.07
    clip = read_clip(path, 2.0, 8, 16.0, sample_rate=SR)  # past the audio: silence, marked invalid
    assert not clip.audio_valid.any() and not clip.audio.any()


def test_audio_ending_just_before_the_video_is_fine(tmp_path):
    path = write_mp4(tmp_path / "close.mp4", _frames(64, 32), 16, _tone(3.7), SR)
    assert check_file(path).kinds() == []


def _ac3_with_cut_last_packet(path: Path) -> Path:
    """4 s of H.264 + 48 kHz stereo AC3 whose last packet keeps only half its bytes."""
    rate = 48000
    with av.open(str(path), "w", format="mp4") as c:
        video = c.add_stream("libx264", rate=16)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        audio = c.add_stream("ac3", rate=rate)
        audio.layout = "stereo"
        encode_frames(c, video, _frames(64, 32))
        tone = _tone(4.0, rate, 2)
        packets = []
        for s in range(0, tone.shape[1], 1536):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, s:s + 1536]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, s, Fraction(1, rate)
            packets += audio.encode(frame)
        packets += audio.encode(None)
        last = packets[-1]
        cut = av.Packet(bytes(last)[: last.size // 2])
        cut.pts, cut.dts, cut.duration, cut.time_base = last.pts, last.dts, last.duration, last.time_base
        cut.stream = audio
        for packet in packets[:-1] + [cut]:
            c.mux(packet)
    return path


def test_a_cut_audio_packet_is_a_warning_naming_its_time_and_the_loss(tmp_path):
    if "ac3" not in av.codecs_available:
        pytest.skip("this FFmpeg has no AC3 encoder")
    path = _ac3_with_cut_last_packet(tmp_path / "ac3cut.mp4")
    check = check_file(path)
    assert check.kinds() == ["damaged"]
    assert dict(check.problems)["damaged"] == (
        "the audio packet at 3.96 s is damaged (incomplete frame): 0.032 s of audio lost")
