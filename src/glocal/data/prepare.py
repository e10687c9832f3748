"""``glocal prepare SRC --out DST``: re-encode a dataset once to its training geometry.

DST mirrors SRC file for file: every video file (:data:`~glocal.data.formats.VIDEO_EXTENSIONS`) is
re-encoded under the same relative path and name (:func:`glocal.data.reencode.reencode`: shorter
side, frame-rate cap, short keyframe interval, yuv420p, mono audio at the training rate, the
timeline kept); every other file (manifests, split files, ``annotations.json``, masks, ...) is
copied unchanged. Annotations stay valid: times are in seconds and the timeline is kept, boxes
are normalised, and masks are mapped onto the frame in normalised coordinates whatever their
pixel size. So any layout that ``load_manifest`` reads is read from DST the same way.

* parallel worker processes; a progress bar with an ETA;
* resumable: a video already in DST is skipped, each one is written to a hidden temporary name
  and renamed when complete (a leftover temporary file is simply redone);
* a file that does not decode is reported (one line: path and reason), left out of DST, listed in
  ``DST/prepare_deny.txt`` (a deny list, ``data.deny_list=``) and counted; the run goes on;
* ``DST/prepared.json`` records the parameters (read back by :func:`prepared_notes`, which the
  pretraining preflight uses to say when a config asks for more than was prepared).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import av

from ..config import build
from ..errors import ConfigError, DataError, one_line
from .audio_sidecar import SUFFIX as SIDECAR_SUFFIX, remove_sidecar, sidecar_path
from .config import DataConfig
from .denylist import write_deny_list
from .formats import VIDEO_EXTENSIONS
from .reencode import EncodeParams

__all__ = ["EncodeParams", "PrepareReport", "params_for", "prepare_dataset", "prepared_notes", "read_prepared",
           "PREPARED_JSON", "PREPARE_DENY"]

#: parameters a record written before the key existed was prepared with
_BEFORE_KEYS = {"audio": "aac", "codec": "h264", "qscale": 3}
PREPARED_JSON = "prepared.json"
PREPARE_DENY = "prepare_deny.txt"
FORMAT = "glocal-prepared-v1"
#: defaults without a config: the shorter side, the frame-rate cap


def params_for(data_cfg: DataConfig | None = None, overrides: Mapping[str, Any] | None = None) -> EncodeParams:
    """The parameters that serve ``data_cfg`` (``None``: :class:`EncodeParams`' defaults), then the
    ``key=value`` ``overrides``, built and bound-checked by :func:`glocal.config.build`.

    From a config: the shorter side is ``data.decode_size`` when set, else ``data.crop_size``
    rounded up to the next multiple of 16 above ``8/7`` of it (112 -> 128: room for the random
    resized crop), the frame-rate cap ``data.fps``, the audio rate ``data.sample_rate``.
    """
    base: dict[str, Any] = {}
    if data_cfg is not None:
        side = int(data_cfg.decode_size) if data_cfg.decode_size else 16 * math.ceil(data_cfg.crop_size * 8 / 7 / 16)
        base = {"short_side": side, "max_fps": float(data_cfg.fps), "sample_rate": int(data_cfg.sample_rate)}
    return build(EncodeParams, {**base, **dict(overrides or {})})


@dataclass
class PrepareReport:
    """What a run did: counts, the broken files with reasons, the wall time."""

    src: str
    dst: str
    params: EncodeParams
    encoded: int = 0
    skipped: int = 0  # already in DST (resume)
    copied: int = 0  # other files copied
    broken: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    def summary(self) -> str:
        p = self.params
        lines = [f"glocal prepare {self.src} -> {self.dst}: {self.encoded} videos encoded, {self.skipped} already "
                 f"done, {len(self.broken)} broken, {self.copied} other files copied in {self.seconds:.1f} s "
                 f"({self.workers} workers)",
                 f"  short side {p.short_side}, <= {p.max_fps:g} fps, keyframe every {p.keyframe_s:g} s, yuv420p "
                 + (f"MPEG-4 (quantiser {p.qscale})" if p.codec == "mpeg4" else f"H.264 (crf {p.crf})")
                 + f", audio mono {p.sample_rate} Hz "
                 + ("16-bit PCM beside each video (NAME.EXT.audio.wav)" if p.audio == "wav" else "AAC inside each file")]
        lines += [f"  broken: {rel}: {reason}" for rel, reason in self.broken]
        if self.broken:
            deny = Path(self.dst) / PREPARE_DENY
            lines.append(f"  {len(self.broken)} broken files left out; they are listed in {deny}: "
                         f"pass data.deny_list={deny}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"encoded": self.encoded, "skipped": self.skipped, "copied": self.copied,
                "broken": [{"path": r, "reason": why} for r, why in self.broken], "seconds": round(self.seconds, 2)}


# -- reading the record back ------------------------------------------------------------------

def _dataset_dir(root: str | os.PathLike[str]) -> Path:
    p = Path(root)
    return p.parent if p.is_file() else p


def read_prepared(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``root/prepared.json`` (root: a dataset folder or a manifest file in it), or None."""
    path = _dataset_dir(root) / PREPARED_JSON
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable prepared.json ({one_line(e)})") from e
    return rec if isinstance(rec, dict) and rec.get("format") == FORMAT else None


def prepared_notes(root: str | os.PathLike[str], data_cfg: DataConfig, *, with_video: bool = True) -> list[str]:
    """One line per way ``data_cfg`` asks for more than ``root`` was prepared with (empty when
    ``root`` was not made by ``glocal prepare``)."""
    rec = read_prepared(root)
    if rec is None:
        return []
    p = rec.get("params", {})
    side, fps, rate = int(p.get("short_side", 0)), float(p.get("max_fps", 0)), int(p.get("sample_rate", 0))
    where = _dataset_dir(root)
    notes = []
    if with_video:
        if data_cfg.decode_size and int(data_cfg.decode_size) > side:
            notes.append(f"warning: data.decode_size={data_cfg.decode_size} is larger than the short side {side} that "
                         f"{where} was prepared with: frames are upscaled; lower data.decode_size or re-run "
                         f"`glocal prepare` with short_side={data_cfg.decode_size}")
        elif not data_cfg.decode_size and int(data_cfg.crop_size) > side:
            notes.append(f"warning: data.crop_size={data_cfg.crop_size} is larger than the short side {side} that "
                         f"{where} was prepared with: crops are upscaled; lower data.crop_size or re-run "
                         f"`glocal prepare` with short_side={data_cfg.crop_size} (or more)")
        if fps and float(data_cfg.fps) > fps * 1.001:
            notes.append(f"warning: data.fps={data_cfg.fps:g} is higher than the {fps:g} fps cap {where} was prepared "
                         f"with: frames repeat; lower data.fps or re-run `glocal prepare` with max_fps={data_cfg.fps:g}")
    if rate and int(data_cfg.sample_rate) > rate:
        notes.append(f"warning: data.sample_rate={data_cfg.sample_rate} is higher than the {rate} Hz {where} was "
                     f"prepared with: the audio holds nothing above {rate // 2} Hz; lower data.sample_rate or re-run "
                     f"`glocal prepare` with sample_rate={data_cfg.sample_rate}")
    return notes


# -- one file (runs in a worker) -----------------------------------------------------------------

def _tmp_name(dst: Path) -> Path:
    return dst.with_name(f".{dst.stem}.preparing{dst.suffix}")


def prepare_file(src: str, dst: str, params: EncodeParams, threads: int = 0) -> str | None:
    """Re-encode ``src`` to ``dst`` through a temporary name; returns None, or the reason it failed.
    ``threads``: FFmpeg threads per file (0: automatic, in-process runs; 1 in parallel workers)."""
    from .reencode import reencode  # PyAV in the worker only

    d = Path(dst)
    tmp = _tmp_name(d)
    try:
        if os.path.getsize(src) == 0:
            return "empty file (0 bytes)"
        d.parent.mkdir(parents=True, exist_ok=True)
        remove_sidecar(d)  # a stale one (a killed run) must not outlive a file that has no audio now
        summary = reencode(src, tmp, params, threads=threads, audio_path=sidecar_path(d))
        if not summary["audio"] and os.path.isfile(sidecar_path(src)):  # the source's audio is a sidecar too
            _copy(Path(sidecar_path(src)), Path(sidecar_path(d)))
        os.replace(tmp, d)  # last: a finished video means a finished sidecar
        return None
    except Exception as e:  # noqa: BLE001 - any decode/encode failure is this file's, reported and left out
        tmp.unlink(missing_ok=True)
        remove_sidecar(d)
        return _reason(e, src)


def _reason(e: BaseException, path: str) -> str:
    """The error without the file's path (the report names the file) and errno noise."""
    if isinstance(e, av.error.FFmpegError) and getattr(e, "strerror", None):
        return str(e.strerror)
    msg = one_line(e) or type(e).__name__
    for cut in (f": '{path}'", f": {path}"):
        msg = msg.replace(cut, "")
    return msg


# -- the dataset ---------------------------------------------------------------------------------

def _walk(src: Path, dst: Path) -> Iterator[Path]:
    """Every file under ``src`` (relative), hidden files and ``dst`` (if inside) excluded, sorted."""
    dst_r = dst.resolve()
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and (d / n).resolve() != dst_r)
        for name in sorted(filenames):
            if not name.startswith("."):
                yield (d / name).relative_to(src)


