"""``glocal study``: run every cell of the grid as subprocesses, resumably, in parallel, within budget.

Each cell is ``python -m glocal.cli pretrain --config CELL/config.yaml`` then ``python -m glocal.cli
eval all --tasks ... --checkpoint <last checkpoint>``, run one after the other by a worker thread;
``parallel`` cells run at once. The CPU time of each subprocess (user + system, its waited-for
children such as data-loader workers included) comes from ``os.wait4`` on that process alone, so
cells running side by side never mix their counts; it is appended to ``CELL/attempts.jsonl``
(killed attempts included) and summed into ``CELL/done.json``, written atomically last.

Resume: a cell with ``done.json`` is skipped. Otherwise its pretraining continues from its newest
checkpoint (``--resume auto``: the loop's exact resume), or restarts cleanly (``--overwrite``) when
the run folder holds logs but no checkpoint; a finished pretraining (``pretrained.json``) is not
redone. A failing subprocess marks its cell failed (one line names the cell and its log) and the
study goes on. SIGTERM / Ctrl-C stop the study: running cells are asked to checkpoint and stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from ..config import to_dict
from ..errors import DataError
from ..runtime.checkpoint import list_checkpoints
from ..runtime.rundir import check_writable, run_files
from .config import StudyConfig
from .files import read_json, write_atomic, write_json
from .grid import (Cell, cell_config, cell_tasks, default_parallel, estimate_cpu_minutes, expand, same_config,
                   sheet_videos)

__all__ = ["GLOCAL_COMMAND", "StudyRunner", "cell_cpu_seconds", "format_minutes"]

#: how a cell runs glocal (tests put a stand-in here)
GLOCAL_COMMAND: tuple[str, ...] = (sys.executable, "-m", "glocal.cli")


def format_minutes(seconds: float | None) -> str:
    """``"42 s"``, ``"12.5 min"``, ``"3.2 h"`` (``"-"`` for None)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def cell_cpu_seconds(folder: Path) -> float:
    """CPU seconds of every subprocess a cell has run so far (its attempts.jsonl)."""
    path = folder / "attempts.jsonl"
    if not path.is_file():
        return 0.0
    total = 0.0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            total += float(json.loads(line)["cpu_s"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill
    return total


def _check_dataset(cell: Cell, resolved: dict[str, Any]) -> None:
    """:class:`DataError` naming the dataset when a cell still to run has no data to read: one line
    before any work, not a failed cell for every arm and seed. ``data.root`` is a dataset folder or
    a manifest file (``docs/data_formats.md``); relative paths are read from the working folder, as
    the cells' subprocesses read them."""
    root = Path(str((resolved.get("data") or {}).get("root", "")))
    if not root.exists():
        raise DataError(f"dataset '{cell.dataset}': {root} not found (cell {cell.key} and every other cell on it "
                        f"would fail); build it first (a world: `glocal synth --out {root}`; a real-parts set: "
                        f"`python benchmarks/data/real_parts.py --out {root}` with the options in docs/real_parts.md), "
                        f"or point the study at it with data.{cell.dataset}=PATH, or leave it out with "
                        f"only_datasets=[...]")


def _running_pid(path: Path) -> int | None:
    """The live process named by a cell's ``running.pid`` (None: no file, not a pid, or that process is gone)."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return pid


class StudyRunner:
    """Runs the cells of ``cfg`` into ``out`` (see the module docstring); :meth:`run` returns the summary."""

    def __init__(self, cfg: StudyConfig, out: str | Path, *, command: Sequence[str] = GLOCAL_COMMAND,
                 parallel: int | None = None, log: Callable[[str], None] = print, config_path: str | None = None):
        self.cfg, self.out = cfg, Path(out)
        self.command = list(command)
        self.parallel = parallel or default_parallel(cfg)
        self.log = log
        self.config_path = config_path
        self.cells = expand(cfg)
        self.state: dict[str, dict[str, Any]] = {}
        self.elsewhere: list[dict[str, Any]] = []  # finished cells outside the selection (read in prepare)
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.reserved: dict[str, float] = {}
        self.stopping: str | None = None
        self.walls: list[float] = []

    # ------------------------------------------------------------------ bookkeeping
    def _done(self, cell: Cell) -> dict[str, Any] | None:
        path = cell.folder(self.out) / "done.json"
        return read_json(path) if path.is_file() else None

    def _measured(self) -> dict[str, list[tuple[str, float]]]:
        out: dict[str, list[tuple[str, float]]] = {}
        for key, st in self.state.items():
            if st["state"] == "done" and st.get("cpu_s") is not None:
                out.setdefault(st["dataset"], []).append((st["arm"], st["cpu_s"] / 60))
        return out

    def used_cpu_s(self) -> float:
        """CPU seconds of every subprocess of every cell so far (earlier study runs included)."""
        return sum(cell_cpu_seconds(c.folder(self.out)) for c in self.cells)

    def _finished_elsewhere(self) -> list[dict[str, Any]]:
        """Finished cells of the whole grid that this run's selection (``only_datasets`` /
        ``only_arms``) leaves out: an earlier run finished them, and the index keeps them, so a
        study run bit by bit still reports every finished cell."""
        selected = {c.key for c in self.cells}
        out = []
        for cell in expand(self.cfg, selection=False):
            done = None if cell.key in selected else self._done(cell)
            if done is not None:
                out.append({"key": cell.key, "dataset": cell.dataset, "arm": cell.arm, "seed": cell.seed,
                            "state": "done", "cpu_s": done.get("cpu_s"), "wall_s": done.get("wall_s"),
                            "dir": str(cell.folder(self.out))})
        return out

    def _write_study_json(self) -> None:
        cells = [{**self.state[c.key], "dir": str(c.folder(self.out))} for c in self.cells]
        cells += self.elsewhere
        total = sum(st.get("cpu_s") or 0.0 for st in cells)
        write_json(self.out / "study.json", {
            "format": "glocal-study-v1", "config_file": self.config_path, "cwd": os.getcwd(),
            "config": to_dict(self.cfg), "parallel": self.parallel, "cells": cells,
            "cpu_s_total": total, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def _set(self, cell: Cell, **fields: Any) -> None:
        with self.lock:
            self.state[cell.key].update(fields)
            self._write_study_json()

    # ------------------------------------------------------------------ preparation
    def prepare(self) -> list[Cell]:
        """Check the output folder, resolve every cell's config (a bad one stops the study before any
        work), refuse cells started with another config; return the cells still to run."""
        check_writable(self.out, "the study folder --out")
        todo = []
        for cell in self.cells:
            folder = cell.folder(self.out)
            resolved = cell_config(self.cfg, cell, self.out)
            text = yaml.safe_dump(resolved, sort_keys=False)
            old = folder / "config.yaml"
            if old.is_file() and not same_config(yaml.safe_load(old.read_text(encoding="utf-8")),
                                                 yaml.safe_load(text)):
                raise DataError(f"cell {cell.key} was started with another config than the study now gives it "
                                f"({old}); delete {folder} to run it again, or pass another --out")
            owner = _running_pid(folder / "running.pid")
            if owner is not None and owner != os.getpid():
                raise DataError(f"cell {cell.key} is being run by process {owner} (another glocal study on "
                                f"{self.out}?); stop it first, or delete {folder / 'running.pid'} if it is gone")
            done = self._done(cell)
            if done is None:
                _check_dataset(cell, resolved)
            st = {"key": cell.key, "dataset": cell.dataset, "arm": cell.arm, "seed": cell.seed}
            if done is not None:
                st.update(state="done", cpu_s=done.get("cpu_s"), wall_s=done.get("wall_s"))
            else:
                st.update(state="pending", cpu_s=cell_cpu_seconds(folder) or None)
                folder.mkdir(parents=True, exist_ok=True)
                write_atomic(old, text)
                todo.append(cell)
            self.state[cell.key] = st
        self.elsewhere = self._finished_elsewhere()  # they cannot change while this run holds the folder
        with self.lock:
            self._write_study_json()
        return todo

    # ------------------------------------------------------------------ budget
    def _admit(self, cell: Cell) -> str | None:
        """Reserve the cell's estimate; the reason it cannot fit the budget (None: it may start)."""
        budget = self.cfg.budget
        with self.lock:
            est = estimate_cpu_minutes(self.cfg, cell, self._measured())
            spent = cell_cpu_seconds(cell.folder(self.out)) / 60  # a resumed cell needs less
            need = None if est is None else max(est - spent, 0.0)
            if budget.cell_cpu_minutes is not None and est is not None and est > budget.cell_cpu_minutes:
                return (f"it needs about {est:.0f} CPU min, more than budget.cell_cpu_minutes="
                        f"{budget.cell_cpu_minutes:g}")
            if budget.total_cpu_minutes is not None:
                used = self.used_cpu_s() / 60
                held = sum(self.reserved.values())
                left = budget.total_cpu_minutes - used - held
                if left <= 0 or (need is not None and need > left):
                    return (f"it needs about {'?' if need is None else f'{need:.0f}'} CPU min and "
                            f"{max(left, 0):.0f} of budget.total_cpu_minutes={budget.total_cpu_minutes:g} are left "
                            f"({used:.0f} used, {held:.0f} held by running cells)")
            self.reserved[cell.key] = need or 0.0
            return None

    # ------------------------------------------------------------------ one cell
    def _step(self, cell: Cell, step: str, argv: list[str]) -> int:
        """Run one subprocess of ``cell``, its output appended to CELL/<step>.log; its exit status."""
        folder = cell.folder(self.out)
        t0 = time.monotonic()
        with open(folder / f"{step}.log", "a", encoding="utf-8") as fh:
            fh.write(f"\n=== glocal study {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n")
            fh.flush()
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            with self.lock:
                self.procs[cell.key] = proc
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                with self.lock:
                    self.procs.pop(cell.key, None)
            proc.returncode = rc = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        line = {"step": step, "rc": rc, "cpu_s": round(cpu, 3), "wall_s": round(time.monotonic() - t0, 3),
                "max_rss_mb": round(usage.ru_maxrss / 1024, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with open(folder / "attempts.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        return rc

    def _pretrain_argv(self, folder: Path) -> list[str]:
        run_dir = folder / "pretrain"
        argv = [*self.command, "pretrain", "--config", str(folder / "config.yaml"), "--quiet"]
        if list_checkpoints(run_dir):
            argv += ["--resume", "auto"]  # exact resume from the newest checkpoint
        elif run_files(run_dir):
            argv += ["--overwrite"]  # killed before its first checkpoint: restart cleanly
        return argv

    def _eval_argv(self, folder: Path, checkpoint: Path, tasks: list[str]) -> list[str]:
        return [*self.command, "eval", "all", "--tasks", ",".join(tasks), "--checkpoint", str(checkpoint),
                "--out", str(folder / "eval.json"), "--threads", str(self.cfg.threads_per_cell), "--quiet",
                *self.cfg.eval_overrides]

    def _sheets(self, cell: Cell, resolved: dict[str, Any], checkpoint: Path, tasks: list[str]) -> dict[str, Any]:
        """``glocal localize`` contact sheets of ``sheet_videos`` test videos (methods that run
        ``localization``): ``{"pngs": [...]}`` or ``{"error": ...}``; a failure here is noted, not fatal
        (the sheets illustrate, the eval JSON decides)."""
        folder = cell.folder(self.out)
        videos = sheet_videos(resolved, self.cfg.sheet_videos) if "localization" in tasks else []
        if not videos:
            return {"pngs": []}
        links = folder / "sheet_inputs"
        links.mkdir(exist_ok=True)
        for i, video in enumerate(videos):  # one folder of links: one subprocess for every video
            link = links / f"{i:02d}_{video.name}"
            if not link.is_symlink():
                link.symlink_to(video.resolve())
        rc = self._step(cell, "localize", [*self.command, "localize", str(links), "--checkpoint", str(checkpoint),
                                           "--out", str(folder / "sheets"), *self.cfg.sheet_options])
        pngs = sorted(str(p) for p in (folder / "sheets").glob("*.png")) if rc == 0 else []
        if rc != 0:
            self.log(f"[study] cell {cell.key}: contact sheets failed (exit status {rc}); log: "
                     f"{folder / 'localize.log'}")
            return {"pngs": [], "error": f"exit status {rc}"}
        return {"pngs": pngs, "videos": [str(v) for v in videos]}

    def _fail(self, cell: Cell, step: str, why: str) -> None:
        log = cell.folder(self.out) / f"{step}.log"
        self._set(cell, state="failed", reason=f"{step}: {why}", cpu_s=cell_cpu_seconds(cell.folder(self.out)))
        self.log(f"[study] cell {cell.key} FAILED in {step} ({why}); log: {log}")

    def run_cell(self, cell: Cell) -> None:
        """Pretrain (or resume) and evaluate one cell, then write its done.json."""
        if self.stopping:
            return
        why = self._admit(cell)
        if why is not None:
            self._set(cell, state="refused", reason=why)
            self.log(f"[study] cell {cell.key} not started: {why}")
            return
        folder = cell.folder(self.out)
        (folder / "running.pid").write_text(str(os.getpid()))
        t0 = time.monotonic()
        try:
            self._set(cell, state="running")
            if not (folder / "pretrained.json").is_file():
                rc = self._step(cell, "pretrain", self._pretrain_argv(folder))
                if self.stopping:
                    self._set(cell, state="interrupted", cpu_s=cell_cpu_seconds(folder))
                    return
                if rc != 0:
                    return self._fail(cell, "pretrain", f"exit status {rc}")
                write_json(folder / "pretrained.json", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            ckpts = list_checkpoints(folder / "pretrain")
            if not ckpts:
                return self._fail(cell, "pretrain", f"no checkpoint in {folder / 'pretrain'}")
            resolved = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
            tasks, not_run = cell_tasks(self.cfg, resolved, cell.dataset)
            if not tasks:
                return self._fail(cell, "eval", f"the method runs none of the tasks {self.cfg.tasks_for(cell.dataset)}")
            rc = self._step(cell, "eval", self._eval_argv(folder, ckpts[-1], tasks))
            if self.stopping:
                self._set(cell, state="interrupted", cpu_s=cell_cpu_seconds(folder))
                return
            results = folder / "eval.json"
            if rc not in (0, 1) or not results.is_file():  # 1: some task failed, the others' results are there
                return self._fail(cell, "eval", f"exit status {rc}")
            failed = read_json(results).get("failed") or {}
            sheets = self._sheets(cell, resolved, ckpts[-1], tasks)
            if self.stopping:
                self._set(cell, state="interrupted", cpu_s=cell_cpu_seconds(folder))
                return
            attempts = [json.loads(x) for x in (folder / "attempts.jsonl").read_text().splitlines() if x.strip()]
            done = {"cell": cell.key, "dataset": cell.dataset, "arm": cell.arm, "seed": cell.seed,
                    "checkpoint": str(ckpts[-1]), "eval": str(results), "eval_failed": failed,
                    "tasks": tasks, "tasks_not_run": not_run, "sheets": sheets,
                    "cpu_s": round(sum(a["cpu_s"] for a in attempts), 3),
                    "cpu_s_pretrain": round(sum(a["cpu_s"] for a in attempts if a["step"] == "pretrain"), 3),
                    "cpu_s_eval": round(sum(a["cpu_s"] for a in attempts if a["step"] != "pretrain"), 3),
                    "wall_s": round(sum(a["wall_s"] for a in attempts), 3), "attempts": len(attempts),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            write_json(folder / "done.json", done)  # last: its presence means the cell is finished
            self.walls.append(time.monotonic() - t0)
            self._set(cell, state="done", cpu_s=done["cpu_s"], wall_s=done["wall_s"], reason=None)
            self._progress(cell, done)
        finally:
            with self.lock:
                self.reserved.pop(cell.key, None)
            (folder / "running.pid").unlink(missing_ok=True)

    def _progress(self, cell: Cell, done: dict[str, Any]) -> None:
        with self.lock:
            states = [st["state"] for st in self.state.values()]
        finished = states.count("done")
        left = states.count("pending") + states.count("running")
        eta = sum(self.walls) / len(self.walls) * left / self.parallel if self.walls else None
        extra = f"; {len(done['eval_failed'])} eval task(s) failed" if done["eval_failed"] else ""
        self.log(f"[study] {finished}/{len(states)} cells done: {cell.key} in {format_minutes(done['wall_s'])} "
                 f"({format_minutes(done['cpu_s'])} CPU){extra}; {left} to go, ETA {format_minutes(eta)}")

    # ------------------------------------------------------------------ the whole study
    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = signal.Signals(signum).name
        self.log(f"[study] {self.stopping}: asking running cells to checkpoint and stop; rerun to continue")
        with self.lock:
            for proc in self.procs.values():
                if signum == signal.SIGTERM:  # Ctrl-C reaches the children through the terminal already
                    proc.send_signal(signal.SIGTERM)

    def run(self) -> dict[str, Any]:
        """Run the cells still to do; returns ``{"done", "failed", "refused", "interrupted", "cpu_s_total"}``."""
        todo = self.prepare()
        skipped = len(self.cells) - len(todo)
        self.log(f"[study] {len(self.cells)} cells ({skipped} already done), {self.parallel} at a time, "
                 f"{self.cfg.threads_per_cell} thread(s) each -> {self.out}")
        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
        try:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                futures: set[Future] = {pool.submit(self.run_cell, c) for c in todo}
                while futures:
                    finished, futures = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()  # a bug in the runner itself is not swallowed
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
        with self.lock:
            for st in self.state.values():
                if st["state"] in ("pending", "running"):
                    st["state"] = "interrupted" if self.stopping else st["state"]
            self._write_study_json()
        states = [st["state"] for st in self.state.values()]
        summary = {k: states.count(k) for k in ("done", "failed", "refused", "interrupted")}
        summary["cpu_s_total"] = self.used_cpu_s()
        summary["stopped_by"] = self.stopping
        self.log(f"[study] {summary['done']}/{len(states)} cells done, {summary['failed']} failed, "
                 f"{summary['refused']} not started (budget), {summary['interrupted']} interrupted; "
                 f"{format_minutes(summary['cpu_s_total'])} CPU in all -> {self.out / 'study.json'}")
        return summary
