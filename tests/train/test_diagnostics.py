"""Online diagnostics: probe on a separable toy problem, report lines / warning, engine columns, resume."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from glocal.train.diagnostics import EpochDiagnostics, chance_columns, chance_lines, split_outputs
from glocal.train.engine import pretrain
from glocal.train.online_probe import OnlineProbe


def test_probe_learns_a_linearly_separable_toy_problem_and_round_trips():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 4
    y = torch.randint(0, 3, (256,), generator=g)
    x = centres[y] + torch.randn(256, 8, generator=g) * 0.3
    y_masked = y.clone()
    y_masked[::7] = -1  # unlabelled rows are ignored
    probe = OnlineProbe(3, lr=0.05, device=torch.device("cpu"))
    rng_before = torch.random.get_rng_state()
    first = None
    for epoch in range(5):
        for i in range(0, 256, 32):
            probe.step(x[i : i + 32], y_masked[i : i + 32])
        top1 = probe.epoch_top1()
        first = top1 if first is None else first
    assert torch.equal(rng_before, torch.random.get_rng_state())  # no draw from the global RNG
    assert top1 == pytest.approx(1.0)
    assert probe.top1(x.numpy(), y.numpy()) == pytest.approx(1.0)
    clone = OnlineProbe(3, lr=0.05, device=torch.device("cpu"))
    clone.load_state_dict(probe.state_dict())
    assert clone.top1(x, y) == pytest.approx(1.0)
    # a probe that never saw a labelled clip reports nothing
    empty = OnlineProbe(3, lr=0.05, device=torch.device("cpu"))
    empty.step(x[:4], torch.full((4,), -1))
    assert empty.epoch_top1() is None


def test_split_outputs_and_epoch_means():
    out = {"loss": torch.tensor(1.0), "loss_nce": torch.tensor(1.0), "pair/loss_nce": torch.zeros(2, 3, 4),
           "attn/map": torch.full((2, 4), 0.25), "feat/video": torch.zeros(2, 5)}
    losses, extras = split_outputs(out)
    assert set(losses) == {"loss", "loss_nce"} and set(extras) == {"pair/loss_nce", "attn/map", "feat/video"}
    d = EpochDiagnostics()
    pair = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])  # x == y, two orthogonal rows
    d.add_extras({"pair/t": pair, "attn/map": torch.full((2, 4), 0.25)})
    d.add_chance({"t": 2.0})
    d.add_chance({"t": 4.0})
    m = d.means()
    assert m["t/align"] == pytest.approx(0.0)
    assert m["t/uniform"] == pytest.approx(-4.0)  # ||x_0 - x_1||^2 = 2 -> log e^{-4}
    assert m["map/entropy"] == pytest.approx(1.0)
    assert m["t/chance"] == pytest.approx(3.0)
    assert chance_columns({"t": 2.94}, {"t": 3.0})["t/below_chance"] == pytest.approx(0.02)


def test_chance_lines_and_warning():
    row = {"loss_global": 4.09, "loss_global/chance": math.log(64), "loss_local": 3.0, "loss_local/chance": 6.0}
    lines, warns = chance_lines(row, epoch=2, warn_epochs=3, tolerance=0.02, hints={})
    assert "loss_global 4.09 (chance 4.159: 1.7 % below)" in lines
    assert "loss_local 3 (chance 6: 50.0 % below)" in lines
    assert warns == []  # too early
    lines, warns = chance_lines(row, epoch=3, warn_epochs=3, tolerance=0.02, hints={"loss_global": "HINT"})
    assert len(warns) == 1 and warns[0].startswith("warning: loss_global is still at chance after 3 epochs")
    assert "HINT" in warns[0] and "docs/diagnostics.md" in warns[0]
    assert chance_lines(row, epoch=9, warn_epochs=0, tolerance=0.02, hints={})[1] == []


def test_collapse_warning_from_uniformity():
    """AVTS's V-A term on real parts: every embedding on one point (uniformity ~0), loss at chance."""
    row = {"loss_va": 4.159, "loss_va/chance": math.log(64), "loss_va/uniform": -0.002, "loss_vv/uniform": -1.3}
    assert not [w for w in chance_lines(row, epoch=2, warn_epochs=3, tolerance=0.02, hints={})[1] if "collapsed" in w]
    warns = chance_lines(row, epoch=3, warn_epochs=3, tolerance=0.02, hints={"loss_va": "HINT"})[1]
    collapsed = [w for w in warns if "collapsed" in w]
    assert len(collapsed) == 1 and collapsed[0].startswith("warning: loss_va's embeddings have collapsed onto one point")
    assert "-0.002" in collapsed[0] and "HINT" in collapsed[0]
    spread = {**row, "loss_va/uniform": -0.012}  # AVID's V-A term early on: no collapse warning
    assert not [w for w in chance_lines(spread, epoch=5, warn_epochs=3, tolerance=0.02, hints={})[1] if "collapsed" in w]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_engine_logs_diagnostic_columns_and_warns_at_chance(tmp_path, tiny_config, capsys):
    # chance_tolerance = 1 counts anything less than 100 % below chance as "at chance": the
    # warning must appear from epoch 1 on
    cfg = tiny_config(tmp_path / "run", epochs=2, chance_warn_epochs=1, chance_tolerance=1.0,
                      monitor_every_epochs=1, monitor_query_split="val")
    pretrain(cfg)
    out = capsys.readouterr().out
    step = _rows(tmp_path / "run" / "log.csv")[0]
    assert float(step["loss_global/chance"]) == pytest.approx(math.log(2 * 4))  # ln 2B, B = 4
    assert float(step["loss_local/chance"]) == pytest.approx(math.log(2 * 4 * 8))  # ln 2BT, T = 8
    assert float(step["loss_global/below_chance"]) == pytest.approx(
        1 - float(step["loss_global"]) / math.log(8), abs=1e-6)
    epoch = _rows(tmp_path / "run" / "epochs.csv")[-1]
    for col in ("loss_global/chance", "loss_global/below_chance", "loss_global/align", "loss_global/uniform",
                "loss_local/align", "loss_local/uniform", "av_attention/entropy", "probe_train_top1",
                "probe_val_top1", "knn_top1"):
        assert epoch[col] != "", col
    assert 0.0 <= float(epoch["av_attention/entropy"]) <= 1.0
    assert 0.0 <= float(epoch["loss_global/align"]) <= 4.0
    assert -8.0 <= float(epoch["loss_global/uniform"]) <= 0.0
    assert 0.0 <= float(epoch["probe_train_top1"]) <= 1.0
    assert "[glocal]   loss_global " in out and "(chance 2.079:" in out
    assert "warning: loss_global is still at chance after 1 epochs" in out
    assert "attention_stopgrad" in out  # GLCM's hint
    from glocal.train.plot import plot_run

    assert plot_run(tmp_path / "run").stat().st_size > 0  # chance lines + diagnostic panels render


