"""Validate every file of a dataset up front (``glocal scan``), report problems, write a deny list.

Each file is checked in a worker process (a crashing decoder takes down only its worker; the
file is then re-checked alone and reported as ``crashed``):

1. it exists, is a regular file and is not empty;
2. FFmpeg opens it (``unreadable`` otherwise) and :func:`glocal.data.io.probe` reads it
   (``undecodable`` otherwise);
3. it has a video stream (``no-video``) whose frames decode at the start, middle and end
   (:func:`glocal.data.io.read_clip`, frames resized to 32x32; ``undecodable``);
4. one decode pass over the whole file (:func:`glocal.data.integrity.decode_pass`): the packets
   reach the declared end of each stream (``truncated`` otherwise: readers would repeat the last
   frame and pad audio with invalid samples); every packet decodes without errors (``damaged``,
   a warning with figures: video frames lost -- readers repeat the previous frame there -- and
   audio lost -- invalid, or concealed sound for a cut-off packet); the audio does not end more
   than :data:`AUDIO_EARLY_END` seconds before the video (``audio-ends-early``, a warning);
5. it has an audio stream (``no-audio``) that decodes (``audio-undecodable``) and is not
   digital silence: RMS of the decoded stretches below :data:`SILENCE_RMS` (``silent-audio``);
6. its duration is known and at least ``min_duration`` (``too-short``) and its frame rate is
   plausible (``bad-fps``).

``errors`` put a file on the deny list; ``warnings`` are reported only (and listed as comments
at the end of the deny-list file). ``no-audio`` and
``silent-audio`` are errors with ``require_audio=True`` and warnings otherwise.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial

import av
import av.error
import av.logging
import numpy as np

from ..errors import DataError, GlocalError
from .denylist import DenyEntry, write_deny_list
from .formats import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, load_manifest
from .av_compat import open_input
from .integrity import StreamTally, decode_pass
from .io import MediaInfo, probe, read_audio, read_clip
from .manifest import LoadReport

__all__ = [
    "SILENCE_RMS",
    "AUDIO_EARLY_END",
    "PROBLEMS",
    "FileCheck",
    "ScanReport",
    "check_file",
    "scan_files",
    "scan_dataset",
    "ScanError",
]

#: Audio whose RMS (float samples in [-1, 1]) stays below this is digital silence (-100 dBFS).
SILENCE_RMS = 1e-5

#: Problem kinds in report order, with what each means.
PROBLEMS: dict[str, str] = {
    "missing": "file not found",
    "empty": "0-byte file or not a regular file",
    "unreadable": "FFmpeg cannot open it (not a media file, or damaged beyond reading)",
    "undecodable": "opens, but frames do not decode",
    "crashed": "the decoder killed the worker process",
    "no-video": "no video stream",
    "truncated": "the data ends before the declared duration",
    "damaged": "packets do not decode: video frames repeat, audio is lost there",
    "audio-ends-early": "the audio track ends well before the video",
    "audio-undecodable": "the audio stream does not decode",
    "too-short": "shorter than --min-duration",
    "no-audio": "no audio stream",
    "silent-audio": "the audio stream is digital silence",
    "bad-fps": "frame rate unknown or implausible",
    "no-duration": "duration unknown or zero",
}
_ALWAYS_ERRORS = {"missing", "empty", "unreadable", "undecodable", "crashed", "no-video", "truncated",
                  "audio-undecodable", "too-short"}
_AUDIO_KINDS = {"no-audio", "silent-audio"}

# Size of the decoded check frames, the audio stretch per read (seconds), and the longest
# middle-to-end span decoded in one go.
_JOINT_SPAN = 15.0
_PROBE_SIZE = (32, 32)
_AUDIO_STRETCH = 1.0
_AUDIO_RATE = 16000
# A stream counts as truncated when its data ends this long (or 3 packets) before its declared end.
_TRUNCATION_SLACK = 0.25
# The audio data may end this long before the video data before scan warns (seconds): less is
# the usual encoder rounding of a track's last frame; more leaves windows without sound.
AUDIO_EARLY_END = 0.5
# Tasks kept in flight per worker (bounds memory and lets a crash be narrowed down).
_IN_FLIGHT_PER_WORKER = 4
# A worker process is replaced after this many files (caps decoder memory leaks).
_TASKS_PER_CHILD = 256
_EXAMPLES = 3


@dataclass(frozen=True)
class FileCheck:
    """The result of checking one file: problems as ``(kind, detail)`` plus what was measured."""

    path: str
    problems: tuple[tuple[str, str], ...] = ()
    duration: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    has_video: bool = False
    has_audio: bool = False
    audio_rms: float | None = None

    def kinds(self) -> list[str]:
        return [k for k, _ in self.problems]


def _fail(path: str, kind: str, detail: str, info: MediaInfo | None = None, **extra: object) -> FileCheck:
    """A FileCheck with one problem (keeping what ``info`` measured)."""
    return _result(path, [(kind, detail)], info, **extra)


def _result(path: str, problems: list[tuple[str, str]], info: MediaInfo | None, **extra: object) -> FileCheck:
    if info is None:
        return FileCheck(path, tuple(problems), **extra)  # type: ignore[arg-type]
    return FileCheck(
        path, tuple(problems), duration=info.duration, fps=info.fps, width=info.width, height=info.height,
        has_video=info.has_video, has_audio=info.has_audio, **extra,  # type: ignore[arg-type]
    )


def _short(e: BaseException, path: str) -> str:
    """An error message without the leading ``<path>: `` (the report already names the file)."""
    msg = str(e)
    return msg[len(path) + 2:] if msg.startswith(path + ": ") else msg


def _percent(part: float, whole: float) -> str:
    """``part / whole`` as a percentage: whole numbers from 1 %, one decimal below."""
    pct = 100.0 * part / whole if whole > 0 else 100.0
    return f"{pct:.0f} %" if pct >= 1 else f"{pct:.1f} %"


def _ffmpeg(reason: str) -> str:
    """FFmpeg's message without the trailing full stop and the raw values it quotes in brackets."""
    return reason.split(" (")[0].rstrip(".")


