"""The bad-input matrix: every way a file can be broken, and what each layer does with it.

For each case: ``read_clip`` (raises a DataError naming the file, or reads with the documented
result), the dataset (``on_error="raise"`` raises naming the file; ``"skip"`` replaces the sample
and reports the file in ``skipped``) and ``scan`` (reports the right problem kind). Every fixture
is generated on the fly with ``write_mp4`` or PyAV.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from glocal.data.av_writer import write_mp4
from glocal.data.dataset import MissingAudioError, MultiViewDataset
from glocal.data.formats import load_manifest
from glocal.data.io import AVClip, read_clip
from glocal.data.manifest import Manifest, read_manifest
from glocal.data.samplers import ContiguousClipSampler
from glocal.data.scan import check_file, scan_dataset
from glocal.data.transforms import ClipTransform
from glocal.errors import DataError

SR = 16000


def _frames(n: int, h: int = 32, w: int = 32) -> np.ndarray:
    return np.broadcast_to((10 + 9 * np.arange(n) % 240).astype(np.uint8)[:, None, None, None], (n, h, w, 3)).copy()


def _tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


# ------------------------------------------------------------------------------ fixture makers


def _good(path: Path) -> Path:
    return write_mp4(path, _frames(32), 16, _tone(2.0), SR)


def _missing(path: Path) -> Path:
    return path


def _zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _truncated(path: Path) -> Path:
    """Half of an mp4 whose index (moov) sits at the end, as a cut-off download leaves it."""
    data = _good(path.with_name("full_" + path.name)).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_faststart(path: Path) -> Path:
    """60 % of an mp4 with its index first: it opens, but the data stops early."""
    src = _good(path.with_name("full_" + path.name))
    fast = path.with_name("fast_" + path.name)
    with av.open(str(src)) as inp, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = fast.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _audio_only(path: Path) -> Path:
    """An audio file (AAC in .m4a, or PCM in .wav) listed where a video is expected."""
    codec = "aac" if path.suffix == ".m4a" else "pcm_s16le"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=SR, layout="mono")
        fmt = "fltp" if codec == "aac" else "s16"
        tone = _tone(1.0) if codec == "aac" else (_tone(1.0) * 32767).astype(np.int16)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[None, start:start + 1024]), format=fmt,
                                               layout="mono")
            frame.sample_rate, frame.pts = SR, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _no_audio(path: Path) -> Path:
    return write_mp4(path, _frames(32), 16)


def _silent_audio(path: Path) -> Path:
    return write_mp4(path, _frames(32), 16, np.zeros(2 * SR, np.float32), SR)


def _shorter_than_clip(path: Path) -> Path:
    return write_mp4(path, _frames(4), 16, _tone(0.25), SR)  # 0.25 s < the 0.5 s clip


def _one_frame(path: Path) -> Path:
    return write_mp4(path, _frames(1), 16, _tone(1 / 16), SR)


def _huge_resolution(path: Path) -> Path:
    return write_mp4(path, np.zeros((1, 2160, 4096, 3), np.uint8), 1, _tone(1.0), SR, preset="ultrafast")


# -------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Path]
    filename: str
    read_error: str | None  # regex the DataError must match (after the file name); None: it reads
    scan: tuple[str, ...]  # problem kinds scan reports
    check: Callable[[AVClip], None] | None = None  # what a successful read returns


def _frames_ok(clip: AVClip) -> None:
    assert clip.frames is not None and clip.frames.shape == (8, 16, 16, 3)


def _frames_and_audio(clip: AVClip) -> None:
    _frames_ok(clip)
    assert clip.audio is not None and clip.audio_valid.any() and np.abs(clip.audio).max() > 0.05


def _no_audio_track(clip: AVClip) -> None:
    _frames_ok(clip)
    assert clip.audio is None and clip.audio_valid is None and not clip.info.has_audio


def _digital_silence(clip: AVClip) -> None:
    _frames_ok(clip)
    assert clip.audio_valid.all() and np.abs(clip.audio).max() == 0.0  # present, valid, and all zeros


def _padded_past_end(clip: AVClip) -> None:
    """Past the end the last frame repeats and the audio is marked invalid (never silent zeros)."""
    _frames_ok(clip)
    assert np.array_equal(clip.frames[-1], clip.frames[-2])
    assert clip.audio_valid[: SR // 40].all() and not clip.audio_valid[-SR // 10:].any()


CASES = {
    "missing": Case(_missing, "gone.mp4", "file not found", ("missing",)),
    "zero_byte": Case(_zero_byte, "zero.mp4", r"empty file \(0 bytes\)", ("empty",)),
    "truncated": Case(_truncated, "cut.mp4", "damaged beyond reading", ("unreadable",)),
    "truncated_faststart": Case(_truncated_faststart, "cut_fast.mp4", None, ("truncated",), _frames_ok),
    "random_bytes": Case(_random_bytes, "noise.mp4", "not a media file", ("unreadable",)),
    "audio_only_m4a": Case(_audio_only, "sound.m4a", "no video stream", ("no-video",)),
    "audio_only_wav": Case(_audio_only, "sound.wav", "no video stream", ("no-video",)),
    "no_audio_stream": Case(_no_audio, "mute.mp4", None, ("no-audio",), _no_audio_track),
    "silent_audio": Case(_silent_audio, "silent.mp4", None, ("silent-audio",), _digital_silence),
    "shorter_than_clip": Case(_shorter_than_clip, "short.mp4", None, (), _padded_past_end),
    "one_frame": Case(_one_frame, "one.mp4", None, (), _padded_past_end),
    "huge_resolution": Case(_huge_resolution, "huge.mp4", None, (), _frames_and_audio),
    "unicode_path": Case(_good, "vidéo_日本.mp4", None, (), _frames_and_audio),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Callable[[str], Path]:
    """``media(case)`` -> the case's file (made once per module) in a folder named with non-ASCII text."""
    root = tmp_path_factory.mktemp("bad") / "données"
    root.mkdir()
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            case = CASES[name] if name != "good" else Case(_good, "good.mp4", None, ())
            made[name] = case.make(root / case.filename)
        return made[name]

    return get


