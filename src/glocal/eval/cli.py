"""The ``glocal eval TASK`` subcommand: arguments and entry point (imports torch only when run).

``glocal eval TASK --checkpoint CKPT [--data DATA] [options]`` runs one protocol (or ``all``) for
the checkpoint and its random-init twin, writes the JSON report (default
``<checkpoint folder>/eval/<TASK>.json``) and prints a one-line summary (``all``: a table too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ..data.formats import FORMATS

__all__ = ["TASK_NAMES", "add_arguments", "run"]

#: kept in sync with :data:`glocal.eval.suite.TASKS` (checked by the tests)
TASK_NAMES = ("linear", "knn", "finetune", "retrieval", "sound", "localization", "event", "temporal", "deepfake",
              "tal", "fingerprint")


def _csv(kind: type) -> Callable[[str], tuple]:
    """An argparse ``type``: comma-separated values converted with ``kind``."""

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values: {exc}") from None
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``eval`` arguments to its subparser."""
    p.add_argument("task", metavar="TASK", help=" | ".join(TASK_NAMES) + " | all")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `glocal pretrain`")
    p.add_argument("--data", help="dataset folder or manifest (default: the pretraining data root); "
                                  "`sound` also takes an ESC-50 folder / CSV (filename,fold,target,category)")
    p.add_argument("--format", dest="data_format", choices=["auto", *FORMATS],
                   help="layout of --data (docs/data_formats.md; default: the pretraining data.format "
                        "without --data, else auto)")
    p.add_argument("--deny-list", help="file written by `glocal scan`; its files are left out (default: the "
                                       "pretraining data.deny_list without --data)")
    p.add_argument("--on-error", choices=["skip", "raise"], default="skip",
                   help="files a task cannot use (undecodable, or without the audio track it reads): leave them "
                        "out, counted and named in the report (skip, default), or stop at the first (raise)")
    p.add_argument("--tasks", type=_csv(str), help="with TASK=all: the tasks to run, e.g. linear,event")
    p.add_argument("--out", help="results JSON (default: <checkpoint folder>/eval/<TASK>.json)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, help="seed of every random draw (default: the pretraining seed)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is much faster "
                                               "for tiny models on a busy machine)")
    p.add_argument("--no-random", action="store_true", help="skip the random-init baseline")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--full-table", action="store_true", help="print every metric, not only the headline ones")
    g = p.add_argument_group("clips")
    g.add_argument("--clips-per-video", type=int,
                   help="uniform clips averaged per video (frozen features; default 4)")
    g.add_argument("--batch-size", type=int, help="clips per forward pass")
    g.add_argument("--num-workers", type=int, help="data loader workers")
    g = p.add_argument_group("protocol options (see docs/evaluation.md)")
    g.add_argument("--classifier", choices=["logreg", "svm"], help="linear / sound: logistic regression or linear SVM")
    g.add_argument("--video-pool", choices=["mean", "max"],
                   help="linear / knn / retrieval: pool the video backbone map over positions by mean (default, "
                        "the spec) or max (keeps small objects)")
    g.add_argument("--k", type=int, help="knn: neighbours (default 20)")
    g.add_argument("--ks", type=_csv(int), help="retrieval: cut-offs (default 1,5,10,20,50)")
    g.add_argument("--faiss", choices=["auto", "on", "off"], help="retrieval: search with faiss (default auto)")
    g.add_argument("--finetune-epochs", type=int, help="finetune: epochs (default 3)")
    g.add_argument("--finetune-lr", type=float, help="finetune: Adam learning rate (default 1e-4)")
    g.add_argument("--finetune-batch-size", type=int, help="finetune: batch size (default 8)")
    g.add_argument("--test-clips", type=int, help="finetune: clips averaged per test video (default 3)")
    g.add_argument("--audio-crops", type=int, help="sound: audio crops averaged per file (default 3)")
    g.add_argument("--box-merge", choices=["consensus", "union"], help="localization: several boxes per frame")
    g.add_argument("--segment-seconds", type=float, help="event: segment length (default 0.25; AVE: 1)")
    g.add_argument("--event-labels", choices=["binary", "class"], help="event: event/background or per class")
    g.add_argument("--head-epochs", type=int, help="temporal: head training epochs (default 60)")
    g.add_argument("--head-lr", type=float, help="temporal: head learning rate (default 1e-3)")
    g.add_argument("--tal-thresholds", type=_csv(float), help="tal: score thresholds (default 0.1,...,0.9)")
    g.add_argument("--tal-merge-gap", type=float, help="tal: merge runs separated by at most this many seconds")
    g.add_argument("--fake-manifest", help="deepfake: real/fake manifest (default fake/manifest.csv)")
    g.add_argument("--edits", type=_csv(str), help="fingerprint: edits (default crop,blur,reencode,noise,speed)")
    g.add_argument("--fingerprint-modality", choices=["auto", "video", "audio", "fused"], help="fingerprint embedding")


#: CLI argument → EvalOptions field
_OPTION_FIELDS = {
    "classifier": "classifier", "video_pool": "video_pool", "k": "knn_k", "ks": "retrieval_ks", "faiss": "faiss",
    "finetune_epochs": "finetune_epochs", "finetune_lr": "finetune_lr", "finetune_batch_size": "finetune_batch_size",
    "test_clips": "finetune_test_clips", "audio_crops": "audio_crops", "box_merge": "box_merge",
    "segment_seconds": "segment_seconds", "event_labels": "event_labels", "head_epochs": "head_epochs",
    "head_lr": "head_lr", "tal_thresholds": "tal_thresholds", "tal_merge_gap": "tal_merge_gap",
    "fake_manifest": "fake_manifest", "edits": "edits", "fingerprint_modality": "fingerprint_modality",
}


def run(args: argparse.Namespace) -> int:
    """Entry point of ``glocal eval``."""
    import torch

    from ..errors import GlocalError
    from ..runtime.rundir import check_writable
    from .context import EvalOptions
    from .suite import run_evaluation

    if args.threads is not None:
        if args.threads < 1:
            raise GlocalError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)

    if args.task == "all":
        tasks = list(args.tasks) if args.tasks else None
    else:
        if args.tasks:
            raise GlocalError("--tasks is only used with TASK=all")
        tasks = [args.task]
    options = EvalOptions(**{f: getattr(args, a) for a, f in _OPTION_FIELDS.items() if getattr(args, a) is not None})
    overrides = {k: getattr(args, k) for k in ("clips_per_video", "batch_size", "num_workers")
                 if getattr(args, k) is not None}
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "eval" / f"{args.task}.json"
    if out.is_dir():
        raise GlocalError(f"--out {out} is a folder; give the results file, e.g. --out {out / (args.task + '.json')}")
    check_writable(out.parent, "the results folder of --out")  # before minutes of work, not after
    every = args.task == "all"  # each finished task's result is on disk at once; a failing one is reported
    report = run_evaluation(args.checkpoint, args.data, tasks, device=args.device, with_random=not args.no_random,
                            progress=not args.quiet, options=options, seed=args.seed,
                            data_format=args.data_format, deny_list=args.deny_list, keep_going=every,
                            on_error=args.on_error,
                            on_result=(lambda r: r.write_json(out)) if every else None, **overrides)
    report.write_json(out)
    if args.task == "all" or args.full_table:
        print(report.table(full=args.full_table))
    print(f"glocal eval {args.task}: {report.summary()} -> {out}")
    for name, reason in report.failed.items():
        print(f"glocal eval: task '{name}' failed ({reason}); the other tasks' results are in {out}", file=sys.stderr)
    return 1 if report.failed else 0