def _damage(video: StreamTally | None, audio: StreamTally | None) -> str | None:
    """The ``damaged`` warning: video frames and audio lost to decode errors (None if none)."""
    parts = []
    if video is not None and video.packets:
        lost = max(0, video.packets - video.frames)
        rejected = len(video.bad)
        if lost:
            cause = (f"lost to decode errors from {video.bad[0].time:.2f} s: {_ffmpeg(video.bad[0].reason)}"
                     if rejected else "not decoded")
            parts.append(f"decoded {video.frames} of {video.packets} video frames ({lost} {cause})")
        if rejected > lost:  # decoded, but with errors the decoder concealed
            n = rejected - lost
            parts.append(f"{n} video frame{'s' if n != 1 else ''} decoded with errors from "
                         f"{video.bad[0].time:.2f} s ({_ffmpeg(video.bad[0].reason)})")
    if audio is not None and audio.bad:
        first, seconds = audio.bad[0], audio.bad_seconds
        span = (audio.end or 0.0) - (audio.start or 0.0)
        if len(audio.bad) == 1:
            parts.append(f"the audio packet at {first.time:.2f} s is damaged ({_ffmpeg(first.reason)}): "
                         f"{seconds:.3f} s of audio lost")
        else:
            parts.append(f"{_percent(seconds, span)} of the audio invalid ({seconds:.2f} s in "
                         f"{len(audio.bad)} packets from {first.time:.2f} s)")
    return "; ".join(parts) if parts else None