def _dataset(media, name: str, **kw) -> MultiViewDataset:
    """Dataset of [the case's file, a good file]: one random 0.5 s clip of each, resized in the decoder."""
    bad, good = media(name), media("good")
    manifest = Manifest(root=bad.parent, paths=[str(bad), str(good)], labels=[0, 0], class_names=["x"])
    return MultiViewDataset(manifest, ContiguousClipSampler(num_frames=8, fps=16.0), {"clip": ClipTransform(size=16)},
                            size=(32, 32), sample_rate=8000, **kw)


# -------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(CASES))
def test_read_clip(media, name):
    case = CASES[name]
    path = media(name)
    if case.read_error is not None:
        with pytest.raises(DataError, match=re.escape(case.filename) + ".*" + case.read_error):
            read_clip(path, 0.0, 8, 16.0, size=(16, 16))
    else:
        case.check(read_clip(path, 0.0, 8, 16.0, size=(16, 16), sample_rate=SR))


@pytest.mark.parametrize("name", list(CASES))
def test_scan_reports_it(media, name):
    result = check_file(media(name))
    assert tuple(result.kinds()) == CASES[name].scan
    if name == "truncated":
        assert "moov atom not found" in result.problems[0][1]  # FFmpeg's own reason is quoted


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.read_error is not None] + ["no_audio_stream"])
def test_dataset_raise_names_file_and_skip_replaces_it(media, name):
    filename = CASES[name].filename
    with pytest.raises(DataError, match=re.escape(filename)) as err:
        _dataset(media, name, on_error="raise")[0]
    if name == "no_audio_stream":
        assert isinstance(err.value, MissingAudioError)
    sample = _dataset(media, name, on_error="skip")[0]
    assert int(sample["index"]) == 1  # replaced by the good video
    assert sample["skipped"] and all(filename in s for s in sample["skipped"])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.read_error is None and n != "no_audio_stream"])
