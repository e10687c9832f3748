"""Run several protocols for a checkpoint and for a random-init encoder of the same architecture."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..data.dataset import collate_samples
from ..methods import Method, build_method
from ..train.config import PretrainConfig
from ..train.engine import build_pretrain_dataset, method_from_checkpoint
from ..train.precision import resolve_device
from . import linear_probe, localization, retrieval, sound_classification
from .context import EvalContext
from .features import EvalData, recalibrate_batchnorm

__all__ = ["TASKS", "eval_data_from_config", "random_init_like", "evaluate", "results_markdown"]

#: task name → (protocol, which modalities it needs)
TASKS: dict[str, tuple[Callable[[Method, EvalContext], dict[str, float]], tuple[str, ...]]] = {
    "linear": (linear_probe.run, ("video",)),
    "retrieval": (retrieval.run, ("video",)),
    "localization": (localization.run, ("video", "audio")),
    "sound": (sound_classification.run, ("audio",)),
}


def eval_data_from_config(cfg: PretrainConfig, **overrides: Any) -> EvalData:
    """Evaluation clips with the pretraining clip geometry."""
    d = cfg.data
    kw = dict(clip_frames=d.clip_frames, fps=d.fps, crop_size=d.crop_size, sample_rate=d.sample_rate,
              decode_size=d.decode_size, num_workers=d.num_workers)
    kw.update(overrides)
    return EvalData(**kw)


def random_init_like(cfg: PretrainConfig, device: torch.device, seed: int = 0, calibrate: bool = True) -> Method:
    """A freshly initialised method of the same architecture, BN statistics re-estimated on train clips."""
    torch.manual_seed(seed)
    method = build_method(cfg.method, sample_rate=cfg.data.sample_rate, fps=cfg.data.fps).to(device)
    if calibrate:
        ds = build_pretrain_dataset(cfg, with_audio="audio" in method.modalities)
        loader = torch.utils.data.DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=False,
                                             num_workers=cfg.data.num_workers,
                                             collate_fn=collate_samples)
        recalibrate_batchnorm(method, loader, lambda m, b: m.training_losses(b), device=device)
    return method


def evaluate(
    checkpoint: str | Path,
    data_root: str | Path | None = None,
    tasks: list[str] | None = None,
    *,
    device: str = "auto",
    with_random: bool = True,
    progress: bool = True,
    out_json: str | Path | None = None,
    **eval_overrides: Any,
) -> dict[str, dict[str, float]]:
    """Evaluate ``checkpoint`` (and a random-init twin) on ``tasks``; returns {model: {metric: value}}."""
    dev = resolve_device(device)
    method, cfg, _ = method_from_checkpoint(checkpoint, dev)
    ctx = EvalContext(Path(data_root or cfg.data.root), eval_data_from_config(cfg, **eval_overrides),
                      device=dev, progress=progress, seed=cfg.train.seed, manifest_name=cfg.data.manifest)
    names = tasks or [t for t, (_, mods) in TASKS.items() if all(m in method.modalities for m in mods)]
    models = {cfg.method.name: method}
    if with_random:
        models["random_init"] = random_init_like(cfg, dev, seed=cfg.train.seed)
    results: dict[str, dict[str, float]] = {}
    for label, model in models.items():
        row: dict[str, float] = {}
        for task in names:
            fn, _ = TASKS[task]
            t0 = time.perf_counter()
            row.update(fn(model, ctx))
            if progress:
                print(f"[glocal] {label:>12} {task:<13} done in {time.perf_counter() - t0:.1f}s")
        results[label] = row
    if out_json:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(results, indent=2))
    return results


def results_markdown(results: dict[str, dict[str, float]]) -> str:
    """A markdown table: one row per metric, one column per model."""
    models = list(results)
    metrics = list(dict.fromkeys(k for r in results.values() for k in r))
    lines = ["| metric | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for m in metrics:
        vals = [results[x].get(m) for x in models]
        lines.append(f"| {m} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)
