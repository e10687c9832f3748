"""The study config and its grid: typed keys, checks that name the culprit, cells and their configs,
the tasks each method can run, the dry-run estimate; the shipped configs resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from glocal.config import build
from glocal.errors import ConfigError
from glocal.study.config import StudyConfig, load_study_config
from glocal.study.grid import Cell, cell_config, cell_tasks, describe_plan, estimate_cpu_minutes, expand

ROOT = Path(__file__).resolve().parents[2]


def test_grid_is_every_dataset_arm_seed_seed_major(study_cfg, tmp_path):
    cfg = study_cfg(data={"w": "data/world", "r": "data/rp_big"}, seeds=[3, 5])
    cells = expand(cfg)
    assert len(cells) == 2 * 3 * 2 and len(set(cells)) == 12
    assert cells[:3] == [Cell("w", "good", 3), Cell("w", "plain", 3), Cell("w", "bad", 3)]
    assert {c.seed for c in cells[:6]} == {3}  # every arm of the first seed first
    assert Cell("r", "bad", 5).folder(tmp_path) == tmp_path / "cells" / "r" / "bad" / "seed5"
    assert Cell("r", "bad", 5).key == "r/bad/seed5"


def test_only_datasets_and_arms_select_a_part_of_the_grid(study_cfg, study_raw):
    """A part of a big study now, the rest later into the same folder: the selected cells keep
    their order and names; an unknown name is a one-line error naming the choices."""
    cfg = study_cfg(data={"w": "data/world", "r": "data/rp_big"}, seeds=[0, 1],
                    only_datasets=["w"], only_arms=["good", "plain"])
    assert expand(cfg) == [Cell("w", "good", 0), Cell("w", "plain", 0), Cell("w", "good", 1), Cell("w", "plain", 1)]
    assert "4 cells = 1 dataset(s) x 2 arm(s)" in describe_plan(cfg, 1) and "arm bad" not in describe_plan(cfg, 1)
    with pytest.raises(ConfigError, match=r"'only_arms' has \['nope'\]; choose from \['good', 'plain', 'bad'\]"):
        build(StudyConfig, study_raw(only_arms=["nope"]))


def test_cell_config_layers_the_overrides(study_cfg, tmp_path):
    cfg = study_cfg(overrides=["optim.lr=0.01", "method.weight_local=0.5"], threads_per_cell=3)
    plain = cell_config(cfg, Cell("w", "plain", 2), tmp_path)
    assert plain["method"]["weight_local"] == 0.0  # the arm's override wins over the study's
    assert plain["optim"]["lr"] == 0.01 and plain["train"]["seed"] == 2 and plain["train"]["num_threads"] == 3
    assert plain["train"]["out_dir"] == str(tmp_path / "cells" / "w" / "plain" / "seed2" / "pretrain")
    assert plain["data"]["root"] == str(tmp_path / "data_w") and plain["train"]["progress"] is False
    good = cell_config(cfg, Cell("w", "good", 2), tmp_path)
    assert good["method"]["weight_local"] == 0.5 and good["train"]["epochs"] == 1  # from the recipe


def test_a_bad_arm_override_names_the_arm_and_its_recipe(study_raw, tmp_path):
    raw = study_raw()
    raw["arms"][1]["overrides"] = ["method.weight_locl=0"]
    cfg = build(StudyConfig, raw)
    with pytest.raises(ConfigError, match=r"arm 'plain' on dataset 'w' \(base .*recipe.yaml\).*weight_locl"):
        cell_config(cfg, Cell("w", "plain", 0), tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"seeds": []}, "at least one seed"),
    ({"seeds": [0, 0]}, "repeats a seed"),
    ({"tasks": ["linear", "nope"]}, "unknown or none"),
    ({"data": {"w/x": "data/world"}}, "must be a folder name"),
    ({"parallel": 0}, "out of range"),
    ({"budget": {"estimate_cpu_minutes": {"nope": 3}}}, "no such dataset"),
    ({"claims": [{"name": "c", "text": "t", "arms": ["good"], "baselines": ["nobody"], "metrics": ["linear/top1"]}]},
     "claims\\[0\\].baselines"),
    ({"claims": [{"name": "c", "text": "t", "arms": ["good"], "baselines": ["plain"], "metrics": ["sound/top1"]}]},
     "task/metric with a task that runs on every dataset"),
    ({"claims": [{"name": "c", "text": "t", "arms": ["good"], "baselines": ["good"], "metrics": ["linear/top1"]}]},
     "both compared and baseline"),
])
def test_bad_configs_name_the_key(study_raw, change, message):
    with pytest.raises(ConfigError, match=message):
        build(StudyConfig, study_raw(**change))


def test_duplicate_arm_and_missing_dataset_recipe(study_raw):
    raw = study_raw()
    raw["arms"][2]["name"] = "good"
    with pytest.raises(ConfigError, match="names two arms"):
        build(StudyConfig, raw)
    raw = study_raw(data={"w": "data/world", "r": "data/rp_big"})
    raw["arms"][0]["config"] = {"w": "configs/demo.yaml"}
    with pytest.raises(ConfigError, match="arm 'good' has no config for dataset 'r'"):
        build(StudyConfig, raw)


def test_video_only_methods_skip_audio_tasks(study_cfg, tmp_path):
    cfg = study_cfg(tasks=["linear", "sound", "localization"], claims=[])
    resolved = cell_config(cfg, Cell("w", "good", 0), tmp_path)
    assert cell_tasks(cfg, resolved, "w") == (["linear", "sound", "localization"], {})
    tasks, skipped = cell_tasks(cfg, {"method": {"name": "simclr"}}, "w")
    assert tasks == ["linear"] and set(skipped) == {"sound", "localization"} and "audio" in skipped["sound"]


def test_dataset_tasks_add_tasks_where_the_labels_are(study_raw, tmp_path):
    raw = study_raw(data={"w": "data/world", "r": "data/rp_big"}, dataset_tasks={"w": ["temporal", "linear"]})
    claim = {"name": "t", "text": "t", "arms": ["good"], "baselines": ["plain"], "metrics": ["temporal/top1"]}
    with pytest.raises(ConfigError, match=r"'temporal/top1'.*\['r'\]"):  # temporal does not run on r
        build(StudyConfig, {**raw, "claims": [claim]})
    cfg = build(StudyConfig, {**raw, "claims": [{**claim, "datasets": ["w"]}]})
    assert cfg.tasks_for("w") == ["linear", "retrieval", "temporal"] and cfg.tasks_for("r") == ["linear", "retrieval"]
    resolved = cell_config(cfg, Cell("w", "good", 0), tmp_path)
    assert cell_tasks(cfg, resolved, "w")[0] == ["linear", "retrieval", "temporal"]
    assert cell_tasks(cfg, resolved, "r")[0] == ["linear", "retrieval"]
    tasks, skipped = cell_tasks(cfg, {"method": {"name": "avid"}}, "w")  # no per-step features
    assert tasks == ["linear", "retrieval"] and "local video features" in skipped["temporal"]
    with pytest.raises(ConfigError, match="dataset_tasks.x: no such dataset"):
        build(StudyConfig, study_raw(dataset_tasks={"x": ["temporal"]}))
    with pytest.raises(ConfigError, match="unknown \\['nope'\\]"):
        build(StudyConfig, study_raw(dataset_tasks={"w": ["nope"]}))


def test_estimates_use_the_budget_then_measured_cells(study_raw):
    raw = study_raw(budget={"estimate_cpu_minutes": {"w": 10}})
    raw["arms"][1]["cost"] = 0.5
    cfg = build(StudyConfig, raw)
    assert estimate_cpu_minutes(cfg, Cell("w", "plain", 0)) == 5.0
    assert estimate_cpu_minutes(cfg, Cell("w", "good", 0), {"w": [("plain", 4.0)]}) == 8.0  # 4 / 0.5 per unit cost
    assert estimate_cpu_minutes(cfg, Cell("w", "plain", 0), {"w": [("plain", 4.0), ("good", 30.0)]}) == 4.0
    text = describe_plan(cfg, parallel=2)
    assert "9 cells = 1 dataset(s) x 3 arm(s) x 3 seed(s)" in text and "1.2 CPU hours in all" in text  # 3 x (10 + 5 + 10) min


def test_override_on_the_command_line(tmp_path, recipe):
    path = tmp_path / "s.yaml"
    path.write_text(f"data: {{w: data/world}}\narms: [{{name: a, config: {recipe}}}]\n")
    cfg = load_study_config(path, ["seeds=[4]", "parallel=3"])
    assert cfg.seeds == [4] and cfg.parallel == 3 and cfg.tasks == ["linear", "retrieval", "sound", "localization"]


@pytest.mark.parametrize("name", ["smoke.yaml", "claims.yaml"])
def test_shipped_study_configs_resolve_every_cell(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # their recipe paths are relative to the repository
    cfg = load_study_config(ROOT / "configs" / "study" / name)
    for cell in expand(cfg):
        cell_config(cfg, cell, tmp_path)
    if name == "claims.yaml":
        assert len(cfg.seeds) == 3 and set(cfg.data) == {"world", "real_parts"}
        # 34.0 before the 40-epoch AVID and SimCLR recipes; each real_parts cost +0.6 / +0.7 of
        # 40 CPU min over 3 seeds = +2.6 CPU hours
        assert "36.6 CPU hours" in describe_plan(cfg, 1)
        by_name = {a.name: a for a in cfg.arms}
        assert by_name["glcm_global_only"].overrides == ["method.weight_local=0"]
        assert by_name["avts_plain"].overrides == ["method.weight_pretext=0", "method.nn_k=0"]
