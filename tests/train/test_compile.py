"""train.compile: auto compiles only on CUDA runs long enough to win back the compile time."""

from __future__ import annotations

import pytest
import torch

from glocal.train.compile import COMPILE_PAYS_AFTER_STEPS, resolve_compile
from glocal.train.config import load_pretrain_config

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def test_auto_compiles_long_cuda_runs_only() -> None:
    assert resolve_compile("auto", CUDA, COMPILE_PAYS_AFTER_STEPS)[0]
    assert not resolve_compile("auto", CUDA, COMPILE_PAYS_AFTER_STEPS - 1)[0]
    assert not resolve_compile("auto", CPU, 10**7)[0]
    assert resolve_compile("on", CPU, 1)[0] and not resolve_compile("off", CUDA, 10**7)[0]
    assert "train.compile=on forces it" in resolve_compile("auto", CUDA, 10)[1]


def test_break_even_follows_the_measurement() -> None:
    """93 s of compilation won back at 685 -> 758 clips/s, batch 32 (issue 14, H200)."""
    saved = 32 / 685 - 32 / 758
    assert COMPILE_PAYS_AFTER_STEPS == pytest.approx(93 / saved, rel=0.05)


@pytest.mark.parametrize("given, mode", [("true", "on"), ("false", "off"), ("auto", "auto")])
def test_old_boolean_configs_still_load(given: str, mode: str) -> None:
    cfg = load_pretrain_config(None, ["method.name=simclr", f"train.compile={given}"])
    assert cfg.train.compile == mode
