"""``glocal scan``: per-file checks, the summary, the deny list, the CLI, parallel workers and crashes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from glocal.cli import main
from glocal.data.av_writer import write_mp4
from glocal.data.denylist import read_deny_list
from glocal.data.formats import load_manifest
from glocal.data.scan import FileCheck, check_file, scan_dataset, scan_files

_TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)


def _frames(n: int = 16, size: int = 32) -> np.ndarray:
    return np.broadcast_to((10 + 9 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, size, size, 3)).copy()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A CSV dataset: 2 good clips, one without audio, one silent, one empty, one missing, one bad row."""
    root = tmp_path / "ds"
    write_mp4(root / "v" / "good1.mp4", _frames(), 16, _TONE, 16000)
    write_mp4(root / "v" / "good2.mp4", _frames(8), 16, _TONE[:8000], 16000)
    write_mp4(root / "v" / "mute.mp4", _frames(), 16)
    write_mp4(root / "v" / "silent.mp4", _frames(), 16, np.zeros(16000, np.float32), 16000)
    (root / "v" / "empty.mp4").write_bytes(b"")
    (root / "manifest.csv").write_text(
        "path,label,split\n"
        "v/good1.mp4,a,train\nv/good2.mp4,b,train\nv/good1.mp4,a,test\nv/mute.mp4,a,train\n"
        "v/silent.mp4,b,train\nv/empty.mp4,b,train\nv/gone.mp4,a,train\nv/broken_row.mp4\n"
    )
    return root


def test_scan_summary_and_deny_list(dataset, tmp_path):
    out = tmp_path / "deny.txt"
    report = scan_dataset(dataset, out=out, min_duration=0.75)
    assert report.files == 6  # good1 is listed twice but checked once
    assert report.counts == {"empty": 1, "missing": 1, "no-audio": 1, "silent-audio": 1, "too-short": 1}
    assert report.ok == 1 and report.warned == 2
    assert report.load.count("bad row") == 1
    table = report.table()
    assert "no-audio (warning)" in table and "v/mute.mp4" in table and "left out 1 bad row" in table
    denied = dict(read_deny_list(out))
    assert set(denied) == {"v/empty.mp4", "v/gone.mp4", "v/good2.mp4"}
    assert denied["v/good2.mp4"].startswith("too-short")
    m = load_manifest(dataset, deny_list=out, on_bad_row="skip")
    assert sorted(m.relative_paths().tolist()) == ["v/good1.mp4", "v/good1.mp4", "v/mute.mp4", "v/silent.mp4"]
    assert m.report.count("denied file") == 3 and "v/good2.mp4 (too-short" in str(m.report)


def test_require_audio_denies_mute_and_silent(dataset, tmp_path):
    report = scan_dataset(dataset, require_audio=True, out=tmp_path / "deny.txt")
    denied = dict(read_deny_list(tmp_path / "deny.txt"))
    assert denied["v/mute.mp4"] == "no-audio: no audio stream"
    assert denied["v/silent.mp4"].startswith("silent-audio: digital silence")
    assert report.warned == 0 and "--require-audio" not in report.table()


def test_audio_only_scan(tmp_path):
    import av

    path = tmp_path / "snd" / "beep.wav"
    path.parent.mkdir()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray((_TONE * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    assert check_file(path).kinds() == ["no-video"]
    report = scan_dataset(path.parent, "unlabeled", audio_only=True)
    assert report.files == 1 and report.ok == 1


def test_cli_scan_exit_codes(dataset, tmp_path, capsys):
    out = tmp_path / "d.txt"
    assert main(["scan", str(dataset), "--workers", "0", "--out", str(out), "--format", "csv"]) == 0
    printed = capsys.readouterr().out
    assert "glocal scan" in printed and "missing" in printed and out.is_file()
    assert main(["scan", str(tmp_path / "nope")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["scan", str(dataset), "--workers", "-1"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["scan", str(dataset), "--format", "xml"])
    assert exc.value.code == 2


def test_parallel_scan_matches_in_process(dataset):
    paths = sorted(str(p) for p in (dataset / "v").iterdir())
    assert list(scan_files(paths, workers=2)) == list(scan_files(paths, workers=0))


def _check_or_die(path: str) -> FileCheck:
    """A checker that kills its process on files named crash* (like a segfaulting decoder)."""
    if Path(path).name.startswith("crash"):
        os._exit(11)
    return FileCheck(path)


def test_a_crashing_decoder_is_isolated_and_reported():
    paths = ["a.mp4", "crash.mp4", "b.mp4", "c.mp4"]
    results = list(scan_files(paths, workers=2, check=_check_or_die))
    assert [r.path for r in results] == paths
    assert [r.kinds() for r in results] == [[], ["crashed"], [], []]
