"""One run per folder (issue 11, section 3): refusal keeps every byte, --overwrite starts over on
purpose, extending a finished run re-plans the lr with a note, best.pt names its criterion,
TensorBoard drops the steps a resume discards, and the start warns about the data up front."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from glocal.cli import main
from glocal.data.formats import load_manifest
from glocal.data.preflight import preflight_notes
from glocal.train import runlog
from glocal.data.config import DataConfig


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_refuse_overwrite_and_extend_a_run(tmp_path, tiny_raw, capsys):
    run = tmp_path / "run"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_raw(run, epochs=1)))
    assert main(["pretrain", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "best.pt: lowest epoch-mean loss (train.best_metric=loss; the kNN monitor is off)" in out
    assert '"best_criterion": "lowest epoch-mean loss' in out
    before = _hashes(run)
    assert "ckpt_epoch0001.pt" in before and "best.pt" in before

    assert main(["pretrain", "--config", str(cfg), "--quiet"]) == 2
    assert "already holds another run (ckpt_epoch0001.pt, best.pt, log.csv, epochs.csv (+1 more)); continue it " \
           "with --resume auto" in capsys.readouterr().err
    assert _hashes(run) == before  # byte-identical after the refusal

    # extend the finished run: the schedule is re-planned over 2 epochs and the note says so
    assert main(["pretrain", "--config", str(cfg), "--resume", "auto", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "note: the learning-rate schedule is re-planned for this run (cosine over 2 epochs x 2 steps; the " \
           "checkpoint's run planned 1 epochs): at step 2 the lr is" in out
    assert (run / "ckpt_epoch0002.pt").is_file()

    assert main(["pretrain", "--config", str(cfg), "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert f"--overwrite: deleted the earlier run's 6 files in {run}" in out
    assert len((run / "log.csv").read_text().splitlines()) == 3  # header + the new run's 2 steps only


def test_same_schedule_resume_prints_no_replan_note(tmp_path, tiny_raw, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_raw(tmp_path / "run", epochs=2, save_every_steps=1)))
    assert main(["pretrain", "--config", str(cfg), "train.epochs=2"]) == 0
    (tmp_path / "run" / "ckpt_epoch0002.pt").unlink()
    capsys.readouterr()
    assert main(["pretrain", "--config", str(cfg), "--resume", "auto"]) == 0
    assert "re-planned" not in capsys.readouterr().out


def test_tensorboard_purges_the_steps_a_resume_discards(tmp_path, monkeypatch):
    seen = {}

    class Writer:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(runlog, "check_tensorboard", lambda: Writer)
    runlog.open_tensorboard(tmp_path, purge_step=4)
    assert seen == {"log_dir": str(tmp_path / "tb"), "purge_step": 4}


def test_preflight_warns_once_about_missing_files_crop_and_clip(tiny_world):
    m = load_manifest(tiny_world, split="train")
    first = m.paths[0]
    m.paths[0] = str(Path(first).with_name("gone.mp4"))
    d = DataConfig(crop_size=64, clip_frames=64, fps=16.0)
    notes = preflight_notes(m, d, probes=2)
    assert notes[0].startswith(f"warning: 1 of {len(m)} listed files are not on disk (e.g. ")
    assert "data.crop_size=64 is larger than the frames of 2 of 2 probed videos" in notes[1]
    assert ": 32x32): crops are upscaled" in notes[1]
    assert "a clip (64 frames at 16 fps = 4.00 s) is longer than 2 of 2 probed videos" in notes[2]
    d = DataConfig(crop_size=64, decode_size=48, clip_frames=8, fps=16.0)
    assert preflight_notes(m, d, probes=1)[1] == (
        "warning: data.crop_size=64 is larger than the decoded frames (data.decode_size=48): crops are upscaled; "
        "lower data.crop_size or raise data.decode_size")
    assert preflight_notes(m, DataConfig(crop_size=16, clip_frames=8, fps=16.0), probes=2)[1:] == []


def test_pretraining_has_an_on_bad_row_key(tmp_path, tiny_world, tiny_raw):
    from glocal.methods import build_method
    from glocal.train.config import config_from_dict

    def build_pretrain_dataset(cfg):
        return build_method(cfg.method, cfg.data).pretrain_dataset(seed=0, augment_on_device=False)

    lines = (Path(tiny_world) / "manifest.csv").read_bytes().splitlines()
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.csv").write_bytes(b"\n".join(lines[:1] + [lines[1].replace(b".mp4", b"\xe9.mp4")] + lines[2:]))
    for p in Path(tiny_world).iterdir():
        if p.is_dir():
            (data / p.name).symlink_to(p)
    cfg = config_from_dict(tiny_raw(tmp_path / "run", data={"root": str(data), "on_bad_row": "skip"}))
    ds = build_pretrain_dataset(cfg)
    assert ds.manifest.report.count("bad row") == 1
    with pytest.raises(Exception, match="line 2: not valid UTF-8"):
        build_pretrain_dataset(config_from_dict(tiny_raw(tmp_path / "run", data={"root": str(data)})))
