"""benchmarks/feed.py: the draws it times, and a smoke run that writes every figure of --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import feed  # noqa: E402


def test_draws_cover_every_sample_with_a_new_epoch_per_pass() -> None:
    draws = feed.Draws(n_videos=3, samples=7, batch=3)
    first = [item for batch in draws for item in batch]
    second = [item for batch in draws for item in batch]
    assert [len(b) for b in draws] == [3, 3, 1] and len(draws) == 3
    assert [v for _, v in first] == [0, 1, 2, 0, 1, 2, 0] == [v for _, v in second]
    # every draw of every pass is another epoch, so each plans its own clip start
    epochs = [e for e, _ in first + second]
    assert len(set(epochs)) == len(epochs)


@pytest.mark.slow
def test_quick_run_writes_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "feed.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "feed.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    for key in ("raw_ms_per_sample", "prepared_ms_per_sample", "main_ms_per_sample", "cores_per_accelerator"):
        assert figures[key] > 0, key
    # prepared sources are cheaper to read than the 250-frame-keyframe raw ones
    assert figures["prepared_ms_per_sample"] < figures["raw_ms_per_sample"]
    assert figures["cores_per_accelerator"] == pytest.approx(685 * figures["prepared_ms_per_sample"] / 1000)
    assert "prepared_ms_per_sample" in proc.stdout and "open + probe" in proc.stdout
