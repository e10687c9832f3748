"""Fixtures for the training-engine tests: a tiny generated world and a tiny GLCM config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from fixtures.worlds import small_world
from glocal.train.config import PretrainConfig, config_from_dict

#: A GLCM small enough for a CPU step in ~30 ms on 32x32 clips of 8 frames.
TINY_METHOD: dict[str, Any] = dict(
    name="glcm", width_mult=0.125, fast_width_mult=0.5, audio_width_mult=0.125, stem_pool=False, slow_stride=4,
    proj_dim_global=16, proj_dim_local=8, n_mels=32,
)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 one-second 32x32 videos (11 train / 2 val / 3 test), generated once per session."""
    return small_world(tmp_path_factory.mktemp("world"), 16, 1.0, fps=16)


def _tiny_raw(world: Path, out_dir: Path, **train: Any) -> dict[str, Any]:
    """Raw config dict: tiny GLCM, 8-frame 32x32 clips, fp32, 1 thread, deterministic order."""
    return {
        "method": dict(TINY_METHOD),
        "data": {"root": str(world), "clip_frames": 8, "fps": 16.0, "crop_size": 32, "sample_rate": 16000,
                 "num_workers": 0},
        "optim": {"lr": 1.0e-3},
        "train": {"out_dir": str(out_dir), "epochs": 2, "batch_size": 4, "precision": "fp32", "log_every": 1,
                  "num_threads": 1, "progress": False, **train},
    }


@pytest.fixture(scope="session")
def tiny_raw(tiny_world: Path) -> Callable[..., dict[str, Any]]:
    """Factory ``tiny_raw(out_dir, method=None, data=None, **train)`` of raw config dicts."""

    def make(out_dir: Path, method: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
             **train: Any) -> dict[str, Any]:
        raw = _tiny_raw(tiny_world, out_dir, **train)
        raw["method"].update(method or {})
        raw["data"].update(data or {})
        return raw

    return make


@pytest.fixture(scope="session")
def tiny_config(tiny_raw: Callable[..., dict[str, Any]]) -> Callable[..., PretrainConfig]:
    """Factory ``tiny_config(out_dir, method=None, data=None, **train)`` of validated configs."""

    def make(out_dir: Path, method: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
             **train: Any) -> PretrainConfig:
        return config_from_dict(tiny_raw(out_dir, method, data, **train))

    return make
