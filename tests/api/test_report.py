"""The results report (``glocal eval --report``, ``glocal demo``): table vs random init, pictures,
one self-contained HTML, notes instead of failures, atomic writes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from glocal.api import report as api_report
from glocal.api.report import ReportOptions, write_results_report
from glocal.cli import main
from glocal.errors import DataError
from glocal.runtime import files as runtime_files
from glocal.eval.report import results_rows

FAST = ReportOptions(sheets=2, frames=3, sheet_clips=1, retrieval_k=3, gallery=4, tile=48, device="cpu")


def _results(seed_shift: float = 0.0) -> dict:
    """An ``EvalReport.to_dict()`` of two tasks, with the folds ``sound`` reports."""
    folds = [0.5, 0.7]
    return {
        "method": "glcm", "data": "world", "tasks": ["linear", "sound"], "skipped": {"tal": "no events"},
        "metrics": {"checkpoint": {"linear": {"top1": 0.8 + seed_shift}, "sound": {"top1": 0.6}},
                    "random_init": {"linear": {"top1": 0.5}, "sound": {"top1": 0.4}}},
        "meta": {"checkpoint": {"sound": {"per_fold": folds}}, "random_init": {"sound": {"per_fold": [0.4, 0.4]}}},
    }


def _table_row(md: str, task: str, metric: str) -> list[str]:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {task} | {metric} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_rows_mean_std_over_seeds_and_folds():
    rows = {(r.task, r.metric): r for r in results_rows([_results(0.0), _results(0.1)])}
    lin = rows["linear", "top1"]
    assert lin.checkpoint[0] == pytest.approx(0.85) and lin.checkpoint[1] == pytest.approx(0.0707107, abs=1e-6)
    assert lin.random_init == (0.5, 0.0) and lin.difference == pytest.approx(0.35) and lin.spread == "2 seeds"
    one = {(r.task, r.metric): r for r in results_rows([_results()])}
    snd = one["sound", "top1"]  # one run: the std over the protocol's folds
    assert snd.checkpoint[0] == pytest.approx(0.6) and snd.checkpoint[1] == pytest.approx(0.1414214, abs=1e-6)
    assert snd.spread == "2 folds" and one["linear", "top1"].checkpoint == (0.8, None)
    with pytest.raises(DataError, match="no evaluation results"):
        results_rows([])


def test_report_md_and_self_contained_html(api_world: Path, glcm_ckpt: Path, tmp_path: Path):
    run = tmp_path / "run"  # a run folder: the checkpoint with its training log
    run.mkdir()
    ckpt = shutil.copy(glcm_ckpt, run / "best.pt")
    (run / "log.csv").write_text("epoch,step,lr,loss\n1,1,0.1,2.0\n1,2,0.1,1.5\n2,3,0.05,1.2\n")
    out = tmp_path / "report"
    paths = write_results_report(_results(), ckpt, out, data=api_world, opts=FAST)
    md = paths["md"].read_text()
    assert _table_row(md, "linear", "top1")[2:5] == ["0.800", "0.500", "+0.300"]
    assert _table_row(md, "sound", "top1")[2:6] == ["0.600 ± 0.141", "0.400 ± 0.000", "+0.200", "2 folds"]
    assert "**method**: glcm" in md and "**budget**: epoch 1" in md and "**glocal**:" in md
    assert "skipped `tal`: no events" in md
    names = {p.name for p in paths["figures"]}
    # the tiny world has one test video: one contact sheet (of sheets=2)
    assert names == {"curves.png", "localization_1.png", "retrieval.png"}, paths["notes"]
    for name in names:
        assert f"]({name})" in md and (out / name).stat().st_size > 0
    assert "map peak inside it on" in md  # the tiny world is annotated: the ground truth is drawn
    page = paths["html"].read_text()
    srcs = [src for _, src in re.findall(r"""src=(["'])(.*?)\1""", page)]  # either quote style
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"https?://", page) and "<script" not in page and "<link" not in page
    assert page.count("<tr>") == 1 + 2 and "+0.300" in page and page.rstrip().endswith("</html>")
    assert not list(out.glob(".*"))  # no temp files left


