"""Decode benchmark (issue 3, "Speed"): samples/s of the GLCM views through the data pipeline.

Generates ``--videos`` 10-s 320x240 25-fps H.264 + AAC (44.1 kHz stereo) videos with moving
content into a temporary folder (``glocal.data.av_writer.write_mp4``), then measures samples/s
of the GLCM sample (32 frames at 16 fps = 2 s, decoded at shorter side 128, random resized crop
to 112 px with flip/jitter/grayscale, + the 2 s of co-located audio as an 80-bin log-mel) with
0, 1 and 2 DataLoader workers for:

- ``glocal``: :class:`glocal.data.dataset.MultiViewDataset` + ``ContiguousClipSampler`` as
  pretraining builds it (one decode of the union window: seek to the keyframe before the clip,
  stop after it, unneeded non-reference frames dropped by the decoder, resize in swscale,
  convert only the frames shown, audio decoded for the window only; workers crop, resize and
  flip uint8 clips and the main process applies colour jitter + normalisation to each batch,
  as the training step does on its device -- ``data.augment_on_device``; its cost is counted);
- ``glocal_float``: the same with the whole transform in the workers (float clips collated);
- ``naive`` (a): decode the whole file (every frame to RGB at full size, all audio), then pick
  the frames, crop and resize -- the common ``read_video``-then-slice loader;
- ``naive_sws`` (a'): the same with one reused swscale context (a stronger baseline: PyAV's
  ``to_ndarray`` builds a new context per frame);
- ``per_view`` (b): each GLCM view decoded separately (fast = 32 frames, slow = every 8th
  frame, audio) with :func:`read_clip` / :func:`read_audio`, then the same transforms;
- ``raw`` (c): the decoder limit -- PyAV seeks to the same keyframe and decodes the same
  frames (up to the clip's last frame), no conversion, no audio, no processing, with FFmpeg's
  automatic threading; ``raw_1t`` (c') the same on one decoder thread. The limit a ratio is
  taken against ("raw limit") is the faster of the two at each worker count.

It prints the median samples/s per pipeline and worker count, the ratios of ``glocal`` and
``glocal_float`` to every other pipeline, and an in-process breakdown of where a glocal
sample's time goes. Targets (issue 3): >= 3x naive and >= 0.7x the raw limit.

Run: ``.venv/bin/python benchmarks/decode.py`` (about 5-10 minutes on 2 cores; ``--quick``
for a smoke run). ``--threads`` sets torch's intra-op threads in the main process (default 1,
as in loader workers: small per-sample tensor ops slow down with more threads on busy cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import glocal  # noqa: F401  before torch, as the CLI imports it: turns on PyTorch's huge-page allocations
import av
import numpy as np
from av.video.reformatter import VideoReformatter
import torch
from torch.utils.data import DataLoader, Dataset

from glocal.data.audio_frontend import build_logmel
from glocal.data.audio_transforms import LogMelAugment
from glocal.data.dataset import MultiViewDataset, collate_samples
from glocal.data.io import MediaReader, read_audio, read_clip, select_frames
from glocal.data.manifest import Manifest
from glocal.data.photometric import finish_batch
from glocal.data.samplers import ContiguousClipSampler
from glocal.data.transforms import ClipTransform
from glocal.data.views import SamplePlan, ViewRequest

import media
from loader_cpu import worker_cpu
from media import AUDIO_SR_IN

SECONDS, WIDTH, HEIGHT, VIDEO_FPS = 10.0, 320, 240, 25
CLIP_FRAMES, CLIP_FPS, SLOW_STRIDE = 32, 16.0, 8
CROP, DECODE_SHORT_SIDE, SR = 112, 128, 16000
LABEL = 36  # width of the row labels in the printed tables


# --------------------------------------------------------------------------------------------
# Test media
# --------------------------------------------------------------------------------------------


def make_video(path: Path, seed: int) -> Path:
    """One benchmark video (:func:`media.make_video` at this run's size)."""
    return media.make_video(path, seed, width=WIDTH, height=HEIGHT, fps=VIDEO_FPS, seconds=SECONDS)


def clip_start(index: int, seed: int = 0) -> float:
    """The clip start every pipeline uses for sample ``index``."""
    span = CLIP_FRAMES / CLIP_FPS
    return float(np.random.default_rng([seed, index]).uniform(0.0, SECONDS - span))


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


class GlocalPipeline(MultiViewDataset):
    """The library pipeline as pretraining builds it, with the benchmark's deterministic clip
    starts: workers decode, crop, resize and flip (uint8 clips); :meth:`consume` applies colour
    jitter, grayscale and normalisation to each batch in the main process, where training would
    (``data.augment_on_device``; here the "device" is this CPU, so its cost is counted)."""

    decoder_threads: int | str | None = "auto"
    on_device = True

    def __init__(self, paths: list[str], n: int) -> None:
        manifest = Manifest(root=Path(paths[0]).parent, paths=np.array(paths), labels=np.zeros(len(paths), np.int64), class_names=[])
        self.n = n
        self.clip = ContiguousClipSampler(CLIP_FRAMES, CLIP_FPS, with_audio=True)
        super().__init__(
            manifest, self.clip, {"clip": ClipTransform(size=CROP)},
            audio_transforms={"clip": LogMelAugment(build_logmel("glcm", SR, n_mels=80))},
            size=DECODE_SHORT_SIDE, sample_rate=SR, decoder_threads=self.decoder_threads,
            augment_on_device=self.on_device,
        )

    def consume(self, batch: dict[str, Any]) -> dict[str, Any]:
        """What the training step does first with a batch: finish the uint8 clips."""
        return finish_batch(batch)

    def __len__(self) -> int:
        return self.n

    def video_index(self, item: int) -> int:
        return item % len(self.manifest)

    def plan(self, item: int, rng: np.random.Generator, origin: float, duration: float, fps: float,
             epoch: int | None = None) -> SamplePlan:
        """What ``ContiguousClipSampler`` plans, with the benchmark's start for ``item``."""
        start = clip_start(item)
        times = start + np.arange(CLIP_FRAMES) / CLIP_FPS
        return SamplePlan([ViewRequest("clip", times, audio=(start, CLIP_FRAMES / CLIP_FPS))], {})


class GlocalFloatPipeline(GlocalPipeline):
    """The library pipeline with every transform in the workers (float clips are collated and
    sent: ``data.augment_on_device=false``)."""

    on_device = False


class _Base(Dataset):
    def __init__(self, paths: list[str], n: int) -> None:
        self.paths, self.n = paths, n
        self.tf = ClipTransform(size=CROP)
        self.logmel = LogMelAugment(build_logmel("glcm", SR, n_mels=80))

    def __len__(self) -> int:
        return self.n

    def finish(self, frames: np.ndarray, audio: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        video, _ = self.tf(torch.from_numpy(frames), rng)
        spec, _ = self.logmel(torch.from_numpy(np.ascontiguousarray(audio)), rng)
        return {"clip/video": video, "clip/audio": spec}


class NaivePipeline(_Base):
    """(a) Decode the whole file (all frames to RGB at full size, all audio), then slice.

    Frames are converted with ``frame.to_ndarray(format="rgb24")`` as most loaders do.
    """

    shared_reformatter = False

    def __getitem__(self, i: int) -> dict[str, Any]:
        path = self.paths[i % len(self.paths)]
        start = clip_start(i)
        frames, pts = [], []
        reformatter = VideoReformatter()
        with av.open(path) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            for f in c.decode(vs):
                if self.shared_reformatter:
                    frames.append(reformatter.reformat(f, format="rgb24").to_ndarray())
                else:
                    frames.append(f.to_ndarray(format="rgb24"))
                pts.append(float(f.pts * f.time_base))
        all_frames = np.stack(frames)
        wave, _ = read_audio(path, 0.0, SECONDS, sample_rate=SR)
        times = start + np.arange(CLIP_FRAMES) / CLIP_FPS
        clip = all_frames[select_frames(np.array(pts), times)]
        k0 = int(round(start * SR))
        return self.finish(clip, wave[0, k0 : k0 + int(CLIP_FRAMES / CLIP_FPS * SR)], np.random.default_rng(i))


class NaiveSwsPipeline(NaivePipeline):
    """(a') The naive pipeline with one reused swscale context (PyAV's ``to_ndarray`` builds a new
    one per frame): a stronger whole-file baseline."""

    shared_reformatter = True


class PerViewPipeline(_Base):
    """(b) Every GLCM view decoded on its own: fast clip, slow clip, audio."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        path = self.paths[i % len(self.paths)]
        start = clip_start(i)
        rng = np.random.default_rng(i)
        size = (DECODE_SHORT_SIDE, round(DECODE_SHORT_SIDE * WIDTH / HEIGHT))
        fast = read_clip(path, start, CLIP_FRAMES, CLIP_FPS, size=size, read_audio=False).frames
        slow = read_clip(path, start, CLIP_FRAMES // SLOW_STRIDE, CLIP_FPS / SLOW_STRIDE, size=size, read_audio=False).frames
        wave, _ = read_audio(path, start, CLIP_FRAMES / CLIP_FPS, sample_rate=SR)
        crop, photo = self.tf.sample(rng, fast.shape[1], fast.shape[2])
        out = {"clip/video": self.tf.apply(torch.from_numpy(fast), crop, photo),
               "slow/video": self.tf.apply(torch.from_numpy(slow), crop, photo)}
        out["clip/audio"], _ = self.logmel(torch.from_numpy(wave[0]), rng)
        return out


class RawPipeline(_Base):
    """(c) The decoder limit: seek + decode the same frames, nothing else (FFmpeg's automatic
    frame/slice threading)."""

    single_thread = False

    def __getitem__(self, i: int) -> dict[str, Any]:
        path = self.paths[i % len(self.paths)]
        start = clip_start(i)
        last = start + (CLIP_FRAMES - 1) / CLIP_FPS
        decoded = 0
        with av.open(path) as c:
            vs = c.streams.video[0]
            if self.single_thread:
                vs.codec_context.thread_count = 1
            else:
                vs.thread_type = "AUTO"
            c.seek(int(start / vs.time_base), stream=vs, backward=True, any_frame=False)
            for f in c.decode(vs):
                decoded += 1
                if float(f.pts * f.time_base) > last:
                    break
        return {"decoded": torch.tensor(decoded)}


class RawSingleThreadPipeline(RawPipeline):
    """(c') The decoder limit with one decoder thread (on small frames and busy cores often
    faster than FFmpeg's threading, which costs CPU to start and fill its frame pipeline)."""

    single_thread = True


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def measure(datasets: dict[str, Dataset], workers: int, repeats: int, batch: int) -> dict[str, tuple[float, float]]:
    """``{name: (median samples/s, median CPU ms per sample)}``.

    Every loader is warmed up with one full pass (workers started, files in the page cache),
    then the timed passes are interleaved across pipelines (pass r of every pipeline before pass
    r + 1 of any), so a change in the machine's load hits all of them alike. The CPU figure
    counts this process and the loader's worker processes (decoding threads, collation and
    the transfer of batches included): on a machine shared with other work it is far steadier
    than samples/s, and ``cores / CPU per sample`` bounds the throughput of a dedicated machine.
    """
    loaders = {
        name: DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_samples,
                         persistent_workers=workers > 0, prefetch_factor=2 if workers else None)
        for name, ds in datasets.items()
    }
    for loader in loaders.values():
        for _ in loader:
            pass
    walls: dict[str, list[float]] = {n: [] for n in loaders}
    cpus: dict[str, list[float]] = {n: [] for n in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            w0, c0, k0 = time.perf_counter(), time.process_time(), worker_cpu(loader)
            consume = getattr(loader.dataset, "consume", lambda b: b)
            n = sum(int(next(iter(consume(b).values())).shape[0]) for b in loader)
            walls[name].append(n / (time.perf_counter() - w0))
            cpu = time.process_time() - c0 + worker_cpu(loader) - k0
            cpus[name].append(cpu / n * 1000)
    del loaders
    return {n: (statistics.median(walls[n]), statistics.median(cpus[n])) for n in walls}


def breakdown(paths: list[str], n: int) -> dict[str, float]:
    """CPU milliseconds per sample (this process, decoder threads included), in-process, for the
    stages of a glocal sample (CPU time is far less sensitive than wall time to other load)."""
    starts = [clip_start(i) for i in range(n)]
    tf = ClipTransform(size=CROP)
    logmel = LogMelAugment(build_logmel("glcm", SR, n_mels=80))

    def each(fn: Callable[[str, float, int], Any]) -> float:
        t0 = time.process_time()
        for i, s in enumerate(starts):
            fn(paths[i % len(paths)], s, i)
        return (time.process_time() - t0) / n * 1000

    out: dict[str, float] = {}
    raw = RawPipeline(paths, n)
    out["raw decode (c)"] = each(lambda p, s, i: raw[i])
    out["open + probe"] = each(lambda p, s, i: MediaReader(p).close())

    def video_only(p: str, s: float, i: int) -> Any:
        times = s + np.arange(CLIP_FRAMES) / CLIP_FPS
        with MediaReader(p) as r:
            return r.read_window(times[0], times[-1], keep=times, size=DECODE_SHORT_SIDE, read_audio=False)

    def with_audio(p: str, s: float, i: int) -> Any:
        times = s + np.arange(CLIP_FRAMES) / CLIP_FPS
        with MediaReader(p) as r:
            return r.read_window(times[0], times[-1], keep=times, size=DECODE_SHORT_SIDE,
                                 audio=(s, CLIP_FRAMES / CLIP_FPS), sample_rate=SR)

    out["open + video window (decode, swscale 32 frames)"] = each(video_only)
    out["+ audio window (decode, resample)"] = each(with_audio) - out["open + video window (decode, swscale 32 frames)"]
    win = with_audio(paths[0], starts[0], 0)
    frames = torch.from_numpy(win.frames_at(starts[0] + np.arange(CLIP_FRAMES) / CLIP_FPS))
    wave = torch.from_numpy(win.audio[0].copy())
    out["video transform (crop, resize, jitter, normalise)"] = each(lambda p, s, i: tf(frames, np.random.default_rng(i)))
    out["log-mel"] = each(lambda p, s, i: logmel(wave, np.random.default_rng(i)))
    glocal = GlocalPipeline(paths, n)
    u8, _, photo = tf.split(frames, np.random.default_rng(0))
    batch = {"clip/video": torch.stack([u8] * 8), "clip/photo": torch.stack([photo] * 8)}
    out["  split: crop, resize, flip only (worker)"] = each(lambda p, s, i: tf.split(frames, np.random.default_rng(i)))
    out["  split: jitter + normalise, batches of 8 (main)"] = each(lambda p, s, i: finish_batch(batch)) / 8
    out["full glocal sample (augment_on_device: worker part)"] = each(lambda p, s, i: glocal[i])
    floats = GlocalFloatPipeline(paths, n)
    out["full glocal_float sample"] = each(lambda p, s, i: floats[i])
    return out


def main() -> None:
    global WIDTH, HEIGHT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--samples", type=int, default=48, help="samples per timed pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the main process")
    ap.add_argument("--pipelines", nargs="+",
                    default=["glocal", "glocal_float", "naive", "naive_sws", "per_view", "raw", "raw_1t"])
    ap.add_argument("--decoder-threads", default="auto",
                    help="glocal's MultiViewDataset(decoder_threads=...): 'auto' (the library's default), "
                         "'ffmpeg' (FFmpeg's automatic threading) or an int")
    ap.add_argument("--size", default="320x240", help="WxH of the generated videos (even numbers)")
    ap.add_argument("--quick", action="store_true", help="2 videos, 8 samples, 1 repeat, 0 workers")
    ap.add_argument("--prepared", action="store_true",
                    help="also `glocal prepare` the videos for this sample (short side 128, <= 16 fps, 0.5 s "
                         "keyframes, mono 16 kHz) and measure glocal on them (pipeline glocal_prepared)")
    args = ap.parse_args()
    WIDTH, HEIGHT = (int(v) for v in args.size.lower().split("x"))
    threads = args.decoder_threads
    GlocalPipeline.decoder_threads = threads if threads == "auto" else None if threads == "ffmpeg" else int(threads)
    if args.quick:
        args.videos, args.samples, args.repeats, args.workers = 2, 8, 1, [0]
    torch.set_num_threads(args.threads)
    classes = {"glocal": GlocalPipeline, "glocal_float": GlocalFloatPipeline, "naive": NaivePipeline, "naive_sws": NaiveSwsPipeline,
               "per_view": PerViewPipeline, "raw": RawPipeline, "raw_1t": RawSingleThreadPipeline}
    with tempfile.TemporaryDirectory(prefix="glocal_decode_bench_") as tmp:
        t0 = time.perf_counter()
        paths = [str(make_video(Path(tmp) / f"v{i}.mp4", i)) for i in range(args.videos)]
        print(f"generated {len(paths)} videos ({SECONDS:.0f} s, {WIDTH}x{HEIGHT}, {VIDEO_FPS} fps, H.264 + AAC "
              f"{AUDIO_SR_IN} Hz stereo, {os.path.getsize(paths[0]) // 1024} KiB each) in {time.perf_counter() - t0:.1f} s")
        print(f"sample: {CLIP_FRAMES} frames at {CLIP_FPS:g} fps -> {CROP} px + {CLIP_FRAMES / CLIP_FPS:g} s audio -> "
              f"80-bin log-mel; {args.samples} samples/pass, median of {args.repeats}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if args.prepared:
            from glocal.data.config import DataConfig
            from glocal.data.prepare import params_for, prepare_dataset

            params = params_for(DataConfig(crop_size=CROP, fps=CLIP_FPS, sample_rate=SR))
            rep = prepare_dataset(tmp, Path(tmp) / "prepared", params, workers=max(1, os.cpu_count() or 1),
                                  progress=False)
            prepared = [str(Path(tmp) / "prepared" / Path(p).name) for p in paths]
            print(f"glocal prepare: {rep.encoded} videos in {rep.seconds:.1f} s wall ({rep.workers} workers; "
                  f"short side {params.short_side}, <= {params.max_fps:g} fps, keyframe every {params.keyframe_s:g} s; "
                  f"{os.path.getsize(prepared[0]) // 1024} KiB each)")
            classes["glocal_prepared"] = lambda _paths, n: GlocalPipeline(prepared, n)
            args.pipelines = [*args.pipelines, "glocal_prepared"]
        table: dict[tuple[str, int], float] = {}
        cpu: dict[tuple[str, int], float] = {}
        for w in args.workers:
            res = measure({n: classes[n](paths, args.samples) for n in args.pipelines}, w, args.repeats, args.batch)
            for name, (r, c) in res.items():
                table[(name, w)], cpu[(name, w)] = r, c
                print(f"  workers={w} {name:9s} {r:7.2f} samples/s  {c:7.1f} CPU ms/sample", flush=True)
        ws = args.workers
        print("\n" + " " * (LABEL + 3) + "samples/s (median)" + " " * (12 * len(ws) - 18) + "   CPU ms/sample (all processes)")
        print(" " * (LABEL + 2) + "".join(f"{f'workers={w}':>12s}" for w in ws) + "   " + "".join(f"{f'workers={w}':>12s}" for w in ws))
        for name in args.pipelines:
            print(f"  {name:{LABEL}s}" + "".join(f"{table[(name, w)]:12.2f}" for w in ws) + "   "
                  + "".join(f"{cpu[(name, w)]:12.1f}" for w in ws))
        if {"raw", "raw_1t"} <= set(args.pipelines):  # the decoder limit: the faster raw decode
            for w in ws:
                best = max(("raw", "raw_1t"), key=lambda n: table[(n, w)])
                table[("raw_best", w)] = table[(best, w)]
                cpu[("raw_best", w)] = min(cpu[("raw", w)], cpu[("raw_1t", w)])
        for mine in ("glocal", "glocal_float", "glocal_prepared"):
            for other, label in (("naive", "naive (a)"), ("naive_sws", "naive_sws (a')"),
                                 ("per_view", "per_view (b)"), ("raw", "raw (c)"), ("raw_1t", "raw_1t (c')"),
                                 ("raw_best", "raw limit max(c, c')")):
                if mine in args.pipelines and (other, ws[0]) in table:
                    print(f"  {(mine + ' / ' + label):{LABEL}s}"
                          + "".join(f"{table[(mine, w)] / table[(other, w)]:11.2f}x" for w in ws)
                          + "   " + "".join(f"{cpu[(other, w)] / cpu[(mine, w)]:11.2f}x" for w in ws))
        print("  (CPU ratios: other pipeline's CPU per sample / ours, i.e. the throughput ratio on idle cores)")
        if "glocal" in args.pipelines:
            print("\nin-process breakdown (CPU ms per sample):")
            for k, v in breakdown(paths, min(args.samples, 24)).items():
                print(f"  {k:52s} {v:8.1f}")


if __name__ == "__main__":
    main()
