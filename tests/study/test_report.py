"""glocal report on a study run with the stand-in glocal: verdicts, tables, curves, CPU, one HTML file."""

from __future__ import annotations

import base64
import re

import pytest

from glocal.cli import main
from glocal.errors import DataError
from glocal.study.report import write_study_report


def test_report_states_verdicts_numbers_and_cpu(finished_study, tmp_path):
    md_path, html_path = write_study_report(finished_study, tmp_path / "rep")
    md = md_path.read_text()
    assert "| good_wins | good beats plain | holds | holds |" in md
    assert "| good_vs_random | good beats random init | holds | holds |" in md
    # bad is worse, but its seed 2 failed: 2 paired seeds < min_seeds=3 -> inconclusive by rule
    assert "| bad_wins | bad beats plain | inconclusive | inconclusive |" in md
    # the paired comparison: good 0.61 ± 0.01 vs plain 0.41 ± 0.01, diff +0.200 ± 0.000
    assert "| w | good | plain | linear/top1 | 3 | 0.610 ± 0.010 | 0.410 ± 0.010 | +0.200 ± 0.000 |" in md
    assert "| good | 3 | 0.610 ± 0.010 | 0.100 ± 0.000 |" in md  # per-metric table with the random-init twin
    assert "| bad | 2 | 0.205 ± 0.007 | 0.100 ± 0.000 |" in md  # the failed seed left out
    assert "| w/bad/seed2 | failed |" in md and "Rule: A claim holds" in md
    assert "8 of 9 cells finished" in md
    # which method for which task: the arms without overrides (good only here); with table_arms, all three
    assert "| linear/top1 | good 0.610 (n=3) | - | +0.510 ± 0.006 (p " in md
    assert (tmp_path / "rep" / "curves_w.png").is_file() and "![w: training loss" in md

    page = html_path.read_text()
    assert "<script" not in page.lower() and not re.search(r"(src|href)=['\"](?!data:)", page)
    assert "http://" not in page and "https://" not in page
    (uri,) = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert base64.b64decode(uri)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "class='holds'" in page and "class='inconclusive'" in page


def test_a_moved_study_folder_still_reports(finished_study, tmp_path):
    moved = tmp_path / "moved"
    finished_study.rename(moved)
    md, _ = write_study_report(moved)
    assert "8 of 9 cells finished" in md.read_text()


def test_report_cli_and_a_folder_that_is_no_study(finished_study, tmp_path, capsys):
    assert main(["report", str(finished_study)]) == 0
    assert (finished_study / "report.html").is_file() and "wrote" in capsys.readouterr().out
    with pytest.raises(DataError, match="has no study.json"):
        write_study_report(tmp_path)
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "has no study.json" in capsys.readouterr().err


def test_which_method_table_ranks_the_table_arms(study_cfg):
    from glocal.study.report import which_method

    cfg = study_cfg(table_arms=["plain", "good", "bad"])
    values = {"w": {arm: {s: {"linear/top1": base + 0.01 * s, "random_init:linear/top1": 0.1} for s in range(3)}
                    for arm, base in (("good", 0.6), ("plain", 0.4), ("bad", 0.2))}}
    (row,) = which_method(cfg, values, "w", ["linear/top1"])
    assert row[0] == "linear/top1" and row[1] == "good 0.610 (n=3)"
    assert row[2].startswith("plain 0.410: +0.200 ± 0.000 (p ") and row[4] == "plain 0.410, bad 0.210"
    assert which_method(cfg, values, "w", ["sound/top1"]) == []  # no arm has it
