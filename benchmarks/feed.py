"""Feed benchmark (issue 14): can the CPUs of one node keep an accelerator busy with GLCM samples?

Generates ``--videos`` web-like sources (320x240, 25 fps, 10 s, H.264 with x264's default
keyframe interval of 250 frames, 44.1 kHz stereo AAC; :mod:`media`), prepares a copy with
``glocal prepare``'s parameters for the config (:func:`glocal.data.prepare.params_for`: short
side 128, <= 25 fps, a keyframe every 0.5 s, mono 16 kHz), and runs the GLCM pretraining data
path of ``--config`` (default ``configs/glcm.yaml``: the paper's 32 x 112² clips + their audio as
an 80-bin log-mel) on both through the training loader itself (:func:`glocal.data.loader.pretrain_loader`
over ``Method.pretrain_dataset``, ``augment_on_device=True`` as on a GPU: the workers crop,
resize and flip uint8 clips; colour jitter and normalisation run on the accelerator and are not
counted here).

Figures (medians over ``--repeats`` interleaved passes of ``--samples`` samples):

- CPU ms per sample, all processes (this one + the loader workers, by CPU time: other load on
  the machine hardly moves it), per source and worker count;
- main-process CPU ms per sample with workers (what the training process spends receiving
  batches: the part that does not scale with workers);
- samples/s per worker count (wall time: noisy on a shared machine);
- cores per accelerator = ``--step-rate`` (clips/s one accelerator consumes; default 685, GLCM
  at batch 32 on an H200, issue 14) x CPU seconds per prepared sample;
- where a prepared sample's CPU time goes (in-process, by stage).

``--json FILE`` writes ``raw_ms_per_sample``, ``prepared_ms_per_sample``, ``main_ms_per_sample``,
``cores_per_accelerator`` (+ the tables). Targets (issue 14): prepared <= 15 ms and >= 5x less
than raw, main <= 0.5 ms, <= 11 cores per accelerator.

Run: ``.venv/bin/python benchmarks/feed.py`` (about 5 minutes on 2 cores; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import glocal  # noqa: F401  before torch, as the CLI imports it
import numpy as np
import torch
from torch.utils.data import Sampler

from glocal.config import apply_overrides
from glocal.data.dataset import MultiViewDataset, collate_samples
from glocal.data.loader import pretrain_loader
from glocal.data.photometric import finish_batch
from glocal.data.prepare import params_for, prepare_dataset
from glocal.methods import build_method
from glocal.train.config import load_pretrain_config

import media
from loader_cpu import worker_cpu

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"prepared_ms_per_sample": 15.0, "raw_over_prepared": 5.0, "main_ms_per_sample": 0.5,
           "cores_per_accelerator": 11.0}


class Draws(Sampler[list[tuple[int, int]]]):
    """``passes`` x ``samples`` items as batches of ``(epoch, index)``: item ``k`` of pass ``p`` is
    video ``k mod N`` at epoch ``p * samples + k`` (so every draw plans another clip start), the
    same items for every source and worker count."""

    def __init__(self, n_videos: int, samples: int, batch: int) -> None:
        self.n, self.samples, self.batch, self.passes = n_videos, samples, batch, 0

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        base = self.passes * self.samples
        self.passes += 1
        items = [(base + k, k % self.n) for k in range(self.samples)]
        for s in range(0, self.samples, self.batch):
            yield items[s : s + self.batch]

    def __len__(self) -> int:
        return (self.samples + self.batch - 1) // self.batch


def glcm_dataset(config: str, root: Path, overrides: list[str]) -> MultiViewDataset:
    """The GLCM pretraining dataset of ``config`` over ``root`` (as on a GPU: uint8 clips out)."""
    cfg = load_pretrain_config(config, [f"data.root={root}", "data.on_error=raise", *overrides])
    method = build_method(cfg.method, cfg.data)
    return method.pretrain_dataset(seed=0, augment_on_device=True)


def measure(datasets: dict[str, MultiViewDataset], workers: int, samples: int, batch: int,
            repeats: int) -> dict[str, dict[str, float]]:
    """Per source: median samples/s, CPU ms per sample (all processes) and main-process CPU ms
    per sample, over ``repeats`` passes interleaved across sources after one warm-up pass."""
    loaders = {}
    for name, ds in datasets.items():
        sampler = Draws(len(ds.manifest), samples, batch)
        loaders[name] = pretrain_loader(ds, sampler, num_workers=workers, pin_memory=False, seed=0)
        for _ in loaders[name]:  # warm-up: workers started, files in the page cache
            pass
    runs: dict[str, dict[str, list[float]]] = {n: {"rate": [], "cpu": [], "main": []} for n in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            w0, m0, k0 = time.perf_counter(), time.process_time(), worker_cpu(loader)
            n = sum(int(b["clip/video"].shape[0]) for b in loader)
            wall, main = time.perf_counter() - w0, time.process_time() - m0
            runs[name]["rate"].append(n / wall)
            runs[name]["cpu"].append((main + worker_cpu(loader) - k0) / n * 1000)
            runs[name]["main"].append(main / n * 1000)
    del loaders
    return {n: {k: statistics.median(v) for k, v in r.items()} for n, r in runs.items()}


#: stages of a sample: (label, file name, function name) whose cumulative CPU time is the stage's
STAGES = [
    ("whole sample (dataset[i])", "dataset.py", "__getitem__"),
    ("  open + probe the file", "io.py", "__init__"),
    ("  video: seek, decode, convert to RGB", "io.py", "_read_video_window"),
    ("  audio: seek, decode, resample", "io.py", "_read_audio_window"),
    ("  video transform (crop, resize, flip)", "dataset.py", "_cut_video"),
    ("  audio transform (log-mel)", "dataset.py", "_cut_audio"),
]


def breakdown(ds: MultiViewDataset, n: int, top: int = 12) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """In-process CPU ms per sample by stage (:data:`STAGES`, cumulative times under cProfile, so
    a little inflated) and the ``top`` functions by own time, over ``n`` samples of ``ds``; plus
    the collation of a batch of 8 (per sample, timed without the profiler)."""
    import cProfile
    import pstats

    items = [(10_000 + k, k % len(ds.manifest)) for k in range(n)]
    ds[items[0]]  # warm
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    samples = [ds[it] for it in items]
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    stages: dict[str, float] = {}
    for label, file, fn in STAGES:
        cum = [ct for (f, _, name), (_, _, _, ct, _) in stats.items() if name == fn and Path(f).name == file]
        stages[label] = max(cum, default=0.0) / n * 1000
    batch = samples[:8]
    t0 = time.process_time()
    for _ in range(n):
        collate_samples(batch)
    stages["collate (per sample, batches of 8)"] = (time.process_time() - t0) / (n * len(batch)) * 1000
    collated = collate_samples(batch)
    reps = max(2, n // 4)
    t0 = time.process_time()
    for _ in range(reps):
        finish_batch(collated)
    # not part of the loader's cost: training runs it on the accelerator (data.augment_on_device);
    # decode.py's "glocal" pipeline runs it in the main process, where it bounds the rate
    stages["(jitter + normalise, on the CPU instead)"] = (time.process_time() - t0) / (reps * len(batch)) * 1000
    rows = sorted(((f"{Path(f).name}:{line}({fn})", tt) for (f, line, fn), (_, _, tt, _, _) in stats.items()),
                  key=lambda r: -r[1])
    return stages, [(name, tt / n * 1000) for name, tt in rows[:top]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "glcm.yaml"))
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--samples", type=int, default=48, help="samples per timed pass")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--step-rate", type=float, default=685.0,
                    help="clips/s one accelerator consumes (default: GLCM, batch 32, H200, bf16; issue 14)")
    ap.add_argument("--size", default="320x240", help="WxH of the generated sources")
    ap.add_argument("--prepare", nargs="*", default=[], metavar="KEY=VALUE",
                    help="glocal prepare options for the prepared copy (e.g. crf=23 keyframe_s=0.25)")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--profile", action="store_true", help="also print the top functions of a prepared sample")
    ap.add_argument("--quick", action="store_true", help="2 videos, 8 samples, 1 repeat, 0 workers")
    ap.add_argument("overrides", nargs="*", help="config key=value overrides (e.g. data.decoder_threads=1)")
    args = ap.parse_args()
    if args.quick:
        args.videos, args.samples, args.repeats, args.workers = 2, 8, 1, [0]
    torch.set_num_threads(1)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="glocal_feed_bench_") as tmp:
        raw_dir, prep_dir = Path(tmp) / "raw", Path(tmp) / "prepared"
        raw_dir.mkdir()
        t0 = time.perf_counter()
        for i in range(args.videos):
            media.make_video(raw_dir / f"v{i}.mp4", i, width=width, height=height)
        print(f"generated {args.videos} sources ({width}x{height}, 25 fps, 10 s, x264 default keyframes, "
              f"AAC 44.1 kHz stereo) in {time.perf_counter() - t0:.1f} s")
        probe = glcm_dataset(args.config, raw_dir, args.overrides)
        prep_opts = apply_overrides({}, args.prepare)
        params = params_for(load_pretrain_config(args.config, [f"data.root={raw_dir}", *args.overrides]).data, prep_opts)
        rep = prepare_dataset(raw_dir, prep_dir, params, workers=max(1, os.cpu_count() or 1), progress=False)
        print(f"glocal prepare: {rep.encoded} files in {rep.seconds:.1f} s (short side {params.short_side}, <= "
              f"{params.max_fps:g} fps, keyframe every {params.keyframe_s:g} s, "
              + (f"MPEG-4 q {params.qscale}" if params.codec == "mpeg4" else f"H.264 crf {params.crf}, tune {params.tune or 'none'}")
              + f", mono {params.sample_rate} Hz audio {params.audio}; {sum(p.stat().st_size for p in prep_dir.glob('*.mp4')) // args.videos // 1024} KiB "
              f"per file + {sum(p.stat().st_size for p in prep_dir.glob('*.wav')) // args.videos // 1024} KiB of WAV, raw {sum(p.stat().st_size for p in raw_dir.glob('*.mp4')) // args.videos // 1024} KiB)")
        datasets = {"raw": probe, "prepared": glcm_dataset(args.config, prep_dir, args.overrides)}
        print(f"sample: {args.config}; "
              f"{args.samples} samples/pass in batches of {args.batch}, median of {args.repeats}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        table: dict[int, dict[str, dict[str, float]]] = {}
        for w in args.workers:
            table[w] = measure(datasets, w, args.samples, args.batch, args.repeats)
            for name, r in table[w].items():
                print(f"  workers={w} {name:9s} {r['rate']:7.2f} samples/s  {r['cpu']:7.2f} CPU ms/sample  "
                      f"main {r['main']:6.2f} ms/sample", flush=True)

        ws = args.workers
        print(f"\n{'':24s}" + "".join(f"{f'workers={w}':>12s}" for w in ws))
        for name in datasets:
            print(f"  {name + ' samples/s':22s}" + "".join(f"{table[w][name]['rate']:12.2f}" for w in ws))
            print(f"  {name + ' CPU ms/sample':22s}" + "".join(f"{table[w][name]['cpu']:12.2f}" for w in ws))
        with_workers = [w for w in ws if w > 0] or ws
        w_top = max(with_workers)
        raw_ms = statistics.median(table[w]["raw"]["cpu"] for w in ws)
        prep_ms = statistics.median(table[w]["prepared"]["cpu"] for w in ws)
        main_ms = table[w_top]["prepared"]["main"]
        cores = args.step_rate * prep_ms / 1000
        figures = {"raw_ms_per_sample": raw_ms, "prepared_ms_per_sample": prep_ms, "raw_over_prepared": raw_ms / prep_ms,
                   "main_ms_per_sample": main_ms, "main_measured_with_workers": w_top,
                   "cores_per_accelerator": cores, "step_rate": args.step_rate}
        print("\nfigure                          value    target")
        for key, target in TARGETS.items():
            ok = figures[key] >= target if key == "raw_over_prepared" else figures[key] <= target
            sign = ">=" if key == "raw_over_prepared" else "<="
            print(f"  {key:28s}{figures[key]:8.2f}   {sign} {target:g}  {'ok' if ok else 'MISSED'}")
        print(f"  (CPU ms: median over worker counts {ws}; main: prepared, {w_top} workers; cores = "
              f"{args.step_rate:g} clips/s x {prep_ms:.2f} ms)")

        parts = {name: breakdown(ds, min(args.samples, 16)) for name, ds in datasets.items()}
        stages = {name: p[0] for name, p in parts.items()}
        print("\nin-process CPU ms per sample (cProfile):" + "".join(f"{n:>12s}" for n in stages))
        for key in stages["raw"]:
            print(f"  {key:44s}" + "".join(f"{stages[n][key]:12.2f}" for n in stages))
        profile = parts["prepared"][1]
        if args.profile:
            print("\nprepared sample, top functions by own CPU ms per sample:")
            for name, ms in profile:
                print(f"  {ms:7.2f}  {name}")
        if args.json:
            out = {**figures, "targets": TARGETS, "workers": ws, "table": {str(w): table[w] for w in ws},
                   "stages": stages, "profile": profile, "videos": args.videos, "samples": args.samples,
                   "repeats": args.repeats, "config": args.config, "size": args.size,
                   "prepare": {k: getattr(params, k) for k in params.__dataclass_fields__}}
            Path(args.json).write_text(json.dumps(out, indent=2))
            print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
