"""Fixtures of the API tests: a tiny generated world and tiny checkpoints (GLCM: video + audio;
SimCLR: video only), random weights saved in the ``glocal pretrain`` checkpoint format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glocal.data.synth import WorldConfig, generate_world
from glocal.methods import build_method
from glocal.runtime.checkpoint import save_checkpoint
from glocal.train.config import config_from_dict

TINY_GLCM = dict(name="glcm", width_mult=0.125, fast_width_mult=0.25, audio_width_mult=0.125, stem_pool=True,
                 slow_stride=4, proj_dim_global=16, proj_dim_local=8, n_mels=32)
TINY_SIMCLR = dict(name="simclr", depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api_world") / "world"
    generate_world(WorldConfig(num_videos=6, duration=1.5, height=32, width=32, num_classes=2, seed=0), out,
                   workers=1, progress=False)
    return out


def _checkpoint(tmp_path_factory, world: Path, method: dict, name: str) -> Path:
    cfg = config_from_dict({
        "method": dict(method),
        "data": {"root": str(world), "clip_frames": 8, "fps": 8.0, "crop_size": 32, "sample_rate": 8000,
                 "num_workers": 0},
        "train": {"seed": 0, "device": "cpu", "batch_size": 4},
    })
    torch.manual_seed(1)
    m = build_method(cfg.method, cfg.data).eval()
    path = tmp_path_factory.mktemp(name) / "ckpt_epoch0001.pt"
    save_checkpoint({"method": method["name"], "config": cfg.to_dict(), "model": m.state_dict(), "epoch": 1,
                     "step": 1}, path)
    return path


@pytest.fixture(scope="session")
def glcm_ckpt(tmp_path_factory: pytest.TempPathFactory, api_world: Path) -> Path:
    return _checkpoint(tmp_path_factory, api_world, TINY_GLCM, "glcm_ckpt")


@pytest.fixture(scope="session")
def simclr_ckpt(tmp_path_factory: pytest.TempPathFactory, api_world: Path) -> Path:
    return _checkpoint(tmp_path_factory, api_world, TINY_SIMCLR, "simclr_ckpt")
