"""Load a checkpoint for evaluation (strict architecture check) and build its random-init twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch

from ..errors import DataError, GlocalError
from ..methods import Method, MethodSpec
from ..runtime.checkpoint import load_checkpoint
from .features import recalibrate_batchnorm

__all__ = ["CheckpointMismatchError", "state_dict_mismatch", "load_method", "build_like", "calibration_forward",
           "calibrate"]


class CheckpointMismatchError(GlocalError):
    """The checkpoint's weights do not fit the architecture its config describes."""


def state_dict_mismatch(model: torch.nn.Module, state: dict[str, Any]) -> list[str]:
    """Human-readable differences between ``model.state_dict()`` and ``state`` (empty = loadable).

    Lists missing keys, unexpected keys and tensors whose shapes differ (first five of each).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    out = []
    if missing:
        out.append(f"{len(missing)} missing keys (e.g. {missing[:5]})")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:5]})")
    if shapes:
        out.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:5]})")
    return out


def load_method(path: str | Path, device: torch.device) -> tuple[Method, MethodSpec]:
    """Rebuild the method of a ``glocal pretrain`` checkpoint with its weights, in eval mode.

    Raises :class:`DataError` for a missing / corrupt file and :class:`CheckpointMismatchError`
    (naming the checkpoint and the differing keys / shapes) when the weights do not fit the
    architecture of the stored config, e.g. a checkpoint of another architecture.
    """
    state = load_checkpoint(path, map_location="cpu")
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise DataError(f"checkpoint {path} has no 'config' / 'model' entries")
    cfg = MethodSpec.from_config_dict(state["config"])
    method = cfg.build()
    problems = state_dict_mismatch(method, state["model"])
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint {path} does not match the '{cfg.method.name}' architecture of its config: "
            + "; ".join(problems)
        )
    method.load_state_dict(state["model"])
    return method.to(device).eval(), cfg


def build_like(cfg: MethodSpec, device: torch.device, seed: int = 0) -> Method:
    """A freshly initialised method of the same architecture (seeded)."""
    torch.manual_seed(seed)
    return cfg.build().to(device)


def calibration_forward(method: Method, batch: dict[str, Any]) -> None:
    """Run every evaluation hook the batch allows (so every BatchNorm sees data): ``"clip/video"``,
    ``"clip/audio"``."""
    video, audio = batch.get("clip/video"), batch.get("clip/audio")
    calls = []
    if video is not None:
        calls += [lambda: method.video_features(video), lambda: method.local_video_features(video)]
    if audio is not None:
        calls += [lambda: method.audio_features(audio)]
        if video is not None:
            calls += [lambda: method.localization_maps(video, audio),
                      lambda: method.local_video_features(video, audio),
                      lambda: method.local_audio_features(audio, int(video.shape[2]))]
    for call in calls:
        try:
            call()
        except NotImplementedError:
            continue


def calibrate(method: Method, batches: Iterable[dict[str, Any]], device: torch.device, max_batches: int = 8) -> Method:
    """Re-estimate the BatchNorm statistics of ``method`` from ``batches`` (random-init baseline)."""
    recalibrate_batchnorm(method, batches, calibration_forward,  # type: ignore[arg-type]
                          device=device, max_batches=max_batches)
    return method.eval()
