"""Decoder threads by frame size: what ``data.decoder_threads=auto`` is based on.

For H.264 videos at 320x240, 640x480 and 1280x720 (5 s, 25 fps, one keyframe every 250
frames, as libx264 writes by default), decodes 2-s windows the way a training sample does
(seek to the keyframe before a random start, decode to the window's end, nothing else) with:

- ``ffmpeg``: FFmpeg's automatic frame + slice threading (``thread_type="AUTO"``),
- ``1``: one decoder thread,
- ``glocal auto``: what :func:`glocal.data.io.auto_decoder_threads` picks for the size in the
  main process (inside a loader worker, large frames get the cores divided by the workers),

and prints the median wall time and CPU time per window and the ratios. Run:
``.venv/bin/python benchmarks/decoder_threads.py`` (about a minute; ``--repeats`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import glocal  # noqa: F401  before torch, as the CLI imports it
import av
import numpy as np

from glocal.data.av_writer import write_mp4
from glocal.data.io import auto_decoder_threads, usable_cores

SIZES = ((320, 240), (640, 480), (1280, 720))
SECONDS, FPS, WINDOW = 5.0, 25, 2.0


def make_video(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """Drifting random texture (every macroblock changes, like real footage)."""
    rng = np.random.default_rng(seed)
    n = int(SECONDS * FPS)
    tex = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex, 8, 0), 8, 1)
    frames = np.stack([np.roll(tex, 2 * t, axis=1)[:height, :width] for t in range(n)])
    return write_mp4(path, frames, FPS)


def decode_window(path: Path, start: float, threads: int | None) -> int:
    """Seek to the keyframe before ``start``, decode to ``start + WINDOW`` -> frames decoded."""
    n = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        if threads is None:
            vs.thread_type = "AUTO"
        else:
            if threads > 1:
                vs.thread_type = "AUTO"
            vs.codec_context.thread_count = threads
        c.seek(int(start / vs.time_base), stream=vs, backward=True, any_frame=False)
        for frame in c.decode(vs):
            n += 1
            if frame.time is not None and frame.time > start + WINDOW:
                break
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed passes (median)")
    ap.add_argument("--windows", type=int, default=6, help="windows per pass")
    args = ap.parse_args()
    cores = usable_cores()
    starts = np.random.default_rng(0).uniform(0.0, SECONDS - WINDOW, args.windows)
    print(f"{cores} usable cores; {args.windows} windows of {WINDOW:g} s per pass, median of {args.repeats}")
    print(f"{'size':>10s} {'threads':>18s} {'wall ms':>9s} {'CPU ms':>8s}   vs ffmpeg: wall, CPU")
    with tempfile.TemporaryDirectory(prefix="glocal_threads_bench_") as tmp:
        for w, h in SIZES:
            path = make_video(Path(tmp) / f"v{w}.mp4", w, h)
            auto = auto_decoder_threads(w, h, None)  # as in the main process (no worker budget)
            modes: dict[str, int | None] = {"ffmpeg": None, "1": 1, f"glocal auto={auto or 'ffmpeg'}": auto}
            walls: dict[str, list[float]] = {m: [] for m in modes}
            cpus: dict[str, list[float]] = {m: [] for m in modes}
            for s in starts[:1]:  # warm-up: page cache, decoder libraries
                for t in modes.values():
                    decode_window(path, float(s), t)
            for _ in range(args.repeats):  # interleaved, so load changes hit every mode alike
                for m, t in modes.items():
                    w0, c0 = time.perf_counter(), time.process_time()
                    for s in starts:
                        decode_window(path, float(s), t)
                    walls[m].append((time.perf_counter() - w0) / len(starts) * 1000)
                    cpus[m].append((time.process_time() - c0) / len(starts) * 1000)
            ref_w, ref_c = statistics.median(walls["ffmpeg"]), statistics.median(cpus["ffmpeg"])
            for m in modes:
                mw, mc = statistics.median(walls[m]), statistics.median(cpus[m])
                print(f"{f'{w}x{h}':>10s} {m:>18s} {mw:9.1f} {mc:8.1f}   {ref_w / mw:5.2f}x {ref_c / mc:5.2f}x")


if __name__ == "__main__":
    main()
