"""Session fixtures of the evaluation tests: one tiny generated world, one tiny GLCM checkpoint.

The world (24 videos of 2 s, 32x32, 3 classes, 3 rhythms, fakes for the test split) and the
checkpoint (random weights of a tiny GLCM, saved in the ``glocal pretrain`` checkpoint format) are
built once per session; contexts share one feature cache so that every protocol extracts each
kind of feature once per model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from glocal.eval.context import EvalContext, EvalOptions
from glocal.eval.features import EvalData
from fixtures.tiny_models import TINY_GLCM, save_tiny_checkpoint, tiny_config
from fixtures.worlds import small_world
from fixtures.tiny_models import tiny_method as build_tiny_method
from glocal.methods import Method
from glocal.train.config import PretrainConfig



@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Tiny L-BFGS fits are much slower with multi-threaded BLAS on a busy 2-core machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_world(tmp_path_factory.mktemp("eval_world") / "world", 24, 2.0, num_classes=3, seed=0)


@pytest.fixture(scope="session")
def tiny_cfg(tiny_world: Path) -> PretrainConfig:
    return tiny_config(tiny_world, TINY_GLCM)


@pytest.fixture(scope="session")
def tiny_method(tiny_cfg: PretrainConfig) -> Method:
    return build_tiny_method(tiny_cfg)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_cfg: PretrainConfig, tiny_method: Method) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("eval_ckpt") / "ckpt_epoch0001.pt", tiny_cfg, tiny_method)


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
