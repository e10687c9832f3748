"""The suite and the CLI: task registry, reports, `all`, ESC-50 data, and clear errors on bad input."""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal.data.config import DataConfig
from glocal.cli import main
from glocal.errors import DataError, GlocalError
from glocal.eval import suite
from glocal.eval.checkpoint import CheckpointMismatchError, load_method
from glocal.eval.cli import TASK_NAMES
from glocal.eval.context import EvalOptions
from glocal.eval.suite import TASKS, evaluate, results_markdown, run_evaluation
from glocal.methods import build_method
from glocal.runtime.checkpoint import save_checkpoint

FAST = dict(device="cpu", progress=False, num_workers=0, batch_size=16, clips_per_video=1)


def test_cli_task_names_match_the_registry():
    assert TASK_NAMES == tuple(TASKS)


def test_run_evaluation_reports_checkpoint_and_random_init(tiny_checkpoint, tiny_world, tmp_path):
    report = run_evaluation(tiny_checkpoint, tiny_world, ["linear", "knn"], **FAST,
                            options=EvalOptions(classifier="svm", knn_k=5))
    assert list(report.metrics) == ["checkpoint", "random_init"] and report.tasks == ["linear", "knn"]
    for model in report.metrics:
        assert 0 <= report.metrics[model]["linear"]["top1"] <= 1
        assert report.meta[model]["knn"]["k"] == 5 and report.seconds[model]["knn"] >= 0
    table = report.table()
    assert "| linear | top1 |" in table and "random_init" in table.splitlines()[0]
    assert report.summary().startswith("linear: checkpoint top1=")
    data = json.loads(report.write_json(tmp_path / "r.json").read_text())
    assert data["options"]["classifier"] == "svm" and data["eval_data"]["clip_frames"] == 8
    assert data["eval_data"]["clips_per_video"] == 1 and report.meta["checkpoint"]["linear"]["clips_per_video"] == 1
    flat = report.flat()
    assert set(flat["checkpoint"]) == {"linear/top1", "knn/top1"}
    assert "| knn | top1 |" in results_markdown(flat)
    # the backwards-compatible flat API
    out = evaluate(tiny_checkpoint, tiny_world, ["knn"], with_random=False, out_json=tmp_path / "k.json", **FAST)
    assert set(out) == {"checkpoint"} and (tmp_path / "k.json").is_file()