def test_a_term_of_weight_0_is_logged_but_never_called_at_chance(tmp_path, tiny_config, capsys):
    """GLCM global-only (``method.weight_local=0``): the local loss is still logged, but it has no
    chance level, so no "still at chance" warning names a term the run does not train."""
    cfg = tiny_config(tmp_path / "run", method={"weight_local": 0.0}, epochs=1, chance_warn_epochs=1,
                      chance_tolerance=1.0)
    pretrain(cfg)
    out = capsys.readouterr().out
    step = _rows(tmp_path / "run" / "log.csv")[0]
    assert step["loss_local"] != "" and "loss_local/chance" not in step and "loss_global/chance" in step
    assert "warning: loss_global is still at chance" in out  # the trained term is still checked
    assert "loss_local is still at chance" not in out and "loss_local " not in out  # no per-term chance line


def test_engine_without_labels_or_diagnostics(tmp_path, tiny_config, capsys):
    pretrain(tiny_config(tmp_path / "run", epochs=1, diagnostics=False, online_probe=False))
    epoch = _rows(tmp_path / "run" / "epochs.csv")[-1]
    assert not any("/" in k or k.startswith("probe") for k in epoch)
    assert "chance" not in capsys.readouterr().out


def test_resume_restores_the_probe_and_keeps_the_trajectory(tmp_path, tiny_raw, capsys):
    from glocal.train.config import config_from_dict

    full = pretrain(config_from_dict(tiny_raw(tmp_path / "full", epochs=2)))
    pretrain(config_from_dict(tiny_raw(tmp_path / "part", epochs=2, save_every_steps=1)))
    # keep only the mid-epoch checkpoint after step 3 of 4 (probe and diagnostic sums mid-epoch)
    mid = tmp_path / "part" / "ckpt_epoch0001_batch000001.pt"
    assert mid.exists()
    assert torch.load(mid, weights_only=False)["diagnostics"]["probe"]["seen"] > 0
    for p in sorted((tmp_path / "part").glob("ckpt_*.pt")):
        if p != mid:
            p.unlink()
    (tmp_path / "part" / "best.pt").unlink(missing_ok=True)
    resumed = pretrain(config_from_dict(tiny_raw(tmp_path / "part", epochs=2, save_every_steps=1)), resume="auto")
    assert resumed["steps"] == 4 and "resumed from" in capsys.readouterr().out
    assert resumed["last_losses"] == full["last_losses"]
    a = _rows(tmp_path / "full" / "epochs.csv")[-1]
    b = _rows(tmp_path / "part" / "epochs.csv")[-1]
    for col in ("loss_global", "loss_global/align", "av_attention/entropy", "probe_train_top1"):
        assert float(b[col]) == pytest.approx(float(a[col]), rel=1e-6), col
