"""The study runner with a stand-in glocal: all cells run, resume skips finished work, a failing cell
is reported and the others go on, the budget refuses cells that cannot fit, SIGTERM stops the study
and the same command resumes it, study.json tells it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from glocal.config import build
from glocal.errors import DataError
from glocal.study.config import StudyConfig
from glocal.study.grid import Cell
from glocal.study.report import write_study_report
from glocal.study.runner import StudyRunner

from .conftest import FAKE


def _run(cfg, out, lines=None):
    return StudyRunner(cfg, out, command=FAKE, log=(lines.append if lines is not None else lambda s: None)).run()


def test_every_cell_runs_once_and_records_its_cpu(study_cfg, calls, tmp_path):
    out, lines = tmp_path / "study", []
    summary = _run(study_cfg(), out, lines)
    assert summary["done"] == 9 and summary["failed"] == summary["refused"] == 0
    assert [c[0] for c in calls()].count("pretrain") == 9 and [c[0] for c in calls()].count("eval") == 9
    folder = Cell("w", "plain", 2).folder(out)
    done = json.loads((folder / "done.json").read_text())
    assert done["cell"] == "w/plain/seed2" and done["cpu_s"] > 0 and done["wall_s"] > 0
    assert done["cpu_s"] == pytest.approx(done["cpu_s_pretrain"] + done["cpu_s_eval"], abs=0.01)
    assert done["tasks"] == ["linear", "retrieval"]
    cfg_text = (folder / "config.yaml").read_text()
    assert "weight_local: 0.0" in cfg_text and "seed: 2" in cfg_text and str(folder / "pretrain") in cfg_text
    study = json.loads((out / "study.json").read_text())
    assert [c["state"] for c in study["cells"]] == ["done"] * 9
    assert study["cpu_s_total"] == pytest.approx(sum(c["cpu_s"] for c in study["cells"]))
    progress = [s for s in lines if "cells done:" in s]
    assert len(progress) == 9 and "9/9 cells done" in progress[-1] and "ETA" in progress[0]


def test_resume_skips_done_cells_and_continues_half_finished_ones(study_cfg, calls, tmp_path):
    out = tmp_path / "study"
    _run(study_cfg(), out)
    n = len(calls())
    _run(study_cfg(), out)
    assert len(calls()) == n  # nothing rerun

    evaluated = Cell("w", "good", 0).folder(out)  # killed during its evaluation: pretraining kept
    (evaluated / "done.json").unlink()
    mid = Cell("w", "good", 1).folder(out)  # killed during pretraining, after a checkpoint
    (mid / "done.json").unlink()
    (mid / "pretrained.json").unlink()
    early = Cell("w", "bad", 1).folder(out)  # killed before its first checkpoint: logs only
    for name in ("done.json", "pretrained.json", "pretrain/ckpt_epoch0001.pt"):
        (early / name).unlink()
    summary = _run(study_cfg(), out)
    new = calls()[n:]
    assert summary["done"] == 9
    pretrains = {c[2]: c for c in new if c[0] == "pretrain"}
    assert set(pretrains) == {str(mid / "config.yaml"), str(early / "config.yaml")}
    assert pretrains[str(mid / "config.yaml")][-2:] == ["--resume", "auto"]
    assert pretrains[str(early / "config.yaml")][-1] == "--overwrite"
    assert sorted(c[c.index("--checkpoint") + 1] for c in new if c[0] == "eval") == sorted(
        str(f / "pretrain" / "ckpt_epoch0001.pt") for f in (evaluated, mid, early))
    # the CPU of the killed attempts still counts
    done = json.loads((mid / "done.json").read_text())
    assert done["attempts"] == 4  # pretrain, eval (the killed run), pretrain resumed, eval


def test_a_failing_cell_is_reported_and_the_study_goes_on(study_cfg, calls, tmp_path, monkeypatch):
    out, lines = tmp_path / "study", []
    monkeypatch.setenv("FAKE_FAIL", "w/bad/seed1")
    summary = _run(study_cfg(), out, lines)
    assert summary["done"] == 8 and summary["failed"] == 1
    folder = Cell("w", "bad", 1).folder(out)
    (line,) = [s for s in lines if "FAILED" in s]
    assert "w/bad/seed1" in line and str(folder / "pretrain.log") in line and "exit status 1" in line
    assert "boom: a crash in pretraining" in (folder / "pretrain.log").read_text()
    study = json.loads((out / "study.json").read_text())
    failed = [c for c in study["cells"] if c["state"] == "failed"]
    assert [c["key"] for c in failed] == ["w/bad/seed1"] and failed[0]["reason"].startswith("pretrain:")
    assert not (folder / "done.json").exists()
    monkeypatch.delenv("FAKE_FAIL")
    n = len(calls())
    assert _run(study_cfg(), out)["done"] == 9
    assert [c[0] for c in calls()[n:]] == ["pretrain", "eval"]  # only the failed cell ran again


def test_budget_refuses_cells_that_cannot_fit(study_cfg, calls, tmp_path):
    out, lines = tmp_path / "study", []
    # every cell is estimated at 10 CPU min: the per-cell limit of 5 refuses them all, before any work
    summary = _run(study_cfg(budget={"cell_cpu_minutes": 5, "estimate_cpu_minutes": {"w": 10}}), out, lines)
    assert summary["refused"] == 9 and summary["done"] == 0 and calls() == []
    assert any("not started" in s and "cell_cpu_minutes=5" in s for s in lines)
    # 20 CPU min already spent by a killed attempt of one cell (counted against the total of 25): that
    # cell needs nothing more than it had and resumes; every other one needs 10 > 5 left: refused
    lines.clear()
    out = tmp_path / "s2"
    killed = Cell("w", "plain", 0).folder(out)
    killed.mkdir(parents=True)
    (killed / "attempts.jsonl").write_text(json.dumps({"step": "pretrain", "rc": -15, "cpu_s": 1200.0, "wall_s": 1300.0}) + "\n")
    summary = _run(study_cfg(parallel=1, budget={"total_cpu_minutes": 25, "estimate_cpu_minutes": {"w": 10}}),
                   out, lines)
    assert summary["done"] == 1 and summary["refused"] == 8
    assert (killed / "done.json").is_file()
    refusal = next(s for s in lines if "not started" in s)
    assert "budget.total_cpu_minutes=25" in refusal and "are left" in refusal
    study = json.loads((out / "study.json").read_text())
    assert study["cpu_s_total"] > 1200


def test_a_cell_started_with_another_config_is_refused(study_cfg, study_raw, calls, tmp_path):
    out = tmp_path / "study"
    _run(study_cfg(seeds=[0]), out)
    raw = study_raw(seeds=[0])
    raw["arms"][0]["overrides"] = ["optim.lr=0.5"]
    with pytest.raises(DataError, match=r"cell w/good/seed0 was started with another config"):
        StudyRunner(build(StudyConfig, raw), out, command=FAKE, log=lambda s: None).run()


def test_a_field_added_since_a_cell_started_does_not_refuse_it(study_cfg, calls, tmp_path):
    """Regression: a new config field (absent from the stored config.yaml, at its default now)
    made every finished cell of a study 'started with another config'."""
    out = tmp_path / "study"
    _run(study_cfg(seeds=[0]), out)
    stored = out / "cells" / "w" / "good" / "seed0" / "config.yaml"
    raw = yaml.safe_load(stored.read_text())
    assert raw["data"]["audio_speed_mode"] == "sinc"  # the field's default
    del raw["data"]["audio_speed_mode"]  # as a cell written before the field existed
    stored.write_text(yaml.safe_dump(raw, sort_keys=False))
    summary = _run(study_cfg(seeds=[0]), out)
    assert summary["failed"] == 0 and summary["done"] >= 1
    raw["data"]["no_such_field"] = 1  # a key the loader does not know still counts as another config
    stored.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(DataError, match=r"cell w/good/seed0 was started with another config"):
        _run(study_cfg(seeds=[0]), out)


def test_study_folder_must_be_writable(study_cfg, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        _run(study_cfg(), tmp_path / "file")


def test_sigterm_stops_the_study_and_the_same_command_resumes(study_raw, calls, tmp_path, monkeypatch):
    raw = study_raw(seeds=[0])
    cfg_path = tmp_path / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "study"
    driver = ("import sys, json, yaml\n"
              "from glocal.config import build\nfrom glocal.study.config import StudyConfig\n"
              "from glocal.study.runner import StudyRunner\n"
              f"cfg = build(StudyConfig, yaml.safe_load(open({str(cfg_path)!r})))\n"
              f"s = StudyRunner(cfg, {str(out)!r}, command={FAKE!r}, parallel=2).run()\n"
              "print(json.dumps(s)); sys.exit(143 if s['stopped_by'] else 0)\n")
    env = {**os.environ, "FAKE_SLEEP": "60", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", driver], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sum(c[0] == "pretrain" for c in calls()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # let the fakes install their handlers
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["stopped_by"] == "SIGTERM" and summary["done"] == 0 and summary["interrupted"] == 3
    assert "SIGTERM: asking running cells to checkpoint and stop" in stdout
    stopped = [Cell("w", a, 0).folder(out) for a in ("good", "plain")]
    for folder in stopped:
        assert (folder / "pretrain" / "ckpt_epoch0001.pt").read_bytes() == b"fake, preempted"
        assert not (folder / "done.json").exists() and not (folder / "pretrained.json").exists()
    n = len(calls())
    summary = StudyRunner(build(StudyConfig, raw), out, command=FAKE, log=lambda s: None).run()
    assert summary["done"] == 3
    resumed = [c for c in calls()[n:] if c[0] == "pretrain"]
    assert sorted(c[2] for c in resumed if c[-2:] == ["--resume", "auto"]) == sorted(
        str(f / "config.yaml") for f in stopped)


def test_contact_sheets_of_the_same_test_videos_for_every_cell(study_cfg, calls, tmp_path):
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    rows = ["path,label,split"] + [f"videos/{i}.mp4,a,{s}" for i, s in enumerate(["train", "test", "val", "test"])]
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    for i in range(4):
        (data / "videos" / f"{i}.mp4").write_bytes(b"")
    out = tmp_path / "study"
    cfg = study_cfg(data={"w": str(data)}, tasks=["linear", "localization"], claims=[], seeds=[0], sheet_videos=5)
    assert StudyRunner(cfg, out, command=FAKE, log=lambda s: None).run()["done"] == 3
    localize = [c for c in calls() if c[0] == "localize"]
    assert len(localize) == 3 and localize[0][-3:] == ["frames=4", "tile=96", "video=false"]
    done = json.loads((Cell("w", "good", 0).folder(out) / "done.json").read_text())
    assert [Path(p).name for p in done["sheets"]["pngs"]] == ["00_1.png", "01_3.png"]  # the test split, in order
    assert done["sheets"]["videos"] == [str(data / "videos" / "1.mp4"), str(data / "videos" / "3.mp4")]
    md, page = write_study_report(out)
    assert "Localisation contact sheets on w" in md.read_text() and "good seed 0: 00_1" in md.read_text()
    assert page.read_text().count("data:image/png;base64,") == 3 * 2 + 1  # each arm's 2 sheets + the curves


def test_a_cell_held_by_a_live_study_is_refused_and_a_stale_pid_is_not(study_cfg, calls, tmp_path):
    out = tmp_path / "study"
    folder = Cell("w", "good", 0).folder(out)
    folder.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (folder / "running.pid").write_text(str(other.pid))
        with pytest.raises(DataError, match=rf"cell w/good/seed0 is being run by process {other.pid}"):
            _run(study_cfg(seeds=[0]), out)
    finally:
        other.kill()
        other.wait()
    assert _run(study_cfg(seeds=[0]), out)["done"] == 3  # that process is gone: the cell runs
    assert not (folder / "running.pid").exists()


def test_a_study_run_bit_by_bit_keeps_every_finished_cell_in_its_index(study_cfg, calls, tmp_path):
    """Regression: a run with ``only_arms`` rewrote study.json with its own selection only, so the
    cells an earlier run had finished vanished from ``glocal report``."""
    out = tmp_path / "study"
    _run(study_cfg(only_arms=["good"]), out)
    _run(study_cfg(only_arms=["plain"]), out)
    study = json.loads((out / "study.json").read_text())
    keys = sorted(c["key"] for c in study["cells"])
    assert keys == sorted(f"w/{arm}/seed{s}" for arm in ("good", "plain") for s in range(3))
    assert all(c["state"] == "done" and c["cpu_s"] > 0 for c in study["cells"])
    assert study["cpu_s_total"] == pytest.approx(sum(c["cpu_s"] for c in study["cells"]))
    assert [c[0] for c in calls()].count("pretrain") == 6  # nothing was run twice
    md, _ = write_study_report(out)
    claim = next(line for line in md.read_text().splitlines() if line.startswith("good beats plain"))
    assert "w: not run" not in claim, claim  # both arms' cells are read


def test_a_missing_dataset_stops_the_study_before_any_cell(study_cfg, calls, tmp_path):
    """A dataset folder that does not exist is one line naming it and the fix, before any cell runs
    (it used to fail every cell on it, one after another, each with the loader's error)."""
    cfg = study_cfg(data={"w": str(tmp_path / "no_such_world")})
    with pytest.raises(DataError, match=r"dataset 'w': .*no_such_world not found.*glocal synth --out.*data\.w=PATH"):
        StudyRunner(cfg, tmp_path / "study", command=FAKE, log=lambda s: None, config_path="s.yaml").run()
    assert calls() == []  # nothing was started