def test_random_init_differs_from_the_checkpoint(tiny_checkpoint, tiny_world, tiny_cfg, make_ctx):
    method, cfg = load_method(tiny_checkpoint, torch.device("cpu"))
    twin = suite.random_init_like(cfg, make_ctx(), seed=0)
    a, b = method.state_dict(), twin.state_dict()
    assert set(a) == set(b)
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    bn = twin.audio_norm  # re-estimated on training clips, not the mean-0 / var-1 of a fresh BatchNorm
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
def test_checkpoint_of_another_architecture(tiny_cfg, tmp_path, tiny_world):
    other = build_method(type(tiny_cfg.method)(**{**tiny_cfg.method.__dict__, "width_mult": 0.25}), DataConfig(sample_rate=8000, fps=8.0))
    path = save_checkpoint({"config": tiny_cfg.to_dict(), "model": other.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointMismatchError, match=r"other\.pt.*shape mismatches.*slow\."):
        load_method(path, torch.device("cpu"))
    state = {k: v for k, v in build_method(tiny_cfg.method, DataConfig(sample_rate=8000, fps=8.0)).state_dict().items()
             if not k.startswith("audio.")}
    state["extra.weight"] = torch.zeros(1)
    path2 = save_checkpoint({"config": tiny_cfg.to_dict(), "model": state}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointMismatchError, match=r"missing keys.*audio\..*unexpected keys.*extra\.weight"):
        load_method(path2, torch.device("cpu"))
    assert issubclass(CheckpointMismatchError, GlocalError)
    rc = main(["eval", "linear", "--checkpoint", str(path), "--data", str(tiny_world), "--quiet"])
    assert rc == 2


def _strip(world: Path, out: Path, drop_cols: tuple[str, ...] = (), keep_files: tuple[str, ...] = (),
           rows=None) -> Path:
    """A copy of the world's manifest (absolute video paths) without some columns / rows / files."""
    out.mkdir(parents=True, exist_ok=True)
    with open(world / "manifest.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    cols = [c for c in table[0] if c not in drop_cols]
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in table:
            if rows is None or rows(r):
                w.writerow([str(world / r[c]) if c == "path" else r[c] for c in cols])
    for name in keep_files:
        (out / name).write_text((world / name).read_text())
    return out


@pytest.mark.parametrize("task, drop, files, message", [
    ("temporal", ("rhythm_label",), (), r"task 'temporal'.*annotations\.json.*'rhythm'"),
    ("event", (), (), r"task 'event'.*annotations\.json.*'events'"),
    ("tal", (), (), r"task 'tal'.*annotations\.json"),
    ("localization", (), (), r"task 'localization'.*annotations\.json.*'source_boxes'"),
    ("deepfake", (), (), r"task 'deepfake'.*fake/manifest\.csv"),
    ("linear", ("label",), (), r"task 'linear'.*'label' column"),
    ("sound", ("label", "sound_label"), (), r"task 'sound'.*'sound_label' or 'label' column"),
    ("retrieval", ("split",), (), r"task 'retrieval'.*'split' column"),
])
def test_missing_labels_or_annotations_name_the_task(task, drop, files, message, tiny_checkpoint, tiny_world,
                                                     tmp_path):
    data = _strip(tiny_world, tmp_path / "data", drop, files)
    with pytest.raises(DataError, match=message):
        run_evaluation(tiny_checkpoint, data, [task], **FAST)


def test_annotations_without_an_entry_for_a_video(tiny_checkpoint, tiny_world, tmp_path):
    data = _strip(tiny_world, tmp_path / "data")
    (data / "annotations.json").write_text(json.dumps({"videos": {}}))
    with pytest.raises(DataError, match=r"task 'event' needs 'events' for every video"):
        run_evaluation(tiny_checkpoint, data, ["event"], **FAST)


def test_empty_split_is_a_clear_error(tiny_checkpoint, tiny_world, tmp_path):
    data = _strip(tiny_world, tmp_path / "data", rows=lambda r: r["split"] != "test")
    with pytest.raises(DataError, match=r"task 'linear': split 'test' is empty.*splits present: \['train', 'val'\]"):
        run_evaluation(tiny_checkpoint, data, ["linear"], **FAST)
    with pytest.raises(DataError, match=r"task 'fingerprint': split 'test' is empty"):
        run_evaluation(tiny_checkpoint, data, ["fingerprint"], **FAST)


def test_unknown_task_and_missing_modality(tiny_checkpoint, tiny_world):
    with pytest.raises(GlocalError, match="unknown eval task"):
        run_evaluation(tiny_checkpoint, tiny_world, ["lipreading"], **FAST)
    assert main(["eval", "lipreading", "--checkpoint", str(tiny_checkpoint), "--quiet"]) == 2


# ------------------------------------------------------------------------------------------------
# ESC-50-style audio-only data, and `all` skipping what the data cannot support
# ------------------------------------------------------------------------------------------------
def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def esc50(tmp_path_factory) -> Path:
    """ESC-50 layout: meta/esc50.csv + audio/*.wav; 2 classes (tones / noise bursts) x 5 folds x 2 clips."""
    root = tmp_path_factory.mktemp("esc50")
    (root / "meta").mkdir()
    (root / "audio").mkdir()
    rng = np.random.default_rng(0)
    sr = 8000
    t = np.arange(int(1.5 * sr)) / sr
    rows = []
    for fold in range(1, 6):
        for target, category in ((0, "tone"), (1, "noise")):
            for k in range(2):
                name = f"{fold}-{target}-{k}.wav"
                audio = (0.5 * np.sin(2 * np.pi * rng.uniform(300, 500) * t) if target == 0
                         else 0.3 * rng.normal(size=t.shape))
                _write_wav(root / "audio" / name, audio, sr)
                rows.append([name, fold, target, category, "False", "x", "A"])
    with open(root / "meta" / "esc50.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    return root


def test_sound_on_an_esc50_folder(esc50, tiny_method, make_ctx):
    ctx = make_ctx(root=esc50, audio_crops=2)
    res = TASKS["sound"].run(tiny_method, ctx)
    assert res["meta"]["protocol"] == "5-fold" and len(res["meta"]["per_fold"]) == 5
    assert 0.0 <= res["top1"] <= 1.0 and res["meta"]["files"] == 20
    csv_ctx = make_ctx(root=esc50 / "meta" / "esc50.csv")  # the CSV itself works too
    assert TASKS["sound"].run(tiny_method, csv_ctx)["meta"]["source"].endswith("esc50.csv")


def test_all_on_audio_only_data_runs_sound_and_skips_the_rest(esc50, tiny_checkpoint):
    report = run_evaluation(tiny_checkpoint, esc50, None, **FAST, options=EvalOptions(audio_crops=1))
    assert report.tasks == ["sound"] and set(report.metrics) == {"checkpoint", "random_init"}
    assert set(report.skipped) == set(TASKS) - {"sound"}
    assert "no manifest" in report.skipped["linear"]


def test_esc50_missing_audio_file(esc50, tmp_path, tiny_method, make_ctx):
    (tmp_path / "meta").mkdir()
    text = (esc50 / "meta" / "esc50.csv").read_text().replace("1-0-0.wav", "gone.wav")
    (tmp_path / "meta" / "esc50.csv").write_text(text)
    (tmp_path / "audio").symlink_to(esc50 / "audio")
    with pytest.raises(DataError, match=r"task 'sound'.*missing.*gone\.wav"):
        TASKS["sound"].run(tiny_method, make_ctx(root=tmp_path))


# ------------------------------------------------------------------------------------------------
# CLI end to end
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_cli_eval_event_end_to_end(tiny_checkpoint, tiny_world, tmp_path, capsys, restore_threads):
    out = tmp_path / "event.json"
    rc = main(["eval", "event", "--checkpoint", str(tiny_checkpoint), "--data", str(tiny_world), "--quiet",
               "--num-workers", "0", "--segment-seconds", "0.5", "--threads", "1", "--out", str(out)])
    assert rc == 0 and torch.get_num_threads() == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glocal eval event: event: checkpoint segment_acc=")
    assert "random_init segment_acc=" in lines[0] and str(out) in lines[0]
    data = json.loads(out.read_text())
    assert data["tasks"] == ["event"] and data["options"]["segment_seconds"] == 0.5
    for model in ("checkpoint", "random_init"):
        assert 0.0 <= data["metrics"][model]["event"]["segment_acc"] <= 1.0


def test_cli_default_json_next_to_the_checkpoint(tiny_checkpoint, tiny_world, capsys):
    rc = main(["eval", "all", "--tasks", "knn,retrieval", "--checkpoint", str(tiny_checkpoint), "--data",
               str(tiny_world), "--quiet", "--num-workers", "0", "--no-random", "--k", "3", "--ks", "1,5",
               "--video-pool", "max"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| knn | top1 |" in out and "| retrieval | R@5 |" in out
    data = json.loads((tiny_checkpoint.parent / "eval" / "all.json").read_text())
    assert data["tasks"] == ["knn", "retrieval"] and set(data["metrics"]) == {"checkpoint"}
    assert data["options"]["video_pool"] == "max" and data["meta"]["checkpoint"]["retrieval"]["video_pool"] == "max"
    assert set(data["metrics"]["checkpoint"]["retrieval"]) == {"R@1", "R@5"}


@pytest.mark.slow
def test_cli_eval_all_on_the_tiny_world(tiny_checkpoint, tiny_world, tmp_path, capsys):
    out = tmp_path / "all.json"
    rc = main(["eval", "all", "--checkpoint", str(tiny_checkpoint), "--data", str(tiny_world), "--quiet",
               "--num-workers", "0", "--head-epochs", "5", "--finetune-epochs", "1", "--test-clips", "2",
               "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["tasks"] == list(TASKS) and not data["skipped"]
    table = capsys.readouterr().out
    for task in TASKS:
        assert f"| {task} |" in table


def test_cli_eval_honours_deny_list_and_format(tiny_checkpoint, tiny_world, tmp_path, capsys):
    """`glocal eval --deny-list/--format` reach the dataset: denying every test file empties the
    test split (a clear error), and a wrong layout is refused."""
    import csv as _csv

    rows = list(_csv.DictReader(open(tiny_world / "manifest.csv", encoding="utf-8")))
    deny = tmp_path / "deny.txt"
    deny.write_text("".join(f"{r['path']}  # test\n" for r in rows if r["split"] == "test"), encoding="utf-8")
    args = ["eval", "linear", "--checkpoint", str(tiny_checkpoint), "--data", str(tiny_world), "--quiet",
            "--num-workers", "0", "--no-random"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--deny-list", str(deny)]) != 0
    assert "split 'test' is empty" in capsys.readouterr().err
    assert main([*args, "--format", "ucf101"]) != 0
    assert "no UCF101 classInd.txt" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# methods that cannot run a named task: skip_unsupported, and `glocal demo --tasks`
# ------------------------------------------------------------------------------------------------
def _tiny_checkpoint_of(method: dict, tiny_cfg, path: Path) -> Path:
    """Random weights of a tiny ``method`` (a config dict) in the checkpoint format, on tiny_cfg's data."""
    from glocal.train.config import config_from_dict

    raw = tiny_cfg.to_dict()
    raw["method"] = method
    cfg = config_from_dict(raw)
    torch.manual_seed(0)
    model = build_method(cfg.method, cfg.data)
    return save_checkpoint({"method": method["name"], "config": cfg.to_dict(), "model": model.state_dict(),
                            "epoch": 1, "step": 1}, path)


TINY_SIMCLR = dict(name="simclr", depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)
TINY_AVID = dict(name="avid", depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16, audio_width_mult=0.125,
                 logmel_preset="avts", n_mels=32, audio_seconds=None)


def test_skip_unsupported_skips_a_missing_modality(tiny_cfg, tiny_world, tmp_path):
    ckpt = _tiny_checkpoint_of(TINY_SIMCLR, tiny_cfg, tmp_path / "simclr.pt")
    with pytest.raises(GlocalError, match=r"task 'sound' needs \['audio'\].*'simclr' does not use"):
        run_evaluation(ckpt, tiny_world, ["knn", "sound"], **FAST)
    report = run_evaluation(ckpt, tiny_world, ["knn", "sound"], skip_unsupported=True, options=EvalOptions(knn_k=3),
                            **FAST)
    assert report.tasks == ["knn"] and list(report.skipped) == ["sound"]
    assert set(report.metrics["checkpoint"]) == {"knn"} and set(report.metrics["random_init"]) == {"knn"}
    with pytest.raises(DataError, match="no evaluation task can run"):  # nothing left: still an error
        run_evaluation(ckpt, tiny_world, ["sound"], skip_unsupported=True, **FAST)


def test_skip_unsupported_skips_a_missing_hook_but_not_missing_data(tiny_cfg, tiny_world, tmp_path):
    """AVID has video and audio but no per-step (local) features: the temporal task is skipped
    (listed) instead of an error; a dataset problem of a named task still raises."""
    ckpt = _tiny_checkpoint_of(TINY_AVID, tiny_cfg, tmp_path / "avid.pt")
    with pytest.raises(GlocalError, match=r"task 'temporal'.*no local \(per-step\) video features"):
        run_evaluation(ckpt, tiny_world, ["temporal"], with_random=False, **FAST)
    report = run_evaluation(ckpt, tiny_world, ["temporal"], skip_unsupported=True, **FAST)
    assert report.tasks == [] and "per-step" in report.skipped["temporal"]
    data = _strip(tiny_world, tmp_path / "data", ("label",))
    with pytest.raises(DataError, match=r"task 'linear'.*'label' column"):
        run_evaluation(ckpt, data, ["linear"], skip_unsupported=True, **FAST)


def test_demo_task_names_and_checks():
    from glocal.cli import DEMO_TASK_NAMES, build_parser
    from glocal.demo import DEMO_TASKS, check_demo_tasks
    from glocal.errors import ConfigError

    assert DEMO_TASK_NAMES == tuple(DEMO_TASKS)
    assert build_parser().parse_args(["demo"]).tasks is None
    args = build_parser().parse_args(["demo", "--tasks", "linear, sound", "train.epochs=1"])
    assert args.tasks == ["linear", "sound"] and args.overrides == ["train.epochs=1"]
    keep, skipped = check_demo_tasks(DEMO_TASKS, "simclr")
    assert keep == ["linear", "retrieval"] and set(skipped) == {"localization", "sound"}
    assert check_demo_tasks(DEMO_TASKS, "avid")[0] == DEMO_TASKS  # localisation hook: found at evaluation
    with pytest.raises(ConfigError, match="unknown demo task"):
        check_demo_tasks(["linear", "lipreading"], "glcm")
    with pytest.raises(ConfigError, match="none of the demo tasks"):
        check_demo_tasks(["sound"], "moco")


@pytest.mark.slow
def test_cli_demo_tasks_skips_what_the_method_cannot_run(tiny_world, tmp_path, capsys, restore_threads):
    """`glocal demo --config <video-only recipe> --tasks knn,sound`: pretrains, evaluates knn,
    skips sound with a printed note (was: a crash after pretraining), lists it in the results."""
    world = json.loads((tiny_world / "world.json").read_text())["config"]
    cfg = {
        "world": world,  # identical to the fixture's world: reused, not regenerated
        "method": dict(TINY_SIMCLR),
        "data": {"clip_frames": 8, "fps": 8.0, "crop_size": 32, "sample_rate": 8000, "num_workers": 0},
        "train": {"epochs": 1, "batch_size": 4, "precision": "fp32", "num_threads": 1},
    }
    path = tmp_path / "simclr_world.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(path), "--data", str(tiny_world), "--out", str(out), "--quiet",
                 "--tasks", "knn,retrieval,sound"]) == 0
    printed = capsys.readouterr().out
    assert "[glocal demo] skipping sound: task 'sound' needs ['audio']" in printed
    report = json.loads((out / "results.json").read_text())
    assert set(report["skipped"]) == {"sound"}
    metrics = set(report["results"]["checkpoint"])
    assert "knn/top1" in metrics and "knn/top1" in report["results"]["random_init"]
    # the demo table's retrieval cut-offs: R@1/5/10 only (R@20/50 saturate on the demo world)
    assert "retrieval/R@1" in metrics and not {"retrieval/R@20", "retrieval/R@50"} & metrics
    assert metrics <= {"knn/top1", "retrieval/R@1", "retrieval/R@5", "retrieval/R@10"}
    md = (out / "results.md").read_text()
    assert "| knn | top1 |" in md and "skipped `sound`" in md and "(simclr)" in md
    # the report in the run folder: table vs random init, the run's curves, a note for the contact sheets
    report = (out / "report.md").read_text()
    assert "| knn | top1 |" in report and "skipped `sound`" in report and (out / "curves.png").is_file()
    assert "no contact sheets: method 'simclr' has no audio encoder" in report
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "[glocal demo] report ->" in printed
    assert main(["demo", "--config", str(path), "--data", str(tiny_world), "--out", str(out), "--quiet",
                 "--tasks", "knn,lipreading"]) == 2  # unknown task: refused before any work


def test_results_markdown_keep_and_the_demo_rows():
    from glocal.demo import demo_row

    flat = {"checkpoint": {"linear/top1": 0.5, "localization/cIoU@0.5": 0.1, "localization/pointing": 0.4,
                           "localization/AUC_t0.3": 0.2, "localization/oracle_pointing": 1.0,
                           "localization/centre_mass_share": 0.1}}
    table = results_markdown(flat, keep=demo_row)
    rows = [line.split(" | ")[1] for line in table.splitlines()[2:]]
    assert rows == ["top1", "cIoU@0.5", "pointing", "oracle_pointing"]
    assert "AUC_t0.3" in results_markdown(flat)  # everything without a filter
