"""Throughput and achieved FLOP/s of one GLCM training step, beside the machine's matmul peak.

One step = forward of the whole method (both video pathways, audio trunk, heads, both losses) under
the chosen autocast, backward, Adam step — what ``glocal pretrain`` does per batch, on random
inputs (no data loading). Configurations:

* ``tiny``  — the ``configs/demo.yaml`` method and clip geometry (batch ``--tiny-batch``, 16x64x64);
* ``paper`` — ``configs/glcm.yaml`` (the release architecture), batch 4, 32x112x112 clips.

Modes: ``fp32``, ``fp32_cl`` (channels_last_3d), ``bf16`` (autocast), ``bf16_cl`` (autocast +
channels_last_3d); append ``+compile`` for ``torch.compile`` (inductor) of the step's forward.
The modes' timed steps are interleaved (round-robin), so a shared machine's load drift hits all
alike; ``spread`` is (max - min) / median of a mode's timed steps.
FLOPs per step are counted once per configuration with ``torch.utils.flop_counter.FlopCounterMode``
(forward + backward, fp32); achieved FLOP/s = that count / median step time. The matmul peak is
measured in the same run (square matmuls, fp32 and bf16). Medians of ``--iters`` timed steps after
``--warmup`` untimed ones. The machine may be shared: treat the numbers as rough.

    .venv/bin/python benchmarks/train_step.py                       # tiny + paper, all eager modes
    .venv/bin/python benchmarks/train_step.py --configs paper --modes fp32,bf16_cl,bf16_cl+compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import yaml

from glocal.methods import build_method
from glocal.train.config import config_from_dict
from glocal.runtime.precision import cpu_has_fast_bf16, resolve_precision, use_channels_last
from glocal.train.schedule import build_optimizer

ROOT = Path(__file__).resolve().parents[1]
EAGER_MODES = ("fp32", "fp32_cl", "bf16", "bf16_cl")


def cpu_flags() -> str:
    """bf16-relevant CPU flags (``amx_bf16``, ``amx_tile``, ``avx512_bf16``) or ``none``."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return ",".join(f for f in ("amx_bf16", "amx_tile", "avx512_bf16") if f in flags) or "none"


def matmul_peaks(n: int, iters: int) -> dict[str, float]:
    """Median TFLOP/s of an ``n x n @ n x n`` matmul in fp32 and bf16 (samples interleaved)."""
    mats = {name: (torch.randn(n, n).to(dt), torch.randn(n, n).to(dt))
            for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    times: dict[str, list[float]] = {name: [] for name in mats}
    for i in range(iters + 2):
        for name, (a, b) in mats.items():
            t0 = time.perf_counter()
            a @ b
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - t0)
    return {name: 2 * n**3 / statistics.median(ts) / 1e12 for name, ts in times.items()}


def load_setup(name: str, tiny_batch: int) -> dict[str, Any]:
    """Method config, batch size and clip geometry of a named configuration."""
    path = ROOT / "configs" / ("demo.yaml" if name == "tiny" else "glcm.yaml")
    raw = yaml.safe_load(path.read_text())
    raw.pop("world", None)
    cfg = config_from_dict(raw)
    batch = tiny_batch if name == "tiny" else 4
    return {"cfg": cfg, "batch": batch, "frames": cfg.data.clip_frames, "size": cfg.data.crop_size,
            "seconds": cfg.data.clip_frames / cfg.data.fps}


class Step:
    """One training step of a freshly built GLCM in a given mode."""

    def __init__(self, setup: dict[str, Any], mode: str) -> None:
        base, _, extra = mode.partition("+")
        self.bf16 = base.startswith("bf16")
        self.cl = base.endswith("_cl")
        cfg = setup["cfg"]
        torch.manual_seed(0)
        self.method = build_method(cfg.method, cfg.data).train()
        b, t, s = setup["batch"], setup["frames"], setup["size"]
        video = torch.randn(b, 3, t, s, s)
        if self.cl:
            self.method = self.method.to(memory_format=torch.channels_last_3d)
            video = video.contiguous(memory_format=torch.channels_last_3d)
        audio = 0.1 * torch.randn(b, int(round(setup["seconds"] * cfg.data.sample_rate)))
        self.batch = {"clip/video": video, "clip/audio": audio}
        self.opt = build_optimizer(self.method.parameters(), cfg.optim, setup["batch"])  # as the engine (fused)
        self.forward = self.method.training_losses
        if extra == "compile":
            self.forward = torch.compile(self.method.training_losses)

    def __call__(self) -> float:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        self.opt.zero_grad(set_to_none=True)
        with ctx:
            losses = self.forward(self.batch)
        losses["loss"].backward()
        self.opt.step()
        return float(losses["loss"].detach())