def test_method_without_audio_gets_a_note(api_world: Path, simclr_ckpt: Path, tmp_path: Path):
    paths = write_results_report(_results(), simclr_ckpt, tmp_path / "r", data=api_world, opts=FAST)
    md = paths["md"].read_text()
    assert "no contact sheets: method 'simclr' has no audio encoder" in md
    assert "no training log next to the checkpoint" in md
    assert [p.name for p in paths["figures"]] == ["retrieval.png"]
    assert "localization_1.png" not in md


def test_a_broken_picture_does_not_fail_the_eval(api_world: Path, glcm_ckpt: Path, tmp_path: Path, monkeypatch,
                                                 capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("the plotting library fell over")

    monkeypatch.setattr(api_report, "_sheets", broken)
    monkeypatch.setattr(api_report, "ReportOptions", lambda: FAST)  # the command line's defaults, made small
    out = tmp_path / "eval" / "knn.json"
    rc = main(["eval", "knn", "--checkpoint", str(glcm_ckpt), "--data", str(api_world), "--out", str(out),
               "--device", "cpu", "--quiet", "clips_per_video=1", "num_workers=0", "--report", "knn_k=1"])
    assert rc == 0 and out.is_file()
    md = (out.parent / "report.md").read_text()  # bare --report: next to the results
    assert "Localisation contact sheets not drawn: RuntimeError: the plotting library fell over" in md
    assert "| knn | top1 |" in md and (out.parent / "retrieval.png").is_file()
    assert "report ->" in capsys.readouterr().out
    assert json.loads(out.read_text())["options"]["knn_k"] == 1  # `--report knn_k=1`: an override, not a folder


def test_report_folder_checked_before_the_evaluation(api_world: Path, glcm_ckpt: Path, tmp_path: Path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc = main(["eval", "knn", "--checkpoint", str(glcm_ckpt), "--data", str(api_world), "--device", "cpu",
               "--out", str(tmp_path / "k.json"), "--quiet", "--report", str(blocker)])
    assert rc == 2 and not (tmp_path / "k.json").exists()
    assert "--report" in capsys.readouterr().err


def test_writes_are_atomic(api_world: Path, simclr_ckpt: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "r"
    opts = ReportOptions(sheets=0, retrieval_k=0, device="cpu")
    write_results_report(_results(), simclr_ckpt, out, data=api_world, opts=opts)
    before = {n: (out / n).read_bytes() for n in ("report.md", "report.html")}

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runtime_files.os, "replace", full_disk)
    with pytest.raises(DataError, match=r"cannot write .*report\.md \(No space left on device\)"):
        write_results_report(_results(0.1), simclr_ckpt, out, data=api_world, opts=opts)
    assert {n: (out / n).read_bytes() for n in before} == before  # the previous report is intact
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md"]  # no temp file left


def test_demo_results_json_is_reported(api_world: Path, simclr_ckpt: Path, tmp_path: Path):
    """The demo's results.json (flat ``task/metric`` results) makes the same table."""
    demo = {"results": {"checkpoint": {"knn/top1": 0.9}, "random_init": {"knn/top1": 0.3}},
            "skipped": {"sound": "task 'sound' needs ['audio']"}}
    paths = write_results_report(json.loads(json.dumps(demo)), simclr_ckpt, tmp_path / "d", data=api_world,
                                 opts=ReportOptions(sheets=0, retrieval_k=0, device="cpu"))
    md = paths["md"].read_text()
    assert _table_row(md, "knn", "top1")[2:5] == ["0.900", "0.300", "+0.600"]
    assert "skipped `sound`" in md


def test_data_without_audio_gets_a_note(glcm_ckpt: Path, tmp_path: Path):
    """An audio-visual method on silent videos: the contact sheets become a note, the rest is drawn."""
    import numpy as np

    from glocal.data.av_writer import write_mp4

    data = tmp_path / "silent"
    (data / "videos").mkdir(parents=True)
    rows = ["path,label,split"]
    rng = np.random.default_rng(0)
    for i, (label, split) in enumerate([("a", "test"), ("a", "train"), ("b", "train")]):
        write_mp4(data / "videos" / f"{i}.mp4", rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), 8.0)
        rows.append(f"videos/{i}.mp4,{label},{split}")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    paths = write_results_report(_results(), glcm_ckpt, tmp_path / "r", data=data, opts=FAST)
    md = paths["md"].read_text()
    assert "no contact sheets: no test video of" in md and "has a video and an audio track" in md
    assert [p.name for p in paths["figures"]] == ["retrieval.png"] and "2 nearest of 2 train videos" in md
