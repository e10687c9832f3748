"""`glocal study` on the command line: --dry-run prints the grid and the estimate and writes nothing;
a bad key is one line naming it (exit status 2), before any work."""

from __future__ import annotations

from pathlib import Path

import yaml

from glocal.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_prints_the_claims_estimate_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "never"
    assert main(["study", "configs/study/claims.yaml", "--out", str(out), "--dry-run", "--parallel", "3"]) == 0
    printed = capsys.readouterr().out
    assert "96 cells = 2 dataset(s) x 16 arm(s) x 3 seed(s)" in printed and "3 cell(s) at once" in printed
    assert "estimate: 36.6 CPU hours in all" in printed and "(fits)" in printed
    assert not out.exists()


def test_bad_keys_are_one_line(study_raw, tmp_path, capsys):
    raw = study_raw()
    raw["arms"][1]["overrides"] = ["method.weight_locl=0"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["study", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arm 'plain'" in err[0] and "weight_locl" in err[0]
    assert main(["study", str(path), "--out", str(tmp_path / "o"), "seeds=[]"]) == 2
    assert "at least one seed" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
