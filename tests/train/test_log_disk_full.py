"""Disk full while appending log.csv / epochs.csv: one line, earlier rows and checkpoints intact."""

from __future__ import annotations

import builtins
import errno

import pytest
import torch

from glocal.errors import GlocalError
from glocal.train import runlog
from glocal.runtime.checkpoint import list_checkpoints
from glocal.train.engine import pretrain
from glocal.train.runlog import CSVLog


def _full_disk(monkeypatch, name: str, after: int = 0, partial: bool = True) -> None:
    """``open(...)`` in runlog of a file called ``name`` gives a handle whose writes fail with
    ENOSPC after ``after`` successful ones (writing half of the text first when ``partial``)."""
    calls = {"n": 0}

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            calls["n"] += 1
            if calls["n"] <= after:
                return self.fh.write(text)
            if partial:
                self.fh.write(text[: len(text) // 2])
                self.fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *args, **kwargs):
        fh = builtins.open(path, mode, *args, **kwargs)
        return Full(fh) if str(path).endswith(name) and "a" in mode else fh

    monkeypatch.setattr(runlog, "open", fake_open, raising=False)


def test_a_failed_append_is_one_line_and_keeps_the_earlier_rows(tmp_path, monkeypatch):
    log = CSVLog(tmp_path / "log.csv")
    log.write({"step": 1, "loss": 0.5})
    before = (tmp_path / "log.csv").read_bytes()
    _full_disk(monkeypatch, "log.csv")
    with pytest.raises(GlocalError) as info:
        log.write({"step": 2, "loss": 0.4})
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"cannot write {tmp_path / 'log.csv'} (No space left on device)")
    assert "--resume auto" in msg
    assert (tmp_path / "log.csv").read_bytes() == before  # the half-written row is cut off again


def test_disk_full_during_a_run_keeps_its_checkpoints(tmp_path, tiny_config, monkeypatch, capsys):
    cfg = tiny_config(tmp_path / "run", epochs=2)
    _full_disk(monkeypatch, "epochs.csv", after=1)  # epoch 1's row is written, epoch 2's is not
    with pytest.raises(GlocalError, match=r"^cannot write .*epochs\.csv \(No space left on device\); its earlier"):
        pretrain(cfg)
    rows = CSVLog(tmp_path / "run" / "epochs.csv").rows()
    assert [r["epoch"] for r in rows] == ["1"]
    ckpts = list_checkpoints(tmp_path / "run")
    # the checkpoints saved before the failing write (epoch 2's included) are there and readable
    assert sorted(torch.load(p, weights_only=True)["epoch"] for p in ckpts) == [1, 2]
