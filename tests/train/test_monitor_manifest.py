"""The online kNN monitor reads the training data like the pretraining dataset does: ``data.format`` and
``data.deny_list`` (regression test: an earlier version read ``data.root`` as a CSV manifest only).

The videos are empty placeholder files: building the monitor only lists the dataset, it decodes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glocal.errors import DataError
from glocal.train.config import config_from_dict
from glocal.train.monitor import KNNMonitor

GLCM = dict(name="glcm", width_mult=0.125, fast_width_mult=0.5, audio_width_mult=0.125, stem_pool=False,
            slow_stride=4, proj_dim_global=16, proj_dim_local=8, n_mels=32)


def _folder_dataset(root: Path) -> Path:
    """``root/{train,val}/{cat,dog}/<video>.mp4``: the folder layout with split folders (no manifest)."""
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{cls}{i}.mp4").write_bytes(b"")
    return root


def _monitor(root: Path, out: Path, **data) -> KNNMonitor:
    cfg = config_from_dict({
        "method": dict(GLCM),
        "data": {"root": str(root), "clip_frames": 8, "fps": 16.0, "crop_size": 32, "num_workers": 0, **data},
        "train": {"out_dir": str(out), "batch_size": 2, "monitor_every_epochs": 1, "progress": False},
    })
    return KNNMonitor(cfg, ("video", "audio"), torch.device("cpu"), None)


def _rel(paths, root: Path) -> list[str]:
    return sorted(Path(p).relative_to(root.resolve()).as_posix() for p in paths.tolist())


def test_monitor_reads_folder_layout_and_honours_the_deny_list(tmp_path):
    root = _folder_dataset(tmp_path / "data")
    deny = tmp_path / "deny.txt"  # the format `glocal scan DATA --out deny.txt` writes
    deny.write_text("# glocal scan data\ntrain/cat/cat1.mp4  # undecodable: moov atom not found\n"
                    "val/dog/dog0.mp4  # empty: 0 bytes\n")
    mon = _monitor(root, tmp_path / "run", format="folder", deny_list=str(deny))
    assert _rel(mon.bank.paths, root) == ["train/cat/cat0.mp4", "train/cat/cat2.mp4", "train/dog/dog0.mp4",
                                          "train/dog/dog1.mp4", "train/dog/dog2.mp4"]
    assert _rel(mon.query.paths, root) == ["val/cat/cat0.mp4", "val/cat/cat1.mp4", "val/dog/dog1.mp4"]
    assert sorted(set(mon.bank.labels.tolist())) == [0, 1]  # class folders are the labels
    # without the deny list every file is used; "auto" detects the same layout
    mon = _monitor(root, tmp_path / "run2")
    assert len(mon.bank) == 6 and len(mon.query) == 4


def test_monitor_with_a_format_that_does_not_fit_fails_clearly(tmp_path):
    root = _folder_dataset(tmp_path / "data")
    with pytest.raises(DataError, match="manifest"):
        _monitor(root, tmp_path / "run", format="csv")  # i.e. data.format is really passed on
