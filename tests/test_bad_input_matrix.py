"""Bad-input matrix (issue 11, sections 3 and 4): each mistake gets one exact line, and no file is lost.

Every CLI case runs ``glocal.cli.main`` in-process on a tiny folder, asserts the exact one-line
``glocal: error: ...`` message (or the counted, named skip / warning) and that every file that
existed before is byte-identical afterwards (hashes).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from pathlib import Path

import pytest
import torch
import yaml

from glocal import __version__
from glocal.cli import main
from glocal.data.formats import load_manifest
from glocal.errors import DataError, WORKER_FIX, one_line
from glocal.runtime.checkpoint import save_checkpoint

METHOD = {"name": "glcm", "width_mult": 0.125, "fast_width_mult": 0.5, "audio_width_mult": 0.125,
          "stem_pool": False, "slow_stride": 4, "proj_dim_global": 16, "proj_dim_local": 8, "n_mels": 32}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def space(tmp_path: Path) -> Path:
    """A config (data in ``data/`` with a manifest, run folder ``run/``) and an old run's files."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.csv").write_text("path,label\na.mp4,x\n")
    cfg = {"method": METHOD, "data": {"root": str(tmp_path / "data"), "num_workers": 0},
           "train": {"out_dir": str(tmp_path / "run"), "progress": False}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "notckpt.txt").write_text("hello, I am a text file\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "afile").write_text("x")
    return tmp_path


def _old_run(space: Path, *names: str) -> None:
    run = space / "run"
    run.mkdir(exist_ok=True)
    for name in names:
        (run / name).write_bytes(b"weights of " + name.encode())


def _cli(space: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    before = _hashes(space)
    rc = main([a.replace("{S}", str(space)) for a in argv])
    err = capsys.readouterr().err.strip()
    after = _hashes(space)
    assert {k: after.get(k) for k in before} == before, "a file was changed or lost"
    return rc, err


RUN_REFUSED = ("glocal: error: train.out_dir {S}/run already holds another run ({files}); continue it with "
               "--resume auto, or start over with --overwrite (deletes that run) or a new folder (train.out_dir=DIR)")

CLI_CASES = [
    # (id, old run files, argv, exact stderr line)
    ("fresh-into-checkpoints", ("ckpt_epoch0001.pt", "ckpt_epoch0002.pt", "best.pt"),
     ["pretrain", "--config", "{S}/c.yaml"],
     RUN_REFUSED.format(S="{S}", files="ckpt_epoch0001.pt, ckpt_epoch0002.pt, best.pt")),
    ("fresh-into-logs-only", ("log.csv",), ["pretrain", "--config", "{S}/c.yaml"],
     RUN_REFUSED.format(S="{S}", files="log.csv")),
    ("fresh-into-mid-epoch", ("ckpt_epoch0000_batch000002.pt",), ["pretrain", "--config", "{S}/c.yaml", "--quiet"],
     RUN_REFUSED.format(S="{S}", files="ckpt_epoch0000_batch000002.pt")),
    ("resume-and-overwrite", ("ckpt_epoch0001.pt",),
     ["pretrain", "--config", "{S}/c.yaml", "--resume", "auto", "--overwrite"],
     "glocal: error: --overwrite starts a fresh run and --resume continues one; pass only one of them"),
    ("out-dir-not-writable", (), ["pretrain", "--config", "{S}/c.yaml", "train.out_dir={S}/afile/run"],
     "glocal: error: train.out_dir {S}/afile/run is not writable (Not a directory); pick another folder or fix "
     "its permissions / free space"),
    ("lr-nan", (), ["pretrain", "--config", "{S}/c.yaml", "optim.lr=nan"],
     "glocal: error: config key 'optim.lr' = nan is out of range; allowed: [0.0, 100.0]"),
    ("lr-inf", (), ["pretrain", "--config", "{S}/c.yaml", "optim.lr=inf"],
     "glocal: error: config key 'optim.lr' = inf is out of range; allowed: [0.0, 100.0]"),
    ("momentum-out-of-range", (), ["pretrain", "--config", "{S}/c.yaml", "optim.momentum=1.5"],
     "glocal: error: config key 'optim.momentum' = 1.5 is out of range; allowed: [0.0, 0.9999]"),
    ("min-lr-negative", (), ["pretrain", "--config", "{S}/c.yaml", "optim.min_lr=-1e-3"],
     "glocal: error: config key 'optim.min_lr' = -0.001 is out of range; allowed: [0.0, 100.0]"),
    ("min-lr-nan", (), ["pretrain", "--config", "{S}/c.yaml", "optim.min_lr=nan"],
     "glocal: error: config key 'optim.min_lr' = nan is out of range; allowed: [0.0, 100.0]"),
    ("on-bad-row-choice", (), ["pretrain", "--config", "{S}/c.yaml", "data.on_bad_row=maybe"],
     "glocal: error: config key 'data.on_bad_row' = 'maybe' is not allowed; allowed values: ['raise', 'skip']"),
    ("override-after-resume", (), ["pretrain", "--config", "{S}/c.yaml", "--resume", "auto", "train.epochs=0"],
     "glocal: error: config key 'train.epochs' = 0 is out of range; allowed: [1, 100000]"),
    ("override-after-quiet", (), ["pretrain", "--quiet", "train.batch_size=0", "--config", "{S}/c.yaml"],
     "glocal: error: config key 'train.batch_size' = 0 is out of range; allowed: [1, 1048576]"),
    ("text-file-as-checkpoint", (), ["eval", "linear", "--checkpoint", "{S}/notckpt.txt", "--out", "{S}/r.json"],
     "glocal: error: {S}/notckpt.txt is not a glocal checkpoint (not a file written by `glocal pretrain`; those "
     "are ckpt_epochNNNN.pt or best.pt in its train.out_dir)"),
    ("empty-checkpoint", (), ["eval", "linear", "--checkpoint", "{S}/empty.pt", "--out", "{S}/r.json"],
     "glocal: error: checkpoint {S}/empty.pt is empty (0 bytes); use another checkpoint of the run"),
    ("eval-out-not-writable", (), ["eval", "linear", "--checkpoint", "{S}/notckpt.txt", "--out", "{S}/afile/r.json"],
     "glocal: error: the results folder of --out {S}/afile is a file, not a folder; pick another folder"),
    ("eval-out-under-a-file", (), ["eval", "linear", "--checkpoint", "{S}/notckpt.txt", "--out", "{S}/afile/x/r.json"],
     "glocal: error: the results folder of --out {S}/afile/x is not writable (Not a directory); pick another "
     "folder or fix its permissions / free space"),
    ("eval-out-is-folder", (), ["eval", "linear", "--checkpoint", "{S}/notckpt.txt", "--out", "{S}/data"],
     "glocal: error: --out {S}/data is a folder; give the results file, e.g. --out {S}/data/linear.json"),
    ("manifest-without-path", (), ["pretrain", "--config", "{S}/c.yaml", "data.root={S}/nopath"],
     "glocal: error: {S}/nopath/manifest.csv: a manifest needs a header row with a 'path' column (or Kinetics' "
     "youtube_id); got ['file', 'label']"),
    ("manifest-zero-bytes", (), ["pretrain", "--config", "{S}/c.yaml", "data.root={S}/zero"],
     "glocal: error: manifest {S}/zero/manifest.csv is empty (0 bytes); it needs a header row with a 'path' "
     "column (path,label[,start,end][,split]; see docs/data_formats.md)"),
    ("manifest-non-utf8-row", (), ["pretrain", "--config", "{S}/c.yaml", "data.root={S}/latin"],
     "glocal: error: manifest {S}/latin/manifest.csv, line 3: not valid UTF-8 text (invalid continuation byte at "
     "byte 1 of the line) (on_bad_row='skip' leaves bad rows out and counts them)"),
]


def _datasets(space: Path) -> None:
    for name, content in (("nopath", b"file,label\na/x.mp4,x\n"), ("zero", b""),
                          ("latin", b"path,label\na.mp4,x\nb\xe9.mp4,y\n")):
        (space / name).mkdir()
        (space / name / "manifest.csv").write_bytes(content)
        (space / name / "a").mkdir()
        (space / name / "a" / "x.mp4").write_bytes(b"not a video")


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_exact_line_and_loses_nothing(space, capsys, case):
    _, old, argv, expected = case
    _old_run(space, *old)
    _datasets(space)
    rc, err = _cli(space, capsys, *argv)
    assert rc == 2
    assert err == expected.replace("{S}", str(space))
    for name in old:  # the refused run's files are all still there, byte-identical (checked by _cli)
        assert (space / "run" / name).is_file()


def test_stray_positional_after_option_is_named(space, capsys):
    rc, err = _cli(space, capsys, "pretrain", "--config", "{S}/c.yaml", "--quiet", "bogus")
    assert rc == 2
    assert err == "glocal: error: override 'bogus' must look like key.sub=value"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"glocal {__version__}"


def test_non_utf8_row_is_a_counted_named_skip(space):
    _datasets(space)
    m = load_manifest(space / "latin", on_bad_row="skip")
    assert len(m) == 1
    assert m.report.count("bad row") == 1
    assert m.report.examples["bad row"] == ["line 3: not valid UTF-8 text (invalid continuation byte at byte 1 of "
                                            "the line)"]


def test_duplicate_rows_and_empty_labels_warn(tmp_path, caplog):
    (tmp_path / "manifest.csv").write_text("path,label\na.mp4,x\nb.mp4,\na.mp4,x\n")
    with caplog.at_level(logging.WARNING, logger="glocal.data"):
        m = load_manifest(tmp_path, "csv")
    assert len(m) == 3
    assert m.report.notes == [
        f"manifest {tmp_path / 'manifest.csv'}: 1 row(s) have an empty label (e.g. line 3); they are kept as "
        "unlabelled (label -1)",
        f"manifest {tmp_path / 'manifest.csv'}: 1 duplicate row(s) (line 4 repeats line 2); they are kept, so "
        "those clips are sampled more often",
    ]
    assert [r.getMessage() for r in caplog.records] == m.report.notes


class _Broken(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        raise DataError(f"clip{i}.mp4: no audio stream (data.missing_audio=silence pads it)")


def test_worker_error_becomes_one_line_with_the_fix():
    loader = torch.utils.data.DataLoader(_Broken(), batch_size=2, num_workers=2)
    with pytest.raises(DataError) as exc:
        next(iter(loader))
    assert "Traceback" in str(exc.value)  # what PyTorch re-raises: the worker's whole traceback
    line = one_line(exc.value)
    assert line == (f"clip0.mp4: no audio stream (data.missing_audio=silence pads it) (in a data loader worker; "
                    f"{WORKER_FIX})") or line.startswith("clip2.mp4")
    assert "\n" not in line


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_checkpoint_write_keeps_the_earlier_one(tmp_path, monkeypatch):
    first = save_checkpoint({"epoch": 1}, tmp_path / "ckpt_epoch0001.pt")
    before = _hashes(tmp_path)
    monkeypatch.setattr(torch, "save", _enospc)
    with pytest.raises(DataError) as exc:
        save_checkpoint({"epoch": 2}, tmp_path / "ckpt_epoch0002.pt")
    assert str(exc.value) == (f"cannot write checkpoint {tmp_path / 'ckpt_epoch0002.pt'} (No space left on device); "
                              f"the earlier checkpoints in {tmp_path} are intact: free space there and continue with "
                              "--resume auto")
    assert _hashes(tmp_path) == before and first.is_file()


def test_disk_full_during_results_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    from glocal.eval.suite import EvalReport

    report = EvalReport("c.pt", "data", "glcm", ["linear"])
    out = report.write_json(tmp_path / "all.json")
    before = _hashes(tmp_path)
    monkeypatch.setattr(os, "replace", _enospc)
    with pytest.raises(DataError) as exc:
        report.write_json(out)
    assert str(exc.value) == (f"cannot write results {out} (No space left on device); files written before are "
                              "intact: free space there or pass another --out")
    assert _hashes(tmp_path) == before