def _is_sidecar(path: Path) -> bool:
    """Whether ``path`` is the audio sidecar of a video beside it."""
    name = path.name
    if not name.endswith(SIDECAR_SUFFIX):
        return False
    video = path.with_name(name[: -len(SIDECAR_SUFFIX)])
    return video.suffix.lower() in VIDEO_EXTENSIONS and video.is_file()


def _copy(src: Path, dst: Path) -> bool:
    """Copy ``src`` to ``dst`` atomically unless an identical-looking copy is there; True if copied."""
    try:
        st, dt = src.stat(), dst.stat()
        if st.st_size == dt.st_size and int(st.st_mtime) == int(dt.st_mtime):
            return False
    except FileNotFoundError:
        pass
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.preparing")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    return True


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _check_record(dst: Path, params: EncodeParams) -> None:
    rec = read_prepared(dst)
    if rec is None:
        return
    old = {**_BEFORE_KEYS, **rec.get("params", {})}
    diff = [f"{k}={old.get(k)!r} (now {v!r})" for k, v in asdict(params).items() if old.get(k) != v]
    if diff:
        raise ConfigError(f"{dst} was prepared with other parameters: {', '.join(diff)}; its videos would mix both: "
                          "pick another --out, or delete it first")


def _pool(workers: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _run_pool(jobs: list[tuple[str, str, str]], params: EncodeParams, workers: int,
              done: Callable[[str, str | None], None]) -> None:
    """Run ``prepare_file`` over ``jobs`` ``(rel, src, dst)``; a worker killed by a decoder is
    replaced, and the files it may have held are redone one at a time (the culprit is reported)."""
    pending = list(reversed(jobs))
    suspects: list[tuple[str, str, str]] = []
    pool = _pool(workers)
    try:
        running: dict[Future, tuple[str, str, str]] = {}
        while pending or running:
            while pending and len(running) < 2 * workers:
                job = pending.pop()
                running[pool.submit(prepare_file, job[1], job[2], params, 1)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = running.pop(fut)
                try:
                    done(job[0], fut.result())
                except BrokenProcessPool:
                    suspects.append(job)
            if suspects:
                suspects += list(running.values())
                running.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                for job in suspects:  # one at a time, alone in a fresh process
                    solo = _pool(1)
                    try:
                        done(job[0], solo.submit(prepare_file, job[1], job[2], params, 1).result())
                    except BrokenProcessPool:
                        _tmp_name(Path(job[2])).unlink(missing_ok=True)
                        done(job[0], "the decoder killed its process")
                    finally:
                        solo.shutdown(wait=True)
                suspects = []
                pool = _pool(workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prepare_dataset(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    params: EncodeParams | None = None,
    *,
    workers: int = 2,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Prepare every video of ``src`` into ``dst`` (see the module docstring); returns the report.

    ``workers <= 0`` encodes in this process. ``log`` gets one line per broken file as it is found
    (default: stderr).
    """
    from tqdm.auto import tqdm

    params = params or params_for()
    s_root, d_root = Path(src).expanduser(), Path(dst).expanduser()
    if s_root.is_file():  # a manifest file: its folder is the dataset
        s_root = s_root.parent
    if not s_root.is_dir():
        raise DataError(f"dataset folder not found: {src}")
    s_root = s_root.resolve()
    d_root.mkdir(parents=True, exist_ok=True)
    d_root = d_root.resolve()
    if d_root == s_root:
        raise ConfigError("--out must differ from the source folder (prepare never overwrites the source)")
    _check_record(d_root, params)
    say = log or (lambda line: print(line, file=sys.stderr))
    report = PrepareReport(str(s_root), str(d_root), params, workers=max(1, workers))
    start = time.perf_counter()
    record = {"format": FORMAT, "source": str(s_root), "params": asdict(params), "complete": False}
    _write_json(d_root / PREPARED_JSON, record)

    jobs: list[tuple[str, str, str]] = []
    for rel in _walk(s_root, d_root):
        if rel.as_posix() in (PREPARED_JSON, PREPARE_DENY):
            continue
        s, d = s_root / rel, d_root / rel
        if _is_sidecar(s):
            continue  # its video's job carries it over
        if rel.suffix.lower() in VIDEO_EXTENSIONS:
            if d.is_file():
                report.skipped += 1
            else:
                jobs.append((rel.as_posix(), str(s), str(d)))
        elif _copy(s, d):
            report.copied += 1

    bar = tqdm(total=len(jobs), desc="preparing", unit="video", disable=not progress, dynamic_ncols=True)

    def done(rel: str, reason: str | None) -> None:
        if reason is None:
            report.encoded += 1
        else:
            report.broken.append((rel, reason))
            (bar.write if progress else say)(f"broken: {rel}: {reason}")
        bar.update(1)

    try:
        if workers <= 0 or len(jobs) <= 1:
            for rel, s, d in jobs:
                done(rel, prepare_file(s, d, params))
        else:
            _run_pool(jobs, params, min(workers, len(jobs)), done)
    finally:
        bar.close()
    report.broken.sort()
    deny = d_root / PREPARE_DENY
    if report.broken:
        write_deny_list(deny, report.broken, header=f"glocal prepare {s_root}: {len(report.broken)} files did not "
                                                    "re-encode and are not in this folder\n"
                                                    f"use with data.deny_list={deny}")
    else:
        deny.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - start
    _write_json(d_root / PREPARED_JSON, {**record, "complete": True, "last_run": report.to_json()})
    return report
