"""The pretraining loop: data → method losses → optimizer, with logging and atomic checkpoints."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from ..data.dataset import AVClipDataset, ClipSpec, collate_samples
from ..data.manifest import read_manifest, resolve_manifest
from ..data.transforms import ClipTransform
from ..errors import GlocalError
from ..methods import Method, build_method
from .checkpoint import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint
from .config import PretrainConfig, config_from_dict
from .precision import autocast, resolve_device, resolve_precision, use_channels_last
from .schedule import build_optimizer, build_scheduler

__all__ = ["EpochSampler", "build_pretrain_dataset", "pretrain", "method_from_checkpoint"]


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch (call :meth:`set_epoch`); exact epochs, no replacement."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.size, generator=g).tolist())

    def __len__(self) -> int:
        return self.size


class NonFiniteLoss(GlocalError):
    """A loss term became NaN or inf."""


def build_pretrain_dataset(cfg: PretrainConfig, with_audio: bool) -> AVClipDataset:
    d = cfg.data
    manifest = read_manifest(resolve_manifest(d.root, d.manifest)).split(d.split)
    spec = ClipSpec(
        num_frames=d.clip_frames,
        fps=d.fps,
        sample_rate=d.sample_rate,
        decode_size=(d.decode_size, d.decode_size) if d.decode_size else None,
        with_audio=with_audio,
    )
    transform = ClipTransform(
        size=d.crop_size, scale=d.crop_scale, flip_p=d.flip_p, jitter_p=d.jitter_p, grayscale_p=d.grayscale_p
    )
    return AVClipDataset(
        manifest,
        spec,
        transform,
        temporal="random",
        seed=cfg.train.seed,
        on_error=d.on_error,
        missing_audio=d.missing_audio,
        max_retries=d.max_retries,
    )


def _to_device(batch: dict[str, Any], device: torch.device, channels_last: bool) -> dict[str, Any]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if k == "video" and channels_last:
                v = v.contiguous(memory_format=torch.channels_last_3d)
        out[k] = v
    return out


class CSVLog:
    """Append-only CSV of scalars; the header is fixed by the first row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with open(path, newline="") as fh:
                header = next(csv.reader(fh), None)
            self.fields = header

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.fields)
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([row.get(f, "") for f in self.fields])


def method_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Method, PretrainConfig, dict]:
    """Rebuild the method of a checkpoint with its weights; returns (method, config, checkpoint)."""
    state = load_checkpoint(path, map_location="cpu")
    cfg = config_from_dict(state["config"])
    method = build_method(cfg.method, sample_rate=cfg.data.sample_rate, fps=cfg.data.fps)
    missing, unexpected = method.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise GlocalError(
            f"checkpoint {path} does not match the '{cfg.method.name}' architecture "
            f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})"
        )
    return method.to(device), cfg, state


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def pretrain(cfg: PretrainConfig, *, resume: str | None = None) -> dict[str, Any]:
    """Run pretraining; returns a summary dict (paths, epochs, last losses, skipped samples)."""
    t_cfg = cfg.train
    out = Path(t_cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if t_cfg.num_threads:
        torch.set_num_threads(t_cfg.num_threads)
    _seed_all(t_cfg.seed)
    device = resolve_device(t_cfg.device)
    dtype = resolve_precision(t_cfg.precision, device)
    channels_last = use_channels_last(t_cfg.channels_last, device, dtype)

    method = build_method(cfg.method, sample_rate=cfg.data.sample_rate, fps=cfg.data.fps).to(device)
    if channels_last:
        method = method.to(memory_format=torch.channels_last_3d)
    dataset = build_pretrain_dataset(cfg, with_audio="audio" in method.modalities)
    if len(dataset) < t_cfg.batch_size:
        raise GlocalError(
            f"the training split has {len(dataset)} videos, fewer than train.batch_size={t_cfg.batch_size}"
        )
    sampler = EpochSampler(len(dataset), t_cfg.seed)
    loader = DataLoader(
        dataset,
        batch_size=t_cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        collate_fn=collate_samples,
        drop_last=True,
        persistent_workers=False,
        prefetch_factor=4 if cfg.data.num_workers > 0 else None,
    )
    steps_per_epoch = len(loader)
    optimizer = build_optimizer(method.parameters(), cfg.optim, t_cfg.batch_size)
    scheduler = build_scheduler(optimizer, cfg.optim, steps_per_epoch, t_cfg.epochs)

    start_epoch, step = 0, 0
    ckpt_path = latest_checkpoint(out) if resume == "auto" else (Path(resume) if resume else None)
    if ckpt_path is not None:
        state = load_checkpoint(ckpt_path)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        print(f"[glocal] resumed from {ckpt_path} at epoch {start_epoch}, step {step}")

    log = CSVLog(out / "log.csv")
    all_skipped: list[str] = []
    last: dict[str, float] = {}
    print(
        f"[glocal] pretraining {cfg.method.name} on {len(dataset)} videos, {steps_per_epoch} steps/epoch, "
        f"device={device.type}, precision={'fp32' if dtype is None else str(dtype).split('.')[-1]}, "
        f"channels_last_3d={channels_last}"
    )
    for epoch in range(start_epoch, t_cfg.epochs):
        method.train()
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        epoch_skipped: list[str] = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{t_cfg.epochs}", disable=not t_cfg.progress, leave=False)
        t_last, clips = time.perf_counter(), 0
        for batch in bar:
            epoch_skipped.extend(batch.pop("skipped", []))
            batch = _to_device(batch, device, channels_last)
            with autocast(device, dtype):
                losses = method.training_losses(batch)
            for name, value in losses.items():
                if not torch.isfinite(value).all():
                    raise NonFiniteLoss(
                        f"loss term '{name}' is {value.item()} at epoch {epoch + 1}, step {step + 1}; "
                        "lower optim.lr, use train.precision=fp32, or check the data"
                    )
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if t_cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(method.parameters(), t_cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            method.on_step_end()
            step += 1
            clips += batch["video"].shape[0]
            last = {k: float(v.detach()) for k, v in losses.items()}
            bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()})
            if step % t_cfg.log_every == 0 or step == steps_per_epoch * t_cfg.epochs:
                now = time.perf_counter()
                log.write(
                    {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
                     **last, "clips_per_s": clips / max(now - t_last, 1e-9)}
                )
                t_last, clips = now, 0
        if epoch_skipped:
            print(f"[glocal] epoch {epoch + 1}: skipped {len(epoch_skipped)} bad samples: {epoch_skipped[:3]}")
            all_skipped.extend(epoch_skipped)
        if (epoch + 1) % t_cfg.save_every_epochs == 0 or epoch + 1 == t_cfg.epochs:
            save_checkpoint(
                {
                    "method": cfg.method.name,
                    "config": cfg.to_dict(),
                    "model": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "rng": {"torch": torch.get_rng_state()},
                },
                out / f"ckpt_epoch{epoch + 1:04d}.pt",
            )
            prune_checkpoints(out, t_cfg.keep_last)
        print(
            f"[glocal] epoch {epoch + 1}/{t_cfg.epochs} done: "
            + ", ".join(f"{k}={v:.4f}" for k, v in last.items() if math.isfinite(v))
        )
    if all_skipped:
        (out / "skipped.txt").write_text("\n".join(all_skipped) + "\n")
        print(f"[glocal] {len(all_skipped)} samples were skipped in total; list in {out / 'skipped.txt'}")
    final = latest_checkpoint(out)
    return {"run_dir": str(out), "checkpoint": str(final) if final else None, "last_losses": last,
            "skipped": len(all_skipped), "steps": step}
