"""Forward+backward throughput of the GLCM video pathways (glcm_slow + glcm_fast) on CPU.

Compares fp32, bf16 autocast, and bf16 autocast + channels_last_3d (the AMX fast path).
One step = slow(x[:, :, ::8]) and fast(x) forward, a scalar loss, backward (train-mode BN).
Reports the median of ``--iters`` timed steps after ``--warmup`` untimed ones, as clips/s, and the
ratio to fp32. The machine may be shared: treat the numbers as rough.

    .venv/bin/python benchmarks/backbones.py                     # batch 4, 32x112x112, width 1
    .venv/bin/python benchmarks/backbones.py --iters 3 --warmup 1 --modes bf16_cl
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from glocal.models import build_video_backbone

MODES = ("fp32", "bf16", "bf16_cl")


def cpu_bf16_features() -> str:
    """bf16-relevant CPU flags from /proc/cpuinfo (``amx_bf16``, ``avx512_bf16``), or "none"."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    found = [f for f in ("amx_bf16", "amx_tile", "avx512_bf16") if f in flags]
    return ",".join(found) or "none"


def bench_mode(mode: str, args: argparse.Namespace) -> float:
    """Median seconds per forward+backward step of both pathways in ``mode``."""
    torch.manual_seed(0)
    slow = build_video_backbone("glcm_slow", width_mult=args.width_mult).train()
    fast = build_video_backbone("glcm_fast", width_mult=args.width_mult).train()
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    if mode == "bf16_cl":
        slow = slow.to(memory_format=torch.channels_last_3d)
        fast = fast.to(memory_format=torch.channels_last_3d)
    params = list(slow.parameters()) + list(fast.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        xs = x[:, :, :: args.slow_stride]
        xf = x
        if mode == "bf16_cl":
            xs = xs.contiguous(memory_format=torch.channels_last_3d)
            xf = xf.contiguous(memory_format=torch.channels_last_3d)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if mode != "fp32" else nullcontext()
        with ctx:
            loss = slow(xs).float().square().mean() + fast(xf).float().square().mean()
        loss.backward()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=32, help="fast-pathway frames")
    ap.add_argument("--slow-stride", type=int, default=8, help="slow input = frames[::stride]")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"cpu bf16 flags: {cpu_bf16_features()}; glcm_slow+glcm_fast, "
        f"width_mult {args.width_mult}, batch {args.batch}, {args.frames}x{args.size}x{args.size} "
        f"(slow {len(range(0, args.frames, args.slow_stride))} frames); "
        f"median of {args.iters} after {args.warmup} warm-up"
    )
    results: dict[str, float] = {}
    for mode in args.modes:
        results[mode] = bench_mode(mode, args)
        base = results.get("fp32")
        ratio = f"{base / results[mode]:5.2f}x vs fp32" if base else ""
        print(
            f"{mode:8s} {results[mode] * 1000:9.1f} ms/step  "
            f"{args.batch / results[mode]:7.2f} clips/s  {ratio}",
            flush=True,
        )


if __name__ == "__main__":
    main()
