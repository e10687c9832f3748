"""CPU time of one training step of a recipe under several sets of overrides, side by side.

Each arm is the recipe (``--config``) with its own ``key=value`` overrides; every arm builds its
method from the same seed and trains on the **same real batch** (the first ``train.batch_size``
samples of the recipe's dataset, decoded once), with the run's autocast (``train.precision: auto``)
and the recipe's optimizer. After ``--warmup`` untimed steps per arm, the arms' timed steps are
interleaved (round-robin), so a shared machine's changing load hits all alike. Reported per arm:
median process CPU time and median wall time per step (CPU time is the figure to compare on a
busy machine), and each arm's ratio to the first arm. Beside them, what the data costs: the CPU
time of producing one batch of samples in-process (decode, views, transforms; the loader's
workers do this work in training), the median of ``--data-batches`` batches of other samples;
on a machine whose cores the loader and the step share, the sum of both sets the pace.

    python benchmarks/data/real_parts.py --out data/rp_big --object-size 0.3,0.5 --plants 0,1
    python benchmarks/method_step.py --config configs/real/avts.yaml --arm "recipe=" \\
        --arm "recipe + EMA keys and V-V at weight 1e-9=method.weight_vv=1e-9" --iters 7
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

from glocal.data.dataset import collate_samples
from glocal.methods import build_method
from glocal.runtime.precision import resolve_precision
from glocal.train.config import load_pretrain_config
from glocal.train.schedule import build_optimizer


def parse_arm(text: str) -> tuple[str, list[str]]:
    """``"name=key=value,key=value"`` -> ``(name, ["key=value", ...])`` (``"name="``: no overrides)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--arm {text!r}: write NAME=OVERRIDES (comma-separated key=value, may be empty)")
    return name, [o for o in rest.split(",") if o]


class Step:
    """One optimizer step of a freshly built method on a fixed batch (dict of tensors)."""

    def __init__(self, config: str, overrides: list[str], batch: dict[str, Any] | None) -> None:
        cfg = load_pretrain_config(config, overrides)
        torch.manual_seed(cfg.train.seed)
        self.batch_size = cfg.train.batch_size
        self.method = build_method(cfg.method, cfg.data).train()
        self.dataset = self.method.pretrain_dataset(seed=cfg.train.seed, augment_on_device=False)
        if batch is None:
            batch = collate_samples([self.dataset[i] for i in range(min(self.batch_size, len(self.dataset)))])
        self.batch = batch
        self.dtype = resolve_precision(cfg.train.precision, torch.device("cpu"))
        self.opt = build_optimizer(self.method.parameters(), cfg.optim, cfg.train.batch_size)

    def __call__(self) -> tuple[float, float]:
        """(process CPU seconds, wall seconds) of one step."""
        c0, t0 = time.process_time(), time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=self.dtype) if self.dtype is not None else nullcontext():
            losses = self.method.training_losses(self.batch)
        losses["loss"].backward()
        self.opt.step()
        self.method.on_step_end()
        return time.process_time() - c0, time.perf_counter() - t0


def data_cpu(step: Step, batches: int) -> list[float]:
    """Process CPU seconds to produce each of ``batches`` batches of samples in-process (the
    samples after the timed batch, wrapping around the dataset)."""
    n, out = len(step.dataset), []
    for j in range(batches):
        c0 = time.process_time()
        collate_samples([step.dataset[(step.batch_size * (j + 1) + i) % n] for i in range(step.batch_size)])
        out.append(time.process_time() - c0)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a pretraining recipe (YAML)")
    ap.add_argument("--arm", action="append", required=True, help="NAME=OVERRIDES; the first arm is the reference")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CPU time counts every thread)")
    ap.add_argument("--data-batches", type=int, default=3, help="batches of samples timed for the data cost (0: skip)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    arms = [parse_arm(a) for a in args.arm]
    steps: dict[str, Step] = {}
    batch = None
    for name, overrides in arms:
        steps[name] = Step(args.config, overrides, batch)
        batch = steps[name].batch  # one decode: every arm trains on the same samples
        for _ in range(args.warmup):
            steps[name]()
    cpu: dict[str, list[float]] = {n: [] for n in steps}
    wall: dict[str, list[float]] = {n: [] for n in steps}
    for _ in range(args.iters):
        for name, step in steps.items():
            c, w = step()
            cpu[name].append(c)
            wall[name].append(w)
    ref = statistics.median(cpu[arms[0][0]])
    print(f"{args.config}: batch {next(iter(batch.values())).shape[0]}, {args.threads} thread(s), "
          f"{args.iters} interleaved steps per arm after {args.warmup} warm-up")
    print(f"{'arm':<44}{'CPU s/step':>11}{'wall s/step':>12}{'CPU / first':>12}")
    out: dict[str, Any] = {"config": args.config, "threads": args.threads, "iters": args.iters, "arms": {}}
    for name, overrides in arms:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        out["arms"][name] = {"overrides": overrides, "cpu_s": c, "wall_s": w, "cpu_ratio": c / ref,
                             "cpu_samples": cpu[name]}
        print(f"{name:<44}{c:>11.3f}{w:>12.3f}{c / ref:>12.2f}")
    if args.data_batches:
        data = data_cpu(steps[arms[0][0]], args.data_batches)
        out["data_cpu_s"] = statistics.median(data)
        out["data_cpu_samples"] = data
        print(f"{'data: one batch of samples, in-process':<44}{out['data_cpu_s']:>11.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