def _stream_problems(tallies: dict[str, StreamTally]) -> list[tuple[str, str]]:
    """``truncated`` (error), ``damaged`` and ``audio-ends-early`` (warnings) from a decode pass."""
    problems: list[tuple[str, str]] = []
    for tally in tallies.values():
        end = tally.end if tally.end is not None else 0.0
        if tally.declared_end is not None and tally.declared_end - end > max(_TRUNCATION_SLACK,
                                                                            3 * tally.longest_packet):
            problems.append(("truncated", f"{tally.kind} data ends at {end:.2f} s of a declared "
                                          f"{tally.declared_end:.2f} s"))
            break
    if problems:  # a cut-off file is denied; its last, partial packets fail to decode as well
        return problems
    video, audio = tallies.get("video"), tallies.get("audio")
    damage = _damage(video, audio)
    if damage is not None:
        problems.append(("damaged", damage))
    if ( video is not None and audio is not None and video.end is not None
            and audio.end is not None and video.end - audio.end > AUDIO_EARLY_END):
        problems.append(("audio-ends-early",
                         f"the audio ends {video.end - audio.end:.2f} s before the video (at {audio.end:.2f} s of "
                         f"{video.end:.2f} s); windows past it get silence marked invalid"))
    return problems


def _open_problem(path: str) -> str | None:
    """Why FFmpeg cannot open ``path`` (None when it opens with at least one stream).

    FFmpeg's own error log is captured during the attempt, so the reason says what is wrong
    (e.g. ``moov atom not found`` for a cut-off mp4) instead of only "Invalid data".
    """
    previous, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # the same reason for the next bad file must show too
    try:
        with av.logging.Capture() as logs:
            try:
                with open_input(path) as container:
                    if not container.streams.video and not container.streams.audio:
                        return "no video or audio stream"
            except (av.error.FFmpegError, OSError) as e:
                reason = getattr(e, "strerror", None) or type(e).__name__
                details = [msg.strip() for _, _, msg in logs if msg.strip()]
                return f"{reason} ({details[-1]})" if details else reason
    finally:
        av.logging.set_level(previous)
        av.logging.set_skip_repeated(skip_repeated)
    return None


def _reads(info: MediaInfo, fps: float) -> list[tuple[float, int, float]]:
    """The ``read_clip`` calls ``(start, num_frames, fps)`` that decode frames at the start, the
    middle and the end. Middle and end share one call (one seek, decoding forward) when they
    are at most ``_JOINT_SPAN`` apart: cheaper when keyframes are sparse, as in most trimmed clips."""
    t0 = min(info.video_start, info.audio_start) if info.has_video and info.has_audio else (
        info.video_start if info.has_video else info.audio_start)
    mid = t0 + info.duration / 2
    last = max(t0, t0 + info.duration - 1.0 / fps)
    if last - mid < 1e-3:
        return [(t0, 1, fps)] + ([(mid, 1, fps)] if mid - t0 >= 1e-3 else [])
    if last - mid <= _JOINT_SPAN:
        return [(t0, 1, fps), (mid, 2, 1.0 / (last - mid))]
    return [(t0, 1, fps), (mid, 1, fps), (last, 1, fps)]


