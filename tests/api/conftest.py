"""Fixtures of the API tests: a tiny generated world and tiny checkpoints (GLCM: video + audio;
SimCLR: video only), random weights saved in the ``glocal pretrain`` checkpoint format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fixtures.tiny_models import TINY_GLCM, TINY_SIMCLR, save_tiny_checkpoint, tiny_config, tiny_method
from fixtures.worlds import small_world


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_world(tmp_path_factory.mktemp("api_world") / "world", 6, 1.5, num_classes=2, seed=0)


def _checkpoint(tmp_path_factory, world: Path, method: dict, name: str) -> Path:
    cfg = tiny_config(world, method, batch_size=4)
    return save_tiny_checkpoint(tmp_path_factory.mktemp(name) / "ckpt_epoch0001.pt", cfg, tiny_method(cfg))


@pytest.fixture(scope="session")
def glcm_ckpt(tmp_path_factory: pytest.TempPathFactory, api_world: Path) -> Path:
    return _checkpoint(tmp_path_factory, api_world, TINY_GLCM, "glcm_ckpt")


@pytest.fixture(scope="session")
def simclr_ckpt(tmp_path_factory: pytest.TempPathFactory, api_world: Path) -> Path:
    return _checkpoint(tmp_path_factory, api_world, TINY_SIMCLR, "simclr_ckpt")
