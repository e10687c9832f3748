"""Fixtures of the study tests: a tiny pretraining recipe, a study config over it, the fake glocal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from glocal.config import build
from glocal.study.config import StudyConfig
from glocal.study.runner import StudyRunner

HERE = Path(__file__).resolve().parent
FAKE = [sys.executable, str(HERE / "fake_glocal.py")]

#: a GLCM recipe small enough to resolve instantly (the fake never trains it)
RECIPE = {
    "method": {"name": "glcm", "width_mult": 0.125, "fast_width_mult": 0.5, "audio_width_mult": 0.125,
               "stem_pool": False, "proj_dim_global": 16, "proj_dim_local": 8, "n_mels": 32},
    "data": {"root": "data/world", "clip_frames": 8, "num_workers": 0},
    "train": {"epochs": 1, "batch_size": 4},
}


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


@pytest.fixture
def study_raw(recipe: Path, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``study_raw(**top)``: a raw study config, arms good / plain / bad over the recipe, 3 seeds, on
    dataset ``w`` (an empty folder: the fake glocal reads nothing, the runner checks it exists)."""
    world = tmp_path / "data_w"
    world.mkdir(exist_ok=True)

    def make(**top: Any) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "data": {"w": str(world)},
            "arms": [{"name": "good", "config": str(recipe)},
                     {"name": "plain", "config": str(recipe), "overrides": ["method.weight_local=0"]},
                     {"name": "bad", "config": str(recipe), "overrides": ["method.weight_global=0"]}],
            "seeds": [0, 1, 2],
            "tasks": ["linear", "retrieval"],
            "parallel": 2,
            "claims": [
                {"name": "good_wins", "text": "good beats plain", "arms": ["good"], "baselines": ["plain"],
                 "metrics": ["linear/top1", "retrieval/R@1"]},
                {"name": "bad_wins", "text": "bad beats plain", "arms": ["bad"], "baselines": ["plain"],
                 "metrics": ["linear/top1"]},
                {"name": "good_vs_random", "text": "good beats random init", "arms": ["good"],
                 "baselines": ["random_init"], "metrics": ["linear/top1"]},
            ],
        }
        raw.update(top)
        return raw

    return make


@pytest.fixture
def study_cfg(study_raw: Callable[..., dict[str, Any]]) -> Callable[..., StudyConfig]:
    return lambda **top: build(StudyConfig, study_raw(**top))


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[list[str]]]:
    """The fake glocal's calls so far (each its argv)."""
    path = tmp_path / "calls.jsonl"
    path.touch()
    monkeypatch.setenv("FAKE_CALLS", str(path))
    return lambda: [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
def finished_study(study_cfg, calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A study of the three arms over 3 seeds run with the fake glocal, ``w/bad/seed2`` failed:
    8 of 9 cells finished."""
    out = tmp_path / "study"
    monkeypatch.setenv("FAKE_FAIL", "w/bad/seed2")
    StudyRunner(study_cfg(), out, command=FAKE, log=lambda s: None, config_path="s.yaml").run()
    return out
