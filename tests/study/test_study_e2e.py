"""End to end: configs/study/smoke.yaml (2 arms x 2 seeds of a tiny GLCM) on a tiny generated world,
real `glocal pretrain` / `glocal eval` subprocesses, then `glocal report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glocal.cli import main
from fixtures.worlds import small_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_study_and_report(tmp_path, monkeypatch, capsys):
    world = small_world(tmp_path / "world", 16, 1.0, fps=16)
    monkeypatch.chdir(ROOT)  # the smoke recipe's path is relative to the repository
    out = tmp_path / "study"
    rc = main(["study", "configs/study/smoke.yaml", "--out", str(out), f"data.world={world}", "parallel=2",
               "overrides=[method.width_mult=0.125,method.fast_width_mult=0.5,method.audio_width_mult=0.125,"
               "method.proj_dim_global=16,method.proj_dim_local=8,method.n_mels=32,data.clip_frames=8,"
               "data.num_workers=0,train.epochs=2,train.batch_size=4,train.log_every=1,train.precision=fp32]"])
    printed = capsys.readouterr()
    assert rc == 0, printed.out + printed.err
    assert "2 seed(s)" in printed.err  # fewer than 3 seeds: warned
    assert "4/4 cells done" in printed.out
    study = json.loads((out / "study.json").read_text())
    assert [c["state"] for c in study["cells"]] == ["done"] * 4 and study["cpu_s_total"] > 0
    for cell in study["cells"]:
        folder = Path(cell["dir"])
        report = json.loads((folder / "eval.json").read_text())
        assert set(report["metrics"]) == {"checkpoint", "random_init"} and report["tasks"] == ["linear", "retrieval"]
        assert (folder / "pretrain" / "ckpt_epoch0002.pt").is_file()
    assert main(["study", "configs/study/smoke.yaml", "--out", str(out), f"data.world={world}", "parallel=2",
                 "overrides=[method.width_mult=0.125,method.fast_width_mult=0.5,method.audio_width_mult=0.125,"
                 "method.proj_dim_global=16,method.proj_dim_local=8,method.n_mels=32,data.clip_frames=8,"
                 "data.num_workers=0,train.epochs=2,train.batch_size=4,train.log_every=1,train.precision=fp32]"]) == 0
    assert "4 cells (4 already done)" in capsys.readouterr().out  # resumed: nothing to do

    assert main(["report", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "| glcm_local_helps |" in md and "inconclusive" in md  # 2 seeds < 3: inconclusive by rule
    assert "world: linear/top1" in md and (out / "curves_world.png").is_file()
    assert "data:image/png;base64," in (out / "report.html").read_text()
