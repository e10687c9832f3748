"""Atomic checkpoints (weights_only loading, corrupt-file detection) and the lr schedule."""

from __future__ import annotations

import math

import pytest
import torch

from glocal.errors import DataError
from glocal.runtime.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint
from glocal.train.schedule import lr_factor


def _state(epoch):
    return {"method": "glcm", "config": {"a": 1}, "model": {"w": torch.ones(2) * epoch}, "epoch": epoch, "step": 3}


def test_roundtrip_and_weights_only(tmp_path):
    path = save_checkpoint(_state(1), tmp_path / "ckpt_epoch0001.pt")
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(2))
    assert load_checkpoint(path)["format"] == "glocal-ckpt-v1"
    assert not list(tmp_path.glob(".*tmp*"))


def test_corrupt_latest_falls_back(tmp_path, capsys):
    save_checkpoint(_state(1), tmp_path / "ckpt_epoch0001.pt")
    save_checkpoint(_state(2), tmp_path / "ckpt_epoch0002.pt")
    data = (tmp_path / "ckpt_epoch0002.pt").read_bytes()
    (tmp_path / "ckpt_epoch0002.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt"):
        load_checkpoint(tmp_path / "ckpt_epoch0002.pt")
    assert latest_checkpoint(tmp_path) == tmp_path / "ckpt_epoch0001.pt"
    assert "skipping unusable checkpoint" in capsys.readouterr().out


def test_not_a_checkpoint(tmp_path):
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a glocal checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_prune_keeps_newest(tmp_path):
    for e in range(1, 5):
        save_checkpoint(_state(e), tmp_path / f"ckpt_epoch{e:04d}.pt")
    prune_checkpoints(tmp_path, 2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_epoch0003.pt", "ckpt_epoch0004.pt"]


def test_lr_factor_warmup_then_cosine():
    total, warm = 100, 10
    assert lr_factor(0, total, warm, "cosine", 0.0) == pytest.approx(0.01)
    assert lr_factor(5, total, warm, "cosine", 0.0) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(10, total, warm, "cosine", 0.0) == pytest.approx(1.0)
    mid = 10 + 45
    assert lr_factor(mid, total, warm, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(100, total, warm, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(50, total, 0, "constant", 0.0) == 1.0
    assert math.isclose(lr_factor(30, total, 0, "cosine", 0.0), 0.5 * (1 + math.cos(math.pi * 0.3)))