def check_file(
    path: str | os.PathLike[str],
    *,
    min_duration: float = 0.0,
    audio_only: bool = False,
) -> FileCheck:
    """Check one media file (see the module docstring); never raises for a bad file.

    Every problem found is listed (whether it is an error or a warning is the report's call).
    ``audio_only`` checks a sound file: no video stream is expected and only audio is decoded.
    """
    p = str(path)
    if not os.path.lexists(p):
        return _fail(p, "missing", "file not found")
    if not os.path.isfile(p):
        return _fail(p, "empty" if os.path.exists(p) else "missing",
                     "not a regular file" if os.path.exists(p) else "broken symbolic link")
    if os.path.getsize(p) == 0:
        return _fail(p, "empty", "0 bytes")
    reason = _open_problem(p)
    if reason is not None:
        return _fail(p, "unreadable", reason)
    try:
        info = probe(p)
    except DataError as e:
        return _fail(p, "undecodable", _short(e, p))

    problems: list[tuple[str, str]] = []
    if audio_only:
        pass
    elif not info.has_video:
        return _fail(p, "no-video", "no video stream" + (" (an audio file?)" if info.has_audio else ""), info)
    fps = info.fps if 0 < info.fps <= 1000 and math.isfinite(info.fps) else 25.0
    if info.has_video and not audio_only and fps != info.fps:
        problems.append(("bad-fps", f"frame rate {info.fps!r}"))
    if not info.duration > 0 or not math.isfinite(info.duration):
        problems.append(("no-duration", f"duration {info.duration!r}"))
    elif info.duration < min_duration:
        problems.append(("too-short", f"{info.duration:.3f} s < {min_duration:g} s"))

    stretch = max(0.05, min(_AUDIO_STRETCH, info.duration / 3 if info.duration > 0 else _AUDIO_STRETCH))
    sum_sq, n_valid, audio_error = 0.0, 0, None
    for t, n, rate in _reads(info, fps):
        audio = valid = None
        if not audio_only:
            try:
                clip = read_clip(p, t, n, rate, size=_PROBE_SIZE, audio_duration=stretch,
                                 sample_rate=_AUDIO_RATE, read_audio=info.has_audio)
                audio, valid = clip.audio, clip.audio_valid
            except DataError as e:
                try:
                    read_clip(p, t, n, rate, size=_PROBE_SIZE, read_audio=False)
                except DataError as e2:
                    problems.insert(0, ("undecodable", f"at {t:.2f} s: {_short(e2, p)}"))
                    return _result(p, problems, info)
                audio_error = f"at {t:.2f} s: {_short(e, p)}"
        elif info.has_audio:
            try:
                audio, valid = read_audio(p, t, stretch, sample_rate=_AUDIO_RATE)
            except DataError as e:
                audio_error = f"at {t:.2f} s: {_short(e, p)}"
        if audio is not None and valid is not None and valid.any():
            sum_sq += float(np.square(audio[:, valid], dtype=np.float64).sum())
            n_valid += int(valid.sum()) * audio.shape[0]

    try:
        tallies = decode_pass(p)
    except (av.error.FFmpegError, OSError) as e:
        tallies = {}
        problems.append(("truncated", f"cannot read the data: {getattr(e, 'strerror', None) or e}"))
    problems += _stream_problems(tallies)
    rms = None
    if not info.has_audio:
        problems.append(("no-audio", "no audio stream"))
    elif audio_error is not None:
        problems.append(("audio-undecodable", audio_error))
    elif n_valid == 0:
        problems.append(("silent-audio", "no audio samples decoded"))
    else:
        rms = math.sqrt(sum_sq / n_valid)
        if rms < SILENCE_RMS:
            problems.append(("silent-audio", f"digital silence (RMS {rms:.1e})"))
    return _result(p, problems, info, audio_rms=rms)


# --------------------------------------------------------------------------------------------
# Many files, in parallel
# --------------------------------------------------------------------------------------------


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of fresh interpreters (forkserver/spawn: the parent may hold decoder threads)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])  # workers fork from a server that imported the decoders
    else:
        ctx = multiprocessing.get_context("spawn")
    kwargs: dict[str, object] = {"mp_context": ctx}
    if sys.version_info >= (3, 11):
        kwargs["max_tasks_per_child"] = _TASKS_PER_CHILD
    return ProcessPoolExecutor(max_workers=workers, **kwargs)  # type: ignore[arg-type]


class ScanError(GlocalError):
    """The scan itself cannot run (e.g. worker processes do not start)."""


def _recheck(check: Callable[[str], FileCheck], paths: Sequence[str]) -> list[FileCheck]:
    """Re-check ``paths`` one at a time in a 1-process pool; a file that kills the process again
    is ``crashed`` (and the pool is replaced).

    A no-op task runs first in each new pool, so a pool that cannot start processes at all (an
    environment problem) raises :class:`ScanError` instead of blaming the files.
    """
    out: list[FileCheck] = []
    pool: ProcessPoolExecutor | None = None
    try:
        for path in paths:
            if pool is None:
                pool = _pool(1)
                try:
                    pool.submit(int, 0).result()
                except BrokenProcessPool as e:
                    raise ScanError("scan worker processes die on start-up; run with --workers 0 (in-process)") from e
            try:
                out.append(pool.submit(check, path).result())
            except BrokenProcessPool:
                out.append(FileCheck(path, (("crashed", "the decoder killed its process (twice)"),)))
                pool.shutdown(wait=True)
                pool = None
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return out