def test_dataset_loads_readable_files(media, name):
    """Readable files load under ``raise``; their flaws (silence, truncation) are scan's job."""
    sample = _dataset(media, name, on_error="raise")[0]
    assert int(sample["index"]) == 0 and sample["skipped"] == []
    assert sample["clip/video"].shape == (3, 8, 16, 16) and bool(sample["clip/audio_mask"])


def test_missing_audio_as_silence_comes_with_a_mask(media):
    sample = _dataset(media, "no_audio_stream", missing_audio="silence")[0]
    assert int(sample["index"]) == 0 and not bool(sample["clip/audio_mask"])
    assert float(sample["clip/audio"].abs().max()) == 0


def test_short_files_are_errors_with_min_duration(media):
    assert check_file(media("shorter_than_clip"), min_duration=0.5).kinds() == ["too-short"]
    assert check_file(media("one_frame"), min_duration=0.5).kinds() == ["too-short"]


def test_scan_of_the_whole_matrix_and_deny_list(media, tmp_path):
    names = list(CASES)
    for name in names:
        media(name)
    rows = "".join(f"{media(n).name},x\n" for n in names)
    (media("good").parent / "all.csv").write_text("path,label\n" + rows, encoding="utf-8")
    out = tmp_path / "deny.txt"
    report = scan_dataset(media("good").parent / "all.csv", out=out, require_audio=True)
    expected_denied = {CASES[n].filename for n in names if CASES[n].scan}
    m = load_manifest(media("good").parent / "all.csv", deny_list=out)
    assert {Path(p).name for p in m.paths} == {CASES[n].filename for n in names} - expected_denied
    assert report.files == len(names) and report.ok == len(names) - len(expected_denied)


# ------------------------------------------------------------------------------ manifest rows

_BAD_ROWS = (
    "path,label,start,end\n"
    "ok1.mp4,a,,\n"
    "\n"
    "two,fields\n"  # line 4
    ",a,0,1\n"  # line 5: empty path
    "x.mp4,zebra,0,1\n"  # line 6: unknown label (class list fixed)
    "y.mp4,a,soon,2\n"  # line 7
    "z.mp4,a,3,2\n"  # line 8: end before start
    "w.mp4,a,-1,2\n"  # line 9
    "ok2.mp4,b,0.5,2.5\n"
)


@pytest.mark.parametrize(
    "line, reason",
    [(4, "expected 4 fields"), (5, "empty path"), (6, "label 'zebra' is not in the class list"),
     (7, "start 'soon' is not a number"), (8, "end 2 s is not after start 3 s"), (9, "start -1 must be")],
)
def test_bad_manifest_row_raises_naming_file_and_line(tmp_path, line, reason):
    lines = _BAD_ROWS.splitlines(keepends=True)
    text = "".join(lines[:3]) + lines[line - 1] + "".join(lines[-1:])  # header, ok1, blank, the bad row, ok2
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(f"{path}, line 4: {reason}")):
        read_manifest(path, class_names=["a", "b"])


def test_bad_manifest_rows_skip_counts_them(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(_BAD_ROWS)
    m = load_manifest(path, class_names=["a", "b"], on_bad_row="skip")
    assert [Path(p).name for p in m.paths] == ["ok1.mp4", "ok2.mp4"]
    assert m.report.count("bad row") == 6 and "line 8" in str(m.report)
    assert m.column("start").tolist()[1] == 0.5


def test_manifest_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"path,label\nok.mp4,a\nbad\xff.mp4,a\n")
    with pytest.raises(DataError, match=r"m.csv, line 3: not valid UTF-8"):
        load_manifest(path)
