"""benchmarks/seed_table.py: paired difference and its standard error, by hand."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("seed_table", ROOT / "benchmarks" / "seed_table.py")
seed_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_table)


def _report(trained: float, random: float) -> dict:
    return {"metrics": {"checkpoint": {"linear": {"top1": trained}}, "random_init": {"linear": {"top1": random}}}}


def test_paired_difference_standard_error_and_verdict(tmp_path, capsys) -> None:
    # diffs 0.10, 0.20, 0.30: mean 0.2, std 0.1, SE 0.1/sqrt(3) = 0.0577 -> beats (0.2 > 0.115)
    reports = [_report(0.3, 0.2), _report(0.5, 0.3), _report(0.4, 0.1)]
    (row,) = seed_table.seed_rows(reports)
    assert math.isclose(row["diff"], 0.2) and math.isclose(row["se"], 0.1 / math.sqrt(3))
    assert row["beats"] and math.isclose(row["trained"][0], 0.4) and math.isclose(row["random"][1], 0.1)
    # diffs 0.3, -0.1, 0.1: mean 0.1, std 0.2, SE 0.115 -> does not beat
    (row,) = seed_table.seed_rows([_report(0.4, 0.1), _report(0.1, 0.2), _report(0.3, 0.2)])
    assert not row["beats"]
    paths = []
    for i, r in enumerate(reports):
        paths.append(tmp_path / f"s{i}.json")
        paths[-1].write_text(json.dumps(r))
    assert seed_table.main(["GLCM", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "| linear top1 | 0.400 ± 0.100 | 0.200 ± 0.100 | +0.200 ± 0.058 | yes |" in out


def test_one_seed_gives_no_verdict_and_missing_tasks_are_left_out() -> None:
    rows = seed_table.seed_rows([_report(0.3, 0.2)])
    assert len(rows) == 1 and not rows[0]["beats"] and "| - |" in seed_table.markdown("x", rows)
