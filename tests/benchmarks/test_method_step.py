"""benchmarks/method_step.py: arm parsing, and a tiny AVTS recipe timed in two arms on one batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import method_step  # noqa: E402
from fixtures.worlds import small_world  # noqa: E402


def test_parse_arm() -> None:
    assert method_step.parse_arm("recipe=") == ("recipe", [])
    assert method_step.parse_arm("vv=method.weight_vv=0.5,train.seed=2") == ("vv", ["method.weight_vv=0.5", "train.seed=2"])
    with pytest.raises(SystemExit, match="NAME=OVERRIDES"):
        method_step.parse_arm("no-equals")


def test_two_arms_share_one_batch_and_report_cpu_time(tmp_path: Path) -> None:
    world = small_world(tmp_path / "world", 6, 2.0, fps=16)
    raw = yaml.safe_load((ROOT / "configs" / "real" / "avts.yaml").read_text())
    raw["method"].update(width_mult=0.125, audio_width_mult=0.125, proj_hidden=16, proj_dim=8, pretext_hidden=8,
                         audio_seconds=0.5)
    raw["data"].update(root=str(world), clip_frames=4, crop_size=32, num_workers=0)
    raw["train"].update(batch_size=2, precision="fp32")
    cfg = tmp_path / "avts_tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "step.json"
    res = method_step.main(["--config", str(cfg), "--arm", "recipe=", "--arm", "keys=method.weight_vv=1e-9",
                            "--iters", "2", "--warmup", "0", "--data-batches", "2", "--json", str(out)])
    report = json.loads(out.read_text())
    arms = report["arms"]
    assert report["data_cpu_s"] > 0 and len(report["data_cpu_samples"]) == 2
    assert arms == json.loads(json.dumps(res["arms"]))
    assert arms["recipe"]["cpu_ratio"] == 1.0 and arms["keys"]["overrides"] == ["method.weight_vv=1e-9"]
    assert all(a["cpu_s"] > 0 and a["wall_s"] > 0 and len(a["cpu_samples"]) == 2 for a in arms.values())