def scan_files(
    paths: Sequence[str],
    *,
    workers: int = 1,
    check: Callable[[str], FileCheck] = check_file,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[FileCheck]:
    """Check ``paths`` (``check`` must be picklable) -> one :class:`FileCheck` per path, in order.

    ``workers <= 1`` checks in this process. Otherwise a process pool works on at most
    ``workers * 4`` files at a time; if a worker dies (a decoder crash), the files it may have
    held are re-checked one by one in fresh processes, so exactly the culprit is reported as
    ``crashed`` and the scan goes on.
    """
    total = len(paths)
    if workers <= 1:
        for i, path in enumerate(paths):
            yield check(path)
            if progress is not None:
                progress(i + 1, total)
        return
    results: dict[int, FileCheck] = {}
    next_out = 0
    todo = iter(range(total))
    suspects: list[int] = []
    pool = _pool(workers)
    pending: dict[Future, int] = {}
    try:
        while True:
            while len(pending) < workers * _IN_FLIGHT_PER_WORKER:
                i = next(todo, None)
                if i is None:
                    break
                pending[pool.submit(check, paths[i])] = i
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                i = pending.pop(fut)
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    broken = True
                    suspects.append(i)
            if broken:  # every file still in flight may be the culprit
                suspects.extend(pending.values())
                pending.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                suspects.sort()
                results.update(zip(suspects, _recheck(check, [paths[i] for i in suspects])))
                suspects.clear()
                pool = _pool(workers)
            while next_out in results:
                yield results.pop(next_out)
                next_out += 1
                if progress is not None:
                    progress(next_out, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass
class ScanReport:
    """Summary of a scan: counts and first examples per problem kind, and the deny list."""

    root: str
    load: LoadReport
    files: int = 0
    ok: int = 0
    seconds: float = 0.0
    workers: int = 1
    require_audio: bool = False
    audio_only: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    deny: list[DenyEntry] = field(default_factory=list)
    warnings: list[DenyEntry] = field(default_factory=list)  # (path, "kind: detail; ...") of warned files
    durations: array = field(default_factory=lambda: array("d"))  # seconds, one per file with a duration
    fps: array = field(default_factory=lambda: array("d"))
    max_pixels: tuple[int, int] = (0, 0)
    with_audio: int = 0
    warned: int = 0

    def is_error(self, kind: str) -> bool:
        """Whether ``kind`` puts a file on the deny list in this scan."""
        if kind in _AUDIO_KINDS:
            return self.require_audio or self.audio_only
        return kind in _ALWAYS_ERRORS

    def add(self, result: FileCheck, rel: str) -> None:
        """Count one file's result (``rel``: its path as written to the deny list)."""
        self.files += 1
        if result.duration > 0 and math.isfinite(result.duration):
            self.durations.append(result.duration)
        if result.fps > 0 and math.isfinite(result.fps):
            self.fps.append(result.fps)
        if result.width * result.height > self.max_pixels[0] * self.max_pixels[1]:
            self.max_pixels = (result.width, result.height)
        self.with_audio += int(result.has_audio)
        if not result.problems:
            self.ok += 1
            return
        errors = []
        for kind, detail in result.problems:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            ex = self.examples.setdefault(kind, [])
            if len(ex) < _EXAMPLES:
                ex.append(f"{rel} ({detail})")
            if self.is_error(kind):
                errors.append(f"{kind}: {detail}")
        if errors:
            self.deny.append((rel, "; ".join(errors)))
        else:
            self.warned += 1
            self.warnings.append((rel, "; ".join(f"{k}: {d}" for k, d in result.problems)))

    def table(self) -> str:
        """The printed summary: one row per outcome with counts and first examples."""
        lines = [f"glocal scan {self.root}: {self.files} files in {self.seconds:.1f} s "
                 f"({self.workers} worker{'s' if self.workers != 1 else ''})"]
        lines += [f"  {line}" for line in self.load.lines()]
        tags = {k: k if self.is_error(k) else f"{k} (warning)" for k in PROBLEMS if k in self.counts}
        width = max([24, *map(len, tags.values())])
        lines.append(f"  {'result':<{width}} {'files':>7}  first examples")
        lines.append(f"  {'ok':<{width}} {self.ok:>7}")
        for kind, tag in tags.items():
            lines.append(f"  {tag:<{width}} {self.counts[kind]:>7}  {'; '.join(self.examples[kind])}")
        if len(self.durations):
            d = np.frombuffer(self.durations, dtype=np.float64)
            stats = [f"duration {d.min():.2f}-{d.max():.2f} s (median {np.median(d):.2f} s, "
                     f"total {d.sum() / 3600:.2f} h)"]
            if len(self.fps):
                stats.append(f"fps {min(self.fps):.3g}-{max(self.fps):.3g}")
            if self.max_pixels[0]:
                stats.append(f"largest {self.max_pixels[0]}x{self.max_pixels[1]}")
            stats.append(f"audio in {self.with_audio} of {self.files}")
            lines.append("  " + "; ".join(stats))
        tail = f"  {len(self.deny)} of {self.files} files have errors (deny list), {self.warned} more only warnings"
        if not (self.require_audio or self.audio_only) and self.counts.keys() & _AUDIO_KINDS:
            tail += " (no-audio/silent-audio are warnings; --require-audio denies them too)"
        lines.append(tail)
        return "\n".join(lines)


def scan_dataset(
    root: str | os.PathLike[str],
    fmt: str = "auto",
    *,
    workers: int = 1,
    min_duration: float = 0.0,
    require_audio: bool = False,
    audio_only: bool = False,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **load_kwargs: object,
) -> ScanReport:
    """Check every file of the dataset at ``root`` and summarise; write the deny list to ``out``.

    The dataset is read with :func:`~glocal.data.formats.load_manifest` (``fmt`` and
    ``load_kwargs`` such as ``manifest=``, ``split_file=``, ``fold=``); malformed rows are left
    out and reported rather than fatal. Each distinct file is checked once. Deny-list paths are
    relative to the dataset root, so ``load_manifest(root, fmt, deny_list=out)`` removes them.
    """
    if workers < 0:
        raise DataError(f"workers must be >= 0, got {workers}")
    if min_duration < 0:
        raise DataError(f"min_duration must be >= 0, got {min_duration}")
    t0 = time.perf_counter()
    load_kwargs.setdefault("on_bad_row", "skip")
    if audio_only:
        load_kwargs.setdefault("extensions", AUDIO_EXTENSIONS | VIDEO_EXTENSIONS)
    manifest = load_manifest(root, fmt, **load_kwargs)  # type: ignore[arg-type]
    _, first = np.unique(manifest.paths, return_index=True)
    order = np.sort(first)  # each file once, in manifest order
    paths_in_order = manifest.paths[order].tolist()
    rel = manifest.relative_paths()[order].tolist()
    report = ScanReport(root=str(root), load=manifest.report, workers=max(1, workers),
                        require_audio=require_audio, audio_only=audio_only)
    check = partial(check_file, min_duration=min_duration, audio_only=audio_only)
    for result, rel_path in zip(scan_files(paths_in_order, workers=workers, check=check, progress=progress), rel):
        report.add(result, rel_path)
    report.seconds = time.perf_counter() - t0
    if out is not None:
        header = (f"glocal scan {root} (format {manifest.report.format}): {len(report.deny)} of {report.files} "
                  f"files denied\npaths are relative to {manifest.root}; use with "
                  f"load_manifest(..., deny_list=THIS_FILE) or data.deny_list=THIS_FILE")
        footer = "".join(f"warning {rel}  # {' '.join(why.split())}\n" for rel, why in report.warnings)
        if footer:
            footer = f"{report.warned} files with warnings only (not denied):\n" + footer
        write_deny_list(out, report.deny, header=header, footer=footer)
    return report