def count_flops(setup: dict[str, Any]) -> float:
    """FLOPs of one forward + backward (fp32, contiguous)."""
    from torch.utils.flop_counter import FlopCounterMode

    step = Step(setup, "fp32")
    with FlopCounterMode(display=False) as counter:
        losses = step.method.training_losses(step.batch)
        losses["loss"].backward()
    return float(counter.get_total_flops())


def time_modes(setup: dict[str, Any], modes: list[str], warmup: int, iters: int) -> dict[str, dict[str, float]]:
    """Median step time per mode, the modes' steps **interleaved** (round-robin) so that a shared
    machine's changing load hits every mode alike."""
    from torch._dynamo.exc import TorchDynamoException

    steps, warm, failed = {}, {}, {}
    for mode in modes:
        step = Step(setup, mode)
        t0 = time.perf_counter()
        try:
            for _ in range(max(1, warmup)):
                step()
        except TorchDynamoException as exc:  # torch.compile could not build this step
            failed[mode] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
            continue
        steps[mode], warm[mode] = step, time.perf_counter() - t0
    times: dict[str, list[float]] = {m: [] for m in steps}
    for _ in range(iters):
        for mode, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[mode].append(time.perf_counter() - t0)
    out: dict[str, dict[str, Any]] = {m: {"failed": why} for m, why in failed.items()}
    for mode in steps:
        med = statistics.median(times[mode])
        out[mode] = {"step_s": med, "clips_per_s": setup["batch"] / med, "warmup_s": warm[mode],
                     "spread": (max(times[mode]) - min(times[mode])) / med}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="tiny,paper", help="comma list of tiny, paper")
    ap.add_argument("--modes", default=",".join(EAGER_MODES), help="comma list; append +compile to compile")
    ap.add_argument("--tiny-batch", type=int, default=32, help="batch of the tiny config (demo.yaml: 32)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--matmul-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    auto_dtype = resolve_precision("auto", cpu)
    default_mode = ("bf16" if auto_dtype is not None else "fp32") + ("_cl" if use_channels_last("auto", cpu, auto_dtype) else "")
    peaks = matmul_peaks(args.matmul_size, max(5, args.iters))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags: {cpu_flags()}, "
          f"fast bf16 detected: {cpu_has_fast_bf16()}, default (precision=auto, channels_last=auto): {default_mode}")
    print(f"matmul peak ({args.matmul_size}^2): fp32 {peaks['fp32']:.3f} TFLOP/s, bf16 {peaks['bf16']:.3f} TFLOP/s "
          f"(bf16/fp32 {peaks['bf16'] / peaks['fp32']:.2f}x)")
    results: dict[str, Any] = {"peaks_tflops": peaks, "default_mode": default_mode, "configs": {}}
    modes = [m for m in args.modes.split(",") if m]
    for name in [c for c in args.configs.split(",") if c]:
        setup = load_setup(name, args.tiny_batch)
        flops = count_flops(setup)
        print(f"\n[{name}] batch {setup['batch']}, {setup['frames']}x{setup['size']}x{setup['size']} clips, "
              f"{flops / 1e9:.1f} GFLOP per step (forward + backward)")
        print(f"{'mode':<18}{'step s':>9}{'clips/s':>9}{'x fp32':>8}{'TFLOP/s':>9}{'% peak':>8}{'spread':>8}"
              f"{'warm-up s':>11}")
        rows = time_modes(setup, modes, args.warmup, args.iters)
        for mode, r in rows.items():
            if "failed" in r:
                print(f"{mode:<18} failed: {r['failed']}")
                continue
            r["tflops"] = flops / r["step_s"] / 1e12
            r["pct_peak"] = 100 * r["tflops"] / peaks["bf16" if mode.startswith("bf16") else "fp32"]
            ref = rows.get("fp32", r)
            mark = "  <- default" if mode == default_mode else ""
            print(f"{mode:<18}{r['step_s']:>9.3f}{r['clips_per_s']:>9.2f}{r['clips_per_s'] / ref['clips_per_s']:>8.2f}"
                  f"{r['tflops']:>9.3f}{r['pct_peak']:>7.1f}%{100 * r['spread']:>7.0f}%{r['warmup_s']:>11.1f}{mark}",
                  flush=True)
        results["configs"][name] = {"gflop_per_step": flops / 1e9, "batch": setup["batch"], "modes": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
