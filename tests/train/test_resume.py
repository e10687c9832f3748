"""No lost work: SIGKILL mid-epoch + `--resume auto` reproduces the uninterrupted loss trajectory, SIGTERM
saves and exits 0, a kill during a checkpoint write leaves the previous checkpoint loadable."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import yaml

from glocal.runtime.checkpoint import clean_partial_writes, latest_checkpoint, list_checkpoints, load_checkpoint
from glocal.train.config import config_from_dict
from glocal.train.engine import pretrain

pytestmark = pytest.mark.slow

#: deterministic fp32, 2 clips per step: 5 steps per epoch over the 11 training videos, 10 steps in all
RUN = dict(batch_size=2, epochs=2, save_every_steps=1, keep_last=2, deterministic=True)
COLUMNS = ("epoch", "step", "lr", "loss", "loss_global", "loss_local", "grad_norm", "skipped_steps")


def _trajectory(run_dir: Path) -> list[tuple[str, ...]]:
    with open(run_dir / "log.csv", newline="") as fh:
        return [tuple(row[c] for c in COLUMNS) for row in csv.DictReader(fh)]


def _rows(run_dir: Path) -> int:
    path = run_dir / "log.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_raw: Callable[..., dict[str, Any]]) -> list[tuple[str, ...]]:
    """The uninterrupted run's log.csv rows."""
    out = tmp_path_factory.mktemp("reference")
    pretrain(config_from_dict(tiny_raw(out, **RUN)))
    rows = _trajectory(out)
    assert len(rows) == 10
    return rows


def _start(raw: dict[str, Any], tmp_path: Path) -> subprocess.Popen:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    return subprocess.Popen(
        [sys.executable, "-m", "glocal.cli", "pretrain", "--config", str(cfg), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_rows(proc: subprocess.Popen, run_dir: Path, n: int, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while _rows(run_dir) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "the training subprocess made no progress"
        time.sleep(0.02)


def test_sigkill_mid_epoch_then_resume_auto_reproduces_the_trajectory(tmp_path, tiny_raw, reference, capsys):
    raw = tiny_raw(tmp_path / "run", **RUN)
    proc = _start(raw, tmp_path)
    _wait_rows(proc, tmp_path / "run", 3)  # step 3 of 5 of the first epoch logged
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ckpts = list_checkpoints(tmp_path / "run")
    assert ckpts, "no checkpoint survived the kill"
    # a torn newest checkpoint (e.g. copied non-atomically): --resume auto must fall back to the previous one
    newest = ckpts[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    capsys.readouterr()
    summary = pretrain(config_from_dict(raw), resume="auto")
    out = capsys.readouterr().out
    assert "skipping unusable checkpoint" in out and "resumed from" in out
    assert summary["steps"] == 10 and summary["stopped_by"] is None
    assert _trajectory(tmp_path / "run") == reference  # bit-identical losses, lr and gradient norms


def test_sigterm_saves_exits_zero_and_resumes(tmp_path, tiny_raw, reference):
    raw = tiny_raw(tmp_path / "run", data={"num_workers": 1}, **{**RUN, "save_every_steps": 0})
    proc = _start(raw, tmp_path)
    _wait_rows(proc, tmp_path / "run", 2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert "SIGTERM received" in stderr and '"stopped_by": "SIGTERM"' in stdout
    stopped_at = int(_trajectory(tmp_path / "run")[-1][1])
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert state["step"] == stopped_at and 0 < stopped_at < 10
    assert (state["epoch"], state["batch_in_epoch"]) == divmod(stopped_at, 5)
    pretrain(config_from_dict(raw), resume="auto")
    assert _trajectory(tmp_path / "run") == reference


def test_persistent_workers_give_the_trajectory_of_no_workers(tmp_path, tiny_raw, reference):
    """2 persistent loader workers over both epochs: the epoch travels with the indices, so epoch 1 is
    not a replay of epoch 0 and every logged number equals the in-process (num_workers=0) run's."""
    raw = tiny_raw(tmp_path / "run", data={"num_workers": 2}, **RUN)
    pretrain(config_from_dict(raw))
    assert _trajectory(tmp_path / "run") == reference


def test_kill_during_checkpoint_write_keeps_previous_loadable(tmp_path):
    script = textwrap.dedent(f"""
        import io, os, signal, torch
        from glocal.runtime.checkpoint import save_checkpoint
        save_checkpoint({{"model": {{"w": torch.ones(1000)}}, "epoch": 1}}, {str(tmp_path / "ckpt_epoch0001.pt")!r})
        real_save = torch.save
        def dying_save(obj, fh, *args, **kwargs):
            buf = io.BytesIO()
            real_save(obj, buf)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the write
        torch.save = dying_save
        save_checkpoint({{"model": {{"w": torch.zeros(1000)}}, "epoch": 2}}, {str(tmp_path / "ckpt_epoch0002.pt")!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (tmp_path / "ckpt_epoch0002.pt").exists()
    assert latest_checkpoint(tmp_path) == tmp_path / "ckpt_epoch0001.pt"
    assert torch.equal(load_checkpoint(tmp_path / "ckpt_epoch0001.pt")["model"]["w"], torch.ones(1000))
    leftovers = clean_partial_writes(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".ckpt_epoch0002.pt.tmp-")
