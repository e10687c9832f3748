"""Evaluation leaves out the files a task cannot use (no audio track, corrupt), counted and named."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from glocal.cli import main
from glocal.data.av_writer import write_mp4
from glocal.data.io import read_clip


def _dataset(world: Path, out: Path, bad: dict[int, str]) -> tuple[Path, dict[str, str]]:
    """A copy of the world's manifest whose rows ``bad`` (index -> "no-audio" | "corrupt") point at
    broken copies in ``out/videos``; returns the folder and ``{relative name: kind}``."""
    (out / "videos").mkdir(parents=True, exist_ok=True)
    with open(world / "manifest.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    names = {}
    for i, row in enumerate(table):
        src = world / row["path"]
        if i in bad:
            dst = out / "videos" / f"{bad[i]}_{src.name}"
            if bad[i] == "no-audio":  # the same frames, no audio track
                clip = read_clip(str(src), 0.0, 16, 8.0, read_audio=False)
                write_mp4(dst, np.ascontiguousarray(clip.frames), 8.0)
            else:  # the header of an mp4, then garbage
                dst.write_bytes(src.read_bytes()[:64] + bytes(range(256)) * 8)
            row["path"] = f"videos/{dst.name}"
            names[row["path"]] = bad[i]
        else:
            row["path"] = str(src)
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    return out, names


def _train_test_rows(world: Path) -> tuple[int, int]:
    with open(world / "manifest.csv", newline="") as fh:
        splits = [r["split"] for r in csv.DictReader(fh)]
    return splits.index("train"), splits.index("test")


def _eval(task: str, ckpt: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["eval", task, "--checkpoint", str(ckpt), "--data", str(data), "--quiet", "--no-random",
                 "--num-workers", "0", "--out", str(out), *extra])


def test_sound_and_linear_leave_out_the_files_they_cannot_use(tiny_checkpoint, tiny_world, tmp_path, capsys):
    tr, te = _train_test_rows(tiny_world)
    data, names = _dataset(tiny_world, tmp_path / "d", {tr: "no-audio", te: "corrupt"})
    no_audio = next(n for n, k in names.items() if k == "no-audio")
    corrupt = next(n for n, k in names.items() if k == "corrupt")

    assert _eval("sound", tiny_checkpoint, data, tmp_path / "sound.json") == 0
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if "left out" in ln]
    assert len(line) == 1 and line[0].startswith("[glocal] task 'sound': left out 2 files it cannot use: ")
    assert f"{no_audio} (no audio stream)" in line[0] and f"{corrupt} (" in line[0]
    meta = json.loads((tmp_path / "sound.json").read_text())["meta"]["checkpoint"]["sound"]
    assert meta["skipped"]["count"] == 2 and set(meta["skipped"]["files"]) == {no_audio, corrupt}
    assert meta["skipped"]["files"][no_audio] == "no audio stream"

    assert _eval("linear", tiny_checkpoint, data, tmp_path / "linear.json") == 0  # video only: keeps no_audio
    err = capsys.readouterr().err
    assert "task 'linear': left out 1 files it cannot use: " + corrupt in err and no_audio not in err
    meta = json.loads((tmp_path / "linear.json").read_text())["meta"]["checkpoint"]["linear"]
    assert meta["skipped"] == {"count": 1, "files": {corrupt: meta["skipped"]["files"][corrupt]}}
    with open(tiny_world / "manifest.csv", newline="") as fh:
        n_test = sum(r["split"] == "test" for r in csv.DictReader(fh))
    assert meta["test"] == n_test - 1  # the corrupt test video is the one left out


def test_on_error_raise_names_the_first_unusable_file(tiny_checkpoint, tiny_world, tmp_path, capsys):
    tr, _ = _train_test_rows(tiny_world)
    data, names = _dataset(tiny_world, tmp_path / "d", {tr: "no-audio"})
    assert _eval("sound", tiny_checkpoint, data, tmp_path / "s.json", "--on-error", "raise") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"glocal: error: task 'sound': {next(iter(names))}: no audio stream")
    assert "--on-error skip" in err[0]
    assert not (tmp_path / "s.json").exists()


def test_nothing_usable_or_an_emptied_split_is_a_one_line_error(tiny_checkpoint, tiny_world, tmp_path, capsys):
    with open(tiny_world / "manifest.csv", newline="") as fh:
        splits = [r["split"] for r in csv.DictReader(fh)]
    everything = {i: "no-audio" for i in range(len(splits))}
    data, _ = _dataset(tiny_world, tmp_path / "all", everything)
    assert _eval("sound", tiny_checkpoint, data, tmp_path / "s.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glocal: error: task 'sound': no usable file in ")
    assert f"all {len(splits)} left out" in err[0] and "glocal scan" in err[0]

    tests = {i: "corrupt" for i, s in enumerate(splits) if s == "test"}
    data, _ = _dataset(tiny_world, tmp_path / "test", tests)
    assert _eval("linear", tiny_checkpoint, data, tmp_path / "l.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "task 'linear': split 'test' is empty" in err[0]
    assert f"({len(tests)} unusable files left out: " in err[0]


def test_window_and_centre_clip_tasks_leave_out_the_files_they_cannot_use(tiny_checkpoint, tiny_world, tmp_path,
                                                                          capsys):
    """Event (sliding windows) and fingerprint (centre clip + edit) read the dataset like every task:
    a test video without audio and a corrupt one are left out, counted and named."""
    with open(tiny_world / "manifest.csv", newline="") as fh:
        tests = [i for i, r in enumerate(csv.DictReader(fh)) if r["split"] == "test"]
    data, names = _dataset(tiny_world, tmp_path / "d", {tests[0]: "no-audio", tests[1]: "corrupt"})
    notes = json.loads((tiny_world / "annotations.json").read_text())  # keyed by the good rows' absolute paths
    notes["videos"] = {str(tiny_world / k): v for k, v in notes["videos"].items()}
    (data / "annotations.json").write_text(json.dumps(notes))
    for task, extra in (("event", ()), ("fingerprint", ("--edits", "blur"))):
        assert _eval(task, tiny_checkpoint, data, tmp_path / f"{task}.json", *extra) == 0
        err = capsys.readouterr().err
        assert f"task '{task}': left out 2 files it cannot use: " in err
        report = json.loads((tmp_path / f"{task}.json").read_text())
        meta = report["meta"]["checkpoint"][task]
        assert meta["skipped"]["count"] == 2 and set(meta["skipped"]["files"]) == set(names)
    assert meta["database"] == len(tests) - 2  # the fingerprint database: the usable test videos
    assert set(report["metrics"]["checkpoint"]["fingerprint"]) >= {"blur_R@1", "mean_R@1"}


def test_sound_reads_audio_files_of_an_esc50_folder_and_leaves_out_a_corrupt_one(tiny_checkpoint, tmp_path, capsys):
    """ESC-50 layout with .wav, .ogg (Opus) and .flac files: the corrupt one is left out and counted."""
    import av

    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,fold,target,category"]
    for i in range(12):
        fold, target = 1 + i % 2, (i // 2) % 2
        ext, codec = [("wav", "pcm_s16le"), ("ogg", "libopus"), ("flac", "flac")][i % 3]
        name = f"{i}.{ext}"
        x = (0.3 * np.sin(2 * np.pi * (300 + 200 * target) * np.arange(36000) / 48000)
             + 0.01 * rng.normal(size=36000)).astype(np.float32)
        with av.open(str(tmp_path / "audio" / name), "w") as out:
            stream = out.add_stream(codec, rate=48000)
            stream.layout = "mono"
            fmt = stream.codec_context.codec.audio_formats[0].name
            size = stream.codec_context.frame_size or 1024
            for s in range(0, len(x), size):
                frame = av.AudioFrame.from_ndarray(x[None, s:s + size], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48000, s
                frame = av.AudioResampler(format=fmt, layout="mono", rate=48000).resample(frame)[0]
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        rows.append(f"{name},{fold},{target},{'low' if target == 0 else 'high'}")
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    rows.append("bad.wav,1,0,low")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    assert _eval("sound", tiny_checkpoint, tmp_path, tmp_path / "sound.json") == 0
    assert "task 'sound': left out 1 files it cannot use: bad.wav (" in capsys.readouterr().err
    meta = json.loads((tmp_path / "sound.json").read_text())["meta"]["checkpoint"]["sound"]
    assert meta["files"] == 12 and meta["protocol"] == "2-fold" and list(meta["skipped"]["files"]) == ["bad.wav"]
