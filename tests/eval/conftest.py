"""Session fixtures of the evaluation tests: one tiny generated world, one tiny GLCM checkpoint.

The world (24 videos of 2 s, 32x32, 3 classes, 3 rhythms, fakes for the test split) and the
checkpoint (random weights of a tiny GLCM, saved in the ``glocal pretrain`` checkpoint format) are
built once per session; contexts share one feature cache so that every protocol extracts each
kind of feature once per model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

from glocal.data.synth import WorldConfig, generate_world
from glocal.eval.context import EvalContext, EvalOptions
from glocal.eval.features import EvalData
from glocal.methods import Method, build_method
from glocal.runtime.checkpoint import save_checkpoint
from glocal.train.config import PretrainConfig, config_from_dict

TINY_METHOD = dict(name="glcm", width_mult=0.125, fast_width_mult=0.25, audio_width_mult=0.125, stem_pool=True,
                   slow_stride=4, proj_dim_global=16, proj_dim_local=8, n_mels=32)


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Tiny L-BFGS fits are much slower with multi-threaded BLAS on a busy 2-core machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_world") / "world"
    generate_world(WorldConfig(num_videos=24, duration=2.0, height=32, width=32, num_classes=3, seed=0), out,
                   workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_cfg(tiny_world: Path) -> PretrainConfig:
    return config_from_dict({
        "method": dict(TINY_METHOD),
        "data": {"root": str(tiny_world), "clip_frames": 8, "fps": 8.0, "crop_size": 32, "sample_rate": 8000,
                 "num_workers": 0},
        "train": {"seed": 0, "device": "cpu", "batch_size": 8},
    })


@pytest.fixture(scope="session")
def tiny_method(tiny_cfg: PretrainConfig) -> Method:
    torch.manual_seed(1)
    return build_method(tiny_cfg.method, tiny_cfg.data).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_cfg: PretrainConfig, tiny_method: Method) -> Path:
    path = tmp_path_factory.mktemp("eval_ckpt") / "ckpt_epoch0001.pt"
    save_checkpoint({"method": "glcm", "config": tiny_cfg.to_dict(), "model": tiny_method.state_dict(),
                     "epoch": 1, "step": 1}, path)
    return path


@pytest.fixture(scope="session")
def shared_cache() -> dict:
    return {}


TINY_DATA = EvalData(clip_frames=8, fps=8.0, crop_size=32, sample_rate=8000, batch_size=16, num_workers=0)


@pytest.fixture
def make_ctx(tiny_world: Path, shared_cache: dict):
    """``make_ctx(**option_overrides)`` → an :class:`EvalContext` on the tiny world (shared cache)."""

    def make(root: Path | None = None, data: EvalData = TINY_DATA, **options) -> EvalContext:
        opts = EvalOptions(**{"head_epochs": 5, "finetune_epochs": 1, "finetune_test_clips": 2, **options})
        cache = shared_cache if root is None else {}
        return EvalContext(Path(root or tiny_world), data, progress=False, seed=0, options=opts, cache=cache)

    return make
