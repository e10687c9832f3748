"""Median time of :func:`glocal.data.photometric.finish_clips` per batch: the batched version
beside the clip-by-clip loop it replaced (the same arithmetic, bit for bit).

The old loop called :func:`~glocal.data.transforms.colour_and_normalise` per clip (per frame for
per-frame parameters), which copies that clip's two small matrices to the device and runs one
``addmm`` each; the batched one runs one ``baddbmm`` for the batch (one ``(P, 3, 4)`` copy) plus
one per group of grayscale / blurred clips. Both are timed round-robin in one process (a shared
machine's load drift hits both alike); the outputs are checked equal first.

Beside the medians, ``ops`` counts the tensor operations one call dispatches (views left out): on
a GPU each is a kernel launch, and the old loop's two small ``.to(device)`` copies per clip were
blocking ones (a stream synchronisation each); the count needs no GPU. On the CPU (where
``data.augment_on_device=auto`` is off) the arithmetic is the same and the medians are close.

    .venv/bin/python benchmarks/finish_clips.py --threads 1         # CPU (a shared machine: 1 thread)
    .venv/bin/python benchmarks/finish_clips.py --device cuda --batch 64 --frames 16 --size 112
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from glocal.data.photometric import finish_clips
from glocal.data.transforms import ClipTransform, colour_and_normalise


def clip_by_clip(video: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The replaced implementation (base b94b807), verbatim in effect."""
    params = photo.detach().to("cpu", torch.float64)
    out = torch.empty(video.shape, dtype=torch.float32, device=video.device)
    per_frame = params.dim() == 3
    for i in range(video.shape[0]):
        for k in range(video.shape[2]) if per_frame else [None]:
            p = params[i, k] if per_frame else params[i]
            sel = slice(None) if k is None else slice(k, k + 1)
            colour_and_normalise(video[i, :, sel], p[:9].view(3, 3), p[9:12], bool(p[12] > 0.5), float(p[13]),
                                 out=out[i, :, sel])
    return out


def batch(tf: ClipTransform, b: int, t: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 clips ``(B, 3, T, S, S)`` on ``device`` and their host parameters, drawn by ``tf.split``."""
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    parts = [tf.split(torch.randint(0, 256, (t, size + 8, size + 8, 3), generator=g, dtype=torch.uint8), rng)
             for _ in range(b)]
    return torch.stack([u for u, _, _ in parts]).to(device), torch.stack([p for _, _, p in parts])


class OpCount(TorchDispatchMode):
    """Counts the non-view tensor operations dispatched inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.ops += not func.is_view
        return func(*args, **(kwargs or {}))


def ops_of(fn: Callable[[], torch.Tensor]) -> int:
    with OpCount() as count:
        fn()
    return count.ops


def timed(fn: Callable[[], torch.Tensor], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = {
        "jitter only (demo/world recipes)": ClipTransform(size=args.size, grayscale_p=0.0),
        "gray 0.2 + blur 0.5 (real recipes)": ClipTransform(size=args.size, grayscale_p=0.2, blur_p=0.5),
        "per-frame draws (VCLR 2d)": ClipTransform(size=args.size, per_frame=True, grayscale_p=0.2),
    }
    results = {}
    for name, tf in cases.items():
        video, photo = batch(tf, args.batch, args.frames, args.size, args.device)
        assert torch.equal(finish_clips(video, photo), clip_by_clip(video, photo)), name
        times: dict[str, list[float]] = {"clip_by_clip": [], "batched": []}
        for _ in range(3):  # warm-up
            finish_clips(video, photo), clip_by_clip(video, photo)
        for _ in range(args.iters):
            times["clip_by_clip"].append(timed(lambda: clip_by_clip(video, photo), args.device))
            times["batched"].append(timed(lambda: finish_clips(video, photo), args.device))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        ops = {"clip_by_clip": ops_of(lambda: clip_by_clip(video, photo)), "batched": ops_of(lambda: finish_clips(video, photo))}
        results[name] = {"clip_by_clip_ms": round(med["clip_by_clip"], 3), "batched_ms": round(med["batched"], 3),
                         "speedup": round(med["clip_by_clip"] / med["batched"], 2),
                         "clip_by_clip_ops": ops["clip_by_clip"], "batched_ops": ops["batched"]}
        print(f"{name:38s} clip-by-clip {med['clip_by_clip']:8.2f} ms {ops['clip_by_clip']:5d} ops   "
              f"batched {med['batched']:8.2f} ms {ops['batched']:5d} ops   x{med['clip_by_clip'] / med['batched']:.2f}",
              flush=True)
    print(json.dumps({"device": args.device, "batch": args.batch, "frames": args.frames, "size": args.size,
                      "threads": args.threads, "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
