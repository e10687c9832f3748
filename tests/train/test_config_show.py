"""`glocal config show`: the resolved config with its changes marked, and the dataset it reads."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from glocal.cli import main
from glocal.train.config import load_pretrain_config

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "glcm.yaml")


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def test_text_is_the_resolved_config_with_changes_marked(tiny_world: Path, tmp_path: Path, monkeypatch,
                                                         capsys) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even train.out_dir (runs/glcm)
    before = _tree(tiny_world)
    overrides = [f"data.root={tiny_world}", "train.epochs=3", "method.tau=0.1"]
    assert main(["config", "show", CONFIG, *overrides]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "  epochs: 3  # override (default: 10)" in lines
    assert "  tau: 0.1  # override (default: 0.07)" in lines
    assert "  seed: 2021  # set (default: 0)" in lines  # from the YAML, not the default
    assert "  warmup_epochs: 1.0  # set (default: 0.0)" in lines
    assert "  batch_size: 32" in lines  # YAML value equal to the default: unmarked
    assert "  grad_clip: null" in lines  # a field the YAML does not name: its default, unmarked
    # the text is YAML: the config part equals what `glocal pretrain` would load, every field present
    shown = yaml.safe_load(text)
    dataset = shown.pop("dataset")
    assert shown == load_pretrain_config(CONFIG, overrides).to_dict()
    assert dataset["files"] == 16 and dataset["layout"] == "csv"
    assert list(tmp_path.iterdir()) == [] and _tree(tiny_world) == before


def test_json_dataset_matches_the_manifest(tiny_world: Path, capsys) -> None:
    assert main(["config", "show", CONFIG, "--json", f"data.root={tiny_world}", "data.split=test"]) == 0
    shown = json.loads(capsys.readouterr().out)
    with open(tiny_world / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    d = shown["dataset"]
    assert d["files"] == len(rows)
    assert d["splits"] == dict(Counter(r["split"] for r in rows))
    assert d["classes"] == len({r["label"] for r in rows}) and d["class_names"] == sorted({r["label"] for r in rows})
    n_test = sum(r["split"] == "test" for r in rows)
    assert d["training_split"] == "test" and d["training_files"] == d["training_labelled"] == n_test
    assert d["made_by"] == ["generated world (glocal synth)"] and d["annotations"] == "annotations.json"
    probe = d["probe"]
    assert probe["probed"] == min(8, n_test) and probe["of"] == n_test
    assert probe["with_audio"] == probe["with_video"] == probe["probed"] and probe["audio_rates"] == [16000]
    assert probe["frame_sizes"] == ["32x32"] and probe["duration_s"]["median"] == pytest.approx(1.0, abs=0.1)
    sample = d["sample"]  # GLCM: one clip of data.clip_frames at data.fps, audio over the same span
    assert sample["modalities"] == ["video", "audio"] and sample["sampler"] == "ContiguousClipSampler"
    (view,) = sample["views"]
    assert view["frames"] == 32 and view["span_s"] == pytest.approx(32 / 25) and view["audio_s"] == pytest.approx(1.28)
    assert sample["crop_size"] == 112 and sample["audio_sample_rate"] == 16000 and d["prepared"] is None
    assert any("crop_size=112 is larger than the frames" in n for n in d["notes"])  # 32x32 videos
    assert shown["marks"]["data.split"] == {"mark": "override", "default": "train"}
    assert shown["config"]["data"]["split"] == "test"


def test_prepared_record_is_shown_and_checked(tiny_world: Path, tmp_path: Path, capsys) -> None:
    prepared = tmp_path / "prep"
    shutil.copytree(tiny_world, prepared)
    params = {"short_side": 32, "max_fps": 16.0, "keyframe_s": 0.5, "sample_rate": 8000}
    (prepared / "prepared.json").write_text(json.dumps({"format": "glocal-prepared-v1", "params": params}))
    assert main(["config", "show", CONFIG, "--json", f"data.root={prepared}", "data.crop_size=32"]) == 0
    d = json.loads(capsys.readouterr().out)["dataset"]
    assert d["prepared"] == params and "prepared copy (glocal prepare)" in d["made_by"]
    notes = " ".join(d["notes"])
    assert "data.fps=25 is higher than the 16 fps cap" in notes
    assert "data.sample_rate=16000 is higher than the 8000 Hz" in notes


def test_bad_key_is_the_same_one_line_error_as_pretrain(tiny_world: Path, tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for bad in ("train.epoch=3", "method.tau=0"):
        assert main(["config", "show", CONFIG, f"data.root={tiny_world}", bad]) == 2
        shown = capsys.readouterr()
        assert main(["pretrain", "--config", CONFIG, f"data.root={tiny_world}", bad]) == 2
        assert shown.err == capsys.readouterr().err and shown.out == ""
        assert shown.err.startswith("glocal: error: ") and shown.err.count("\n") == 1
        assert bad.split("=")[0] in shown.err
    assert list(tmp_path.iterdir()) == []


def test_missing_data_root_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["config", "show", CONFIG, f"data.root={tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data folder not found" in err and str(tmp_path / "nope") in err
    assert main(["config", "show", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_config_group_help_lists_show(capsys) -> None:
    assert main(["config"]) == 0
    assert "show" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["config", "--help"])
    assert "show" in capsys.readouterr().out
