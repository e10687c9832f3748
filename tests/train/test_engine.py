"""The training engine's switches: non-finite handling, grad accumulation, compile, channels_last, TensorBoard,
the online kNN monitor with keep-last-N + best checkpoints, `glocal plot`, config checks."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
import torch

from glocal.cli import main
from glocal.errors import ConfigError
from glocal.methods.glcm import GLCM
from glocal.runtime.checkpoint import list_checkpoints, load_checkpoint
from glocal.train.config import config_from_dict
from glocal.train.engine import NonFiniteLoss, pretrain


def _log(run_dir: Path, name: str = "log.csv") -> list[dict[str, str]]:
    with open(run_dir / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _poison(monkeypatch: pytest.MonkeyPatch, bad_calls: set[int]) -> None:
    """Make GLCM's loss NaN (and its global term inf) on the given 1-based calls."""
    original = GLCM.training_losses
    calls = {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        losses = original(self, batch)
        if calls["n"] in bad_calls:
            losses = {**losses, "loss": losses["loss"] * float("nan"), "loss_global": losses["loss_global"] + math.inf}
        return losses

    monkeypatch.setattr(GLCM, "training_losses", poisoned)


def test_nonfinite_loss_raises_naming_step_and_term(tmp_path, tiny_config, monkeypatch):
    _poison(monkeypatch, {2})
    with pytest.raises(NonFiniteLoss, match=r"'loss' = nan.*'loss_global' = inf.*epoch 1, step 2"):
        pretrain(tiny_config(tmp_path / "run", epochs=1))


def test_nonfinite_skip_step_zeroes_grads_counts_and_reports(tmp_path, tiny_config, monkeypatch, capsys):
    _poison(monkeypatch, {2})
    summary = pretrain(tiny_config(tmp_path / "run", epochs=1, on_nonfinite="skip_step"))
    assert summary["skipped_steps"] == 1 and summary["steps"] == 2
    assert "step skipped (train.on_nonfinite=skip_step" in capsys.readouterr().out
    rows = _log(tmp_path / "run")
    assert [r["skipped_steps"] for r in rows] == ["0", "1"] and rows[1]["loss"] == "nan"
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert state["metrics"]["skipped_steps"] == 1


def test_nonfinite_skip_step_gives_up_after_consecutive_skips(tmp_path, tiny_config, monkeypatch):
    _poison(monkeypatch, set(range(1, 100)))
    with pytest.raises(NonFiniteLoss, match="2 consecutive non-finite steps"):
        pretrain(tiny_config(tmp_path / "run", on_nonfinite="skip_step", max_consecutive_skips=2))


def test_grad_accum_clip_channels_last_and_checkpoint_contents(tmp_path, tiny_config):
    summary = pretrain(tiny_config(tmp_path / "run", epochs=1, batch_size=2, grad_accum=2, grad_clip=1.0,
                                   channels_last="on", deterministic=True))
    assert summary["global_batch"] == 4 and summary["steps"] == 2  # 5 batches of 2 -> 2 steps of 2x2, 1 dropped
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the run
    state = torch.load(list_checkpoints(tmp_path / "run")[-1], weights_only=True)
    for key in ("model", "optimizer", "scheduler", "rng", "rng_ranks", "metrics", "config"):
        assert key in state, key
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (1, 0, 2)
    assert set(state["rng"]) >= {"torch", "numpy", "python"}


def test_augment_on_device_trains_like_augmenting_in_the_loader(tmp_path, tiny_raw, monkeypatch):
    """uint8 clips finished on the device (``data.augment_on_device``) give the same losses as
    float clips transformed in the loader (float rounding only).

    The learning rate is 0 so the weights every step sees are the initial ones in both runs: with
    a real step, Adam's first update is ~``lr * sign(grad)``, so float-rounding differences in the
    near-zero gradient components flip signs and move weights by ``2 lr`` -- the step-2 losses
    then differ by ~1e-4 relative however exact the input path is. Without updates the losses
    differ only by the float32 rounding of the two input paths (a few ulp of the pixel values)."""
    import glocal.data.photometric as photometric

    def config(name: str, on: bool):
        raw = tiny_raw(tmp_path / name, data={"augment_on_device": on}, epochs=1)
        raw["optim"].update(lr=0.0, min_lr=0.0)
        return config_from_dict(raw)

    finished = []
    real = photometric.finish_clips
    monkeypatch.setattr(photometric, "finish_clips", lambda v, p: finished.append(v.dtype) or real(v, p))
    on = pretrain(config("on", True))
    assert finished and set(finished) == {torch.uint8}  # the run really moved uint8 clips
    finished.clear()
    off = pretrain(config("off", False))
    assert not finished
    assert on["steps"] == off["steps"] == 2
    for key, value in off["last_losses"].items():
        assert on["last_losses"][key] == pytest.approx(value, rel=1e-5), key


def test_compile_matches_eager_and_falls_back_with_a_warning(tmp_path, tiny_config):
    eager = pretrain(tiny_config(tmp_path / "eager", epochs=1))
    compiled = pretrain(tiny_config(tmp_path / "compiled", epochs=1, compile=True, compile_backend="eager"))
    for key, value in eager["last_losses"].items():
        assert compiled["last_losses"][key] == pytest.approx(value, rel=1e-5)
    with pytest.warns(RuntimeWarning, match="train.compile: torch.compile failed"):
        broken = pretrain(tiny_config(tmp_path / "broken", epochs=1, compile=True, compile_backend="no_such_backend"))
    assert broken["steps"] == 2


def test_fp16_on_cpu_and_tensorboard_without_package_are_clear_errors(tmp_path, tiny_config, monkeypatch):
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        pretrain(tiny_config(tmp_path / "fp16", precision="fp16", device="cpu"))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        pretrain(tiny_config(tmp_path / "tb", tensorboard=True))
    with pytest.raises(ConfigError, match="monitor_every_epochs"):
        tiny_config(tmp_path / "x", best_metric="knn_top1")


def test_knn_monitor_best_checkpoint_keep_last_and_plot(tmp_path, tiny_config):
    run = tmp_path / "run"
    summary = pretrain(tiny_config(run, epochs=2, save_every_steps=1, keep_last=2, monitor_every_epochs=1))
    epochs = _log(run, "epochs.csv")
    assert [r["epoch"] for r in epochs] == ["1", "2"]
    knn = [float(r["knn_top1"]) for r in epochs]
    assert all(0.0 <= v <= 1.0 for v in knn)
    assert summary["best_metric"] == "knn_top1" and summary["best_value"] == max(knn)
    assert [p.name for p in list_checkpoints(run)] == ["ckpt_epoch0001_batch000001.pt", "ckpt_epoch0002.pt"]
    best = load_checkpoint(run / "best.pt")
    assert best["epoch"] == 1 + knn.index(max(knn)) and best["metrics"]["best_value"] == max(knn)
    assert main(["plot", str(run)]) == 0
    png = run / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
