"""The ``glocal`` command line: synth, pretrain, config show, eval, embed, search, localize, export, scan,
prepare, demo, study, report.

User-input problems (:class:`~glocal.errors.GlocalError`) are printed as one line
``glocal: error: ...`` with exit status 2; anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import GlocalError, one_line
from .eval.cli import add_arguments as add_eval_arguments

__all__ = ["main"]


def _cmd_synth(args: argparse.Namespace) -> int:
    from .config import apply_overrides, build
    from .data.synth import WorldConfig, generate_world

    raw = apply_overrides({}, args.overrides)
    cfg = build(WorldConfig, raw)
    summary = generate_world(cfg, args.out, workers=args.workers, progress=not args.quiet, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from .train.config import load_pretrain_config
    from .train.engine import pretrain

    cfg = load_pretrain_config(args.config, args.overrides)
    if args.quiet:
        cfg.train.progress = False
    summary = pretrain(cfg, resume=args.resume, overwrite=args.overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        print(json.dumps(summary, indent=2))
    if summary.get("stopped_by") == "SIGINT":
        return 130  # Ctrl-C: checkpoint saved, conventional interrupted status
    return 0  # finished, or preempted by SIGTERM with a checkpoint saved: a clean exit


def _cmd_config_show(args: argparse.Namespace) -> int:
    from .train.show import render_text, show_config

    shown = show_config(args.config, args.overrides or [])
    print(json.dumps(shown, indent=2, default=str) if args.json else render_text(shown))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .train.plot import plot_run

    path = plot_run(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0


def _report(results: object, checkpoint: str | Path, folder: Path, data: str | None, data_format: str | None,
            what: str) -> int:
    """Write the results report (``glocal eval --report``, ``glocal demo``); 0, or 1 with a one-line
    message when it cannot be written (the results are on disk already)."""
    from .api.report import write_results_report

    try:
        paths = write_results_report(results, checkpoint, folder, data=data, data_format=data_format)
    except GlocalError as exc:
        print(f"{what} report not written: {one_line(exc)} (the results are written)", file=sys.stderr)
        return 1
    notes = "".join(f"\n  note: {n}" for n in paths["notes"])
    print(f"{what} report -> {paths['md']} and {paths['html']}{notes}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .eval.cli import run

    def report(results: object, out: Path, folder: Path) -> int:
        return _report(results, args.checkpoint, folder, args.data, args.data_format, "glocal eval:")

    return run(args, report)


def _cmd_embed(args: argparse.Namespace) -> int:
    from .api.embed import EmbedOptions, embed_dataset
    from .config import apply_overrides, build

    opts = build(EmbedOptions, apply_overrides({}, args.overrides or []))
    report = embed_dataset(args.data, args.checkpoint, args.out, opts, progress=not args.quiet,
                           overwrite=args.overwrite)
    dims = ", ".join(f"{k} {report['embedded']}x{d}" for k, d in report["dims"].items())
    print(f"glocal embed: {report['embedded']} of {report['files']} files embedded ({dims}), "
          f"{report['skipped']} skipped, {report['resumed_chunks']} of {report['chunks']} chunks resumed "
          f"-> {args.out} (report.json, index.csv)")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from .api.search import SearchOptions, run_search
    from .config import apply_overrides, build

    words = list(args.overrides or [])
    if args.k is not None:
        words.append(f"k={args.k}")
    if args.modality is not None:
        words.append(f"modality={args.modality}")
    opts = build(SearchOptions, apply_overrides({}, words))
    result = run_search(args.index, args.query, opts, checkpoint=args.checkpoint, out=args.out)
    kind = "cross-modal " if result.cross_modal else ""
    print(f"glocal search: {result.query_modality} query {Path(result.query).name} -> {len(result.hits)} nearest "
          f"{result.target} rows ({kind}{result.space} space, {result.method}, {result.backend})")
    print(result.table())
    if args.out:
        print(f"-> {args.out} (results.json, results.csv, sheet.png, sheet.html)")
    return 0


def _cmd_localize(args: argparse.Namespace) -> int:
    from .api.localize import LocalizeOptions, localize_files
    from .config import apply_overrides, build

    opts = build(LocalizeOptions, apply_overrides({}, args.overrides or []))
    report = localize_files(args.video, args.checkpoint, args.out, opts)
    hits = [t.get("peak_in_box") for v in report["videos"] for t in v["tiles"] if "peak_in_box" in t]
    gt = f", map peak in the ground-truth box on {sum(hits)} of {len(hits)} sheet frames" if hits else ""
    print(f"glocal localize: {len(report['videos'])} videos drawn, {len(report['skipped'])} skipped{gt} "
          f"-> {args.out} (.mp4 + .png per video, report.json)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .api.export import export_encoders

    info = export_encoders(args.checkpoint, args.format, args.out)
    folder = Path(info["out"]).parent
    done = [m for m in info["modalities"] if m in info["files"] or "weights" in info["files"]]
    print(f"glocal export: {info['method']} encoders ({', '.join(done)}) as {args.format} -> "
          f"{', '.join(info['files'].values())} in {folder}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(out_dir=args.out, data_dir=args.data, config=args.config, overrides=args.overrides,
                      progress=not args.quiet, tasks=args.tasks)
    evaluation = {**result["evaluation"], "skipped": result["skipped"]}  # + the tasks the demo left out up front
    return _report(evaluation, result["checkpoint"], Path(args.out), args.data, None, "[glocal demo]")


def _cmd_study(args: argparse.Namespace) -> int:
    from .study.config import load_study_config
    from .study.grid import cell_config, default_parallel, describe_plan, expand
    from .study.runner import StudyRunner

    cfg = load_study_config(args.config, args.overrides or [])
    for cell in expand(cfg):  # every cell's pretraining config resolves, before anything runs
        cell_config(cfg, cell, args.out)
    parallel = args.parallel or default_parallel(cfg)
    if len(cfg.seeds) < 3:
        print(f"glocal study: warning: {len(cfg.seeds)} seed(s), fewer than 3: too few to test a difference "
              f"(a claim with fewer than min_seeds={cfg.min_seeds} paired seeds is inconclusive)", file=sys.stderr)
    print(describe_plan(cfg, parallel))
    if args.dry_run:
        return 0
    summary = StudyRunner(cfg, args.out, parallel=parallel, config_path=args.config).run()
    if summary["stopped_by"]:
        return 130 if summary["stopped_by"] == "SIGINT" else 143
    return 0 if summary["failed"] == 0 and summary["refused"] == 0 else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from .study.report import write_study_report

    study_dir = args.study_dir
    if args.archive:
        from .study.archive import archive_study

        n = archive_study(study_dir, args.archive)
        print(f"glocal report: archived {n['cells']} cells ({n['files']} files, {n['bytes'] / 2**20:.1f} MB; "
              f"{n['skipped']} checkpoints / locks / large files left out) -> {args.archive}")
        study_dir = args.archive
    md, page = write_study_report(study_dir, args.out)
    print(f"glocal report: wrote {md} and {page}")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .data.scan import scan_dataset

    kwargs = {}
    if args.manifest:
        kwargs["manifest"] = args.manifest
    if args.split_file:
        kwargs["split_file"] = args.split_file
    if args.fold:
        kwargs["fold"] = args.fold
    report = scan_dataset(
        args.data, args.format, workers=args.workers, min_duration=args.min_duration,
        require_audio=args.require_audio, audio_only=args.audio_only, out=args.out, **kwargs,
    )
    print(report.table())
    if args.out:
        print(f"deny list: {args.out} ({len(report.deny)} files); pass it as data.deny_list={args.out}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .config import apply_overrides
    from .data.prepare import params_for, prepare_dataset

    data_cfg = None
    if args.config:
        from .train.config import load_pretrain_config

        data_cfg = load_pretrain_config(args.config, []).data
    params = params_for(data_cfg, apply_overrides({}, args.overrides))
    report = prepare_dataset(args.data, args.out, params, workers=args.workers, progress=not args.quiet)
    print(report.summary())
    return 0


#: kept in sync with :data:`glocal.demo.DEMO_TASKS` (checked by the tests; the parser imports no torch)
DEMO_TASK_NAMES = ("linear", "retrieval", "localization", "sound")


def _csv_tasks(text: str) -> list[str]:
    """``--tasks``: comma-separated task names (checked against the registry by the demo)."""
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    if not tasks:
        raise argparse.ArgumentTypeError("expected comma-separated task names, e.g. linear,retrieval")
    return tasks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glocal",
        description="Self-supervised global-local audio-visual video representation learning.",
    )
    parser.add_argument("--version", action="version", version=f"glocal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the built-in audio-visual world (mp4 videos + ground truth)",
                       description="Generate the built-in audio-visual world. Options are WorldConfig keys, "
                                   "e.g. `glocal synth --out data/world num_videos=300 seed=1`.")
    p.add_argument("--out", default="data/world", help="output folder (default: data/world)")
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing world with another config")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="WorldConfig overrides")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("pretrain", help="self-supervised pretraining of a method (GLCM, ...) from a YAML config",
                       description="Pretrain a method. Config keys can be overridden: train.epochs=5 data.root=DIR. "
                                   "Runs unchanged under `torchrun --nproc_per_node N` (train.batch_size is per "
                                   "rank; see docs/distributed.md). SIGTERM/SIGINT save a checkpoint and exit.")
    p.add_argument("--config", help="YAML config, e.g. configs/glcm.yaml")
    p.add_argument("--resume", help="'auto' (newest valid checkpoint in train.out_dir) or a checkpoint path")
    p.add_argument("--overwrite", action="store_true",
                   help="start a fresh run in a train.out_dir that holds another run: its checkpoints, best.pt "
                        "and logs are deleted first (without it such a start is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (anywhere on the line)")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("config", help="inspect a pretraining config: `glocal config show CONFIG` prints it resolved "
                                      "with the dataset it would read",
                       description="Inspect a pretraining config without training.")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION")
    p.set_defaults(func=lambda a, p=p: p.print_help() or 0)
    q = config_sub.add_parser("show", help="the resolved config (defaults filled in, # set / # override marked) "
                                           "and the dataset it reads: layout, counts, splits, audio, clip geometry",
                              description="Print CONFIG resolved as `glocal pretrain` would load it (every field; "
                                          "those that differ from their defaults end in `# set`, those from the "
                                          "command line in `# override`, with the default named), then the dataset "
                                          "of data.root: layout, files, classes, per-split counts, the streams of a "
                                          "few probed files (audio or not), the views of one training sample, a "
                                          "`glocal prepare` record and the warnings pretraining would print. Trains "
                                          "nothing and writes nothing.")
    q.add_argument("config", metavar="CONFIG", help="YAML config, e.g. configs/glcm.yaml")
    q.add_argument("--json", action="store_true", help="print the same as JSON (config, marks, dataset)")
    q.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as for `glocal pretrain`")
    q.set_defaults(func=_cmd_config_show)

    p = sub.add_parser("plot", help="render a pretraining run's curves (loss terms, lr, throughput, kNN) to PNG",
                       description="Plot log.csv / epochs.csv of a `glocal pretrain` run folder to a PNG.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (train.out_dir)")
    p.add_argument("--out", help="PNG path (default: RUN_DIR/curves.png)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a downstream task (random init reported beside it)",
                       description="Evaluate a checkpoint (and a random-init twin) on one protocol or `all`; "
                                   "writes a JSON report and prints a one-line summary. See docs/evaluation.md.")
    add_eval_arguments(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("embed", help="embeddings of every file of a folder / manifest (.npy + index CSV), resumable",
                       description="Embed every video (or sound) of DATA with a checkpoint's encoders: OUT/video.npy "
                                   "and/or OUT/audio.npy (float32, N x D), OUT/index.csv (row,path,label,label_index,"
                                   "split; index.parquet too with pyarrow) and OUT/report.json (skipped files with "
                                   "reasons). Rerunning resumes from the finished chunks. Options as key=value "
                                   "(glocal.api.embed.EmbedOptions; defaults and bounds in docs/api.md): modality, "
                                   "clips_per_video, pool, space, chunk_size, batch_size, num_workers, format, split, device.")
    p.add_argument("data", metavar="DATA", help="dataset folder (any documented layout; a plain folder of videos "
                                                "is read as 'unlabeled') or manifest CSV")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `glocal pretrain`")
    p.add_argument("--out", required=True, help="output folder (created; checked writable before any work)")
    p.add_argument("--overwrite", action="store_true",
                   help="OUT holds embeddings made with other settings: drop them and start again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="embed options (see above)")
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("search", help="nearest videos of an embed index for a video or a sound (cross-modal in the "
                                      "joint space): table + PNG/HTML sheet",
                       description="Embed --query with the index's checkpoint and settings and rank the rows of "
                                   "--index (the --out folder of `glocal embed`) by cosine similarity: exact, in "
                                   "torch chunks, or with faiss (backend=faiss; pip install 'glocal[search]'). A sound "
                                   "against a video index is cross-modal and needs an index embedded with space=joint "
                                   "modality=both. Prints rank, score, path, label; with --out writes results.json, "
                                   "results.csv, sheet.png and sheet.html. Options as key=value "
                                   "(glocal.api.search.SearchOptions; defaults in docs/api.md): k, modality, target, "
                                   "backend, chunk_size, tile, device.")
    p.add_argument("--index", required=True, help="a `glocal embed` output folder")
    p.add_argument("--query", required=True, help="a video or sound file")
    p.add_argument("-k", type=int, default=None, help="hits (default 10; same as k=N)")
    p.add_argument("--modality", choices=["auto", "video", "audio"], default=None,
                   help="the query's modality (default auto: sound files -> audio, else video)")
    p.add_argument("--checkpoint", help="checkpoint to embed the query with (default: the index's, from settings.json)")
    p.add_argument("--out", help="folder for results.json/.csv, sheet.png and sheet.html (checked writable first)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="search options (see above)")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("localize", help="draw the audio-visual heat map over videos: overlay .mp4 (with the audio) "
                                        "+ PNG contact sheet (with the ground truth when annotated)",
                       description="For VIDEO (or every video under DIR) write OUT/<name>.mp4 (the heat map over every "
                                   "frame, original audio as AAC), OUT/<name>.png (a contact sheet of `frames` frames "
                                   "with the map, its peak and, where annotations.json has them, the source box / mask "
                                   "contour) and OUT/report.json. Needs a method with audio. Options as key=value "
                                   "(glocal.api.localize.LocalizeOptions; defaults and bounds in docs/api.md): frames, "
                                   "alpha, colormap, clips_per_video, tile, gt, video, device.")
    p.add_argument("video", metavar="VIDEO|DIR", help="a video file or a folder of videos")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `glocal pretrain`")
    p.add_argument("--out", required=True, help="output folder (created; checked writable before any work)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="localize options (see above)")
    p.set_defaults(func=_cmd_localize)

    p = sub.add_parser("export", help="the encoders alone as torchscript, safetensors or onnx (+ a JSON of their "
                                      "preprocessing), checked against eager",
                       description="Export a checkpoint's encoders (video; audio where the method has one), each "
                                   "mapping the preprocessed input to the global embedding as glocal.load(CKPT)."
                                   "embed_video / embed_audio do for tensors. Writes OUT.video.pt / OUT.audio.pt "
                                   "(torchscript), OUT.safetensors or OUT.video.onnx / OUT.audio.onnx, and OUT.json "
                                   "(config, preprocessing, embedding sizes). TorchScript and ONNX (with "
                                   "onnxruntime) are compared with eager on a sample first; the difference and "
                                   "tolerance are printed. safetensors / onnx need pip install 'glocal[export]'. "
                                   "See docs/api.md.")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `glocal pretrain`")
    p.add_argument("--format", required=True, choices=["torchscript", "safetensors", "onnx"])
    p.add_argument("--out", required=True, help="output path stem (its folder is created and checked writable first)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("scan", help="check every video of a dataset (decodable, audio, duration), write a deny list",
                       description="Validate a dataset up front, in parallel: decodable video, audio present and not "
                                   "digital silence, duration, fps. Prints a summary; exit status 0 even when "
                                   "problems are found (they are reported), 2 on usage errors.")
    p.add_argument("data", metavar="DATA", help="dataset folder or manifest/Kinetics CSV file")
    p.add_argument("--format", default="auto",
                   choices=["auto", "csv", "folder", "ucf101", "hmdb51", "kinetics", "unlabeled"],
                   help="dataset layout (default: auto-detect)")
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2; 0 = in-process)")
    p.add_argument("--out", help="write the deny list (paths of files with errors, with reasons) here")
    p.add_argument("--min-duration", type=float, default=0.0, metavar="S",
                   help="files shorter than S seconds are errors (default: 0)")
    p.add_argument("--require-audio", action="store_true",
                   help="a missing or silent audio track is an error (default: a warning)")
    p.add_argument("--audio-only", action="store_true", help="a sound dataset: check audio only, no video expected")
    p.add_argument("--manifest", help="manifest file name inside DATA (default: manifest.csv)")
    p.add_argument("--split-file", help="UCF101/HMDB51 split-file folder when it is not inside DATA")
    p.add_argument("--fold", type=int, choices=[1, 2, 3], help="UCF101/HMDB51 official split (default: 1)")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("prepare", help="re-encode a dataset once to its training geometry (small, short keyframe "
                                       "interval, mono audio): same layout, much cheaper to decode",
                       description="Re-encode every video of DATA into --out (same layout, manifests and annotations "
                                   "copied) at the training geometry: shorter side, frame-rate cap, keyframe "
                                   "interval, yuv420p MPEG-4 (codec=h264: H.264), mono audio as 16-bit PCM beside each "
                                   "video, NAME.EXT.audio.wav (audio=aac: AAC inside). Defaults come from --config's data "
                                   "section (else those of glocal.data.reencode.EncodeParams; docs/data_formats.md). "
                                   "Resumable; broken files are reported and left out. Options as key=value: short_side, "
                                   "max_fps, keyframe_s, sample_rate, codec, qscale, crf, preset, tune, audio_bitrate, "
                                   "audio.")
    p.add_argument("data", metavar="DATA", help="dataset folder (any layout) or its manifest file")
    p.add_argument("--out", required=True, help="output folder (created; a second run resumes)")
    p.add_argument("--config", help="pretraining config whose data section sets the defaults")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel worker processes (default: the CPU count; 0 = in-process)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="preparation parameters, e.g. short_side=160")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("demo", help="generate the world, pretrain GLCM (or --config's method), evaluate vs random "
                                    "init, print the table, write report.md + report.html",
                       description="End-to-end demo (about 10 minutes on 2 CPU cores). The run folder gets "
                                   "results.json, results.md and the report (report.md + a self-contained "
                                   "report.html: table vs random init, training curves, contact sheets, retrieval).")
    p.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    p.add_argument("--data", default="data/world", help="world folder (default: data/world)")
    p.add_argument("--config", default=None,
                   help="pretraining config with a `world:` section (default: configs/demo.yaml; "
                        "per-method recipes: configs/world/<method>.yaml)")
    p.add_argument("--tasks", type=_csv_tasks, default=None,
                   help="comma-separated evaluation tasks (default: " + ",".join(DEMO_TASK_NAMES) + "); tasks the "
                        "method cannot run (a modality or hook it lacks) are skipped with a note")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="pretraining config overrides")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("study", help="a grid of pretraining + evaluation runs (arm x dataset x seed): resumable, "
                                     "parallel, within a CPU budget",
                       description="Run every cell (dataset x arm x seed) of the study CONFIG (docs/study.md; e.g. "
                                   "configs/study/claims.yaml) as `glocal pretrain` + `glocal eval all` subprocesses "
                                   "into OUT/cells/<dataset>/<arm>/seed<k>/ (config.yaml, pretrain/, logs, eval.json, "
                                   "done.json with the CPU time). Finished cells are skipped, a killed study "
                                   "continues where it stopped (checkpoint resume), a failing cell is reported and "
                                   "the others go on; cells that cannot fit the budget are not started. Then "
                                   "`glocal report OUT`.")
    p.add_argument("config", metavar="CONFIG", help="study YAML, e.g. configs/study/claims.yaml")
    p.add_argument("--out", required=True, help="study folder (created; a second run resumes)")
    p.add_argument("--parallel", type=int, help="cells at once (default: the config's parallel, else usable cores "
                                                "// threads_per_cell)")
    p.add_argument("--dry-run", action="store_true", help="print the grid and its estimated CPU hours; run nothing")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="study config overrides, e.g. seeds=[0,1]")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("report", help="report.md + self-contained report.html of a `glocal study` folder: tables, "
                                      "paired tests, verdict per claim, curves, CPU time",
                       description="Summarise the finished cells of STUDY_DIR: per claim its verdict (holds / does "
                                   "not hold / inconclusive) with the paired differences over seeds and their "
                                   "p-values, per dataset one table per task metric (mean ± std over seeds, each arm "
                                   "and its random-init twin), training curves per arm, CPU time per cell and in "
                                   "all. The HTML embeds its pictures (no scripts, no external files).")
    p.add_argument("study_dir", metavar="STUDY_DIR", help="the --out folder of `glocal study`")
    p.add_argument("--out", help="report folder (default: STUDY_DIR, or the --archive folder)")
    p.add_argument("--archive", metavar="DIR", help="first copy the study without its checkpoints into DIR (a new "
                                                   "folder: configs, results, logs, curves, contact sheets; small "
                                                   "enough to commit or share) and report from the copy")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` overrides may follow options (`--resume auto train.epochs=5`): argparse gives its
    # nargs="*" positional only the words before the first option, the rest come back here
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides or []) + extra
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GlocalError as exc:
        print(f"glocal: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glocal: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
