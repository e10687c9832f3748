"""glocal report --archive: a checkpoint-free copy of a study that reports the same verdicts on its own."""

from __future__ import annotations

import json
import shutil

import pytest

from glocal.cli import main
from glocal.errors import ConfigError, DataError
from glocal.study.archive import archive_study
from glocal.study.report import write_study_report


def _verdict_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("| w |") or "| holds |" in line
            or "| inconclusive |" in line]


def test_the_archive_has_no_checkpoint_and_reports_like_the_study(finished_study, tmp_path):
    assert list(finished_study.rglob("*.pt")), "the fake study writes checkpoints"
    (finished_study / "cells" / "w" / "good" / "seed0" / "running.pid").write_text("123")
    counts = archive_study(finished_study, tmp_path / "arch")
    arch = tmp_path / "arch"
    assert not list(arch.rglob("*.pt")) and not list(arch.rglob("*.pid"))
    assert counts["cells"] == 9 and counts["skipped"] >= 9 and counts["files"] > 0
    for name in ("config.yaml", "done.json", "eval.json", "pretrain/log.csv"):
        assert (arch / "cells" / "w" / "good" / "seed1" / name).is_file(), name
    study = json.loads((arch / "study.json").read_text())
    assert all(not c["dir"].startswith("/") for c in study["cells"])  # relative: the copy is self-contained

    original, _ = write_study_report(finished_study, tmp_path / "rep_original")
    # the original is gone: the archive alone must give the same verdicts and numbers
    shutil.rmtree(finished_study)
    copy, _ = write_study_report(arch, tmp_path / "rep_archive")
    lines = _verdict_lines(copy.read_text())
    assert lines and lines == _verdict_lines(original.read_text())
    assert "8 of 9 cells finished" in copy.read_text()


def test_a_copied_study_reads_its_own_cells_not_the_originals(finished_study, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished_study, copy)
    # change one result in the copy only: the copy's report must show it although the original exists
    path = copy / "cells" / "w" / "good" / "seed0" / "eval.json"
    report = json.loads(path.read_text())
    assert report["metrics"]["checkpoint"]["linear"]["top1"] == pytest.approx(0.60)
    report["metrics"]["checkpoint"]["linear"]["top1"] = 0.99
    path.write_text(json.dumps(report))
    md, _ = write_study_report(copy, tmp_path / "rep")
    assert "| good | 3 | 0.740 ± " in md.read_text()  # (0.99 + 0.61 + 0.62) / 3, not the original's 0.610


def test_archive_refuses_a_folder_inside_the_study_or_a_used_one(finished_study, tmp_path):
    with pytest.raises(ConfigError, match="inside the study folder"):
        archive_study(finished_study, finished_study / "arch")
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.json").write_text("{}")
    with pytest.raises(ConfigError, match="is not empty"):
        archive_study(finished_study, used)
    with pytest.raises(DataError, match="has no study.json"):
        archive_study(tmp_path / "nowhere", tmp_path / "a2")


def test_report_cli_archives_then_reports(finished_study, tmp_path, capsys):
    assert main(["report", str(finished_study), "--archive", str(tmp_path / "arch")]) == 0
    out = capsys.readouterr().out
    assert "archived 9 cells" in out and "left out" in out
    assert (tmp_path / "arch" / "report.md").is_file() and (tmp_path / "arch" / "report.html").is_file()
    assert not (finished_study / "report.md").exists()
