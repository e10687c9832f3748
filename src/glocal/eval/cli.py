"""The ``glocal eval TASK`` subcommand: arguments and entry point (imports torch only when run).

``glocal eval TASK --checkpoint CKPT [--data DATA] [options] [key=value ...]`` runs one protocol
(or ``all``) for the checkpoint and its random-init twin, writes the JSON report (default
``<checkpoint folder>/eval/<TASK>.json``) and prints a one-line summary (``all``: a table too).

The protocol and loader options are the fields of :class:`~glocal.eval.context.EvalRunOptions`,
given as ``key=value`` overrides like ``glocal pretrain``'s (``clips_per_video=2 classifier=svm
retrieval_ks=[1,5]``) and built and checked by :func:`glocal.config.build`. The older flags
(``--clips-per-video 2``, ``--k 5``, ``--ks 1,5``) stay as aliases: :data:`OPTION_FLAGS` maps each
onto its field, and ``--flag V`` is ``field=V`` (a list field takes comma-separated values).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, get_origin

from ..data.formats import FORMATS

if TYPE_CHECKING:
    from .suite import EvalReport

__all__ = ["TASK_NAMES", "OPTION_FLAGS", "add_arguments", "option_overrides", "report_dir", "run"]

#: kept in sync with :data:`glocal.eval.suite.TASKS` (checked by the tests)
TASK_NAMES = ("linear", "knn", "finetune", "retrieval", "sound", "localization", "event", "temporal", "deepfake",
              "tal", "fingerprint")

#: alias flag -> :class:`~glocal.eval.context.EvalRunOptions` field (``--flag V`` is ``field=V``);
#: the fields' types, bounds and defaults are the dataclass's (docs/evaluation.md lists them)
OPTION_FLAGS = {
    "--clips-per-video": "clips_per_video", "--batch-size": "batch_size", "--num-workers": "num_workers",
    "--classifier": "classifier", "--video-pool": "video_pool", "--k": "knn_k", "--ks": "retrieval_ks",
    "--faiss": "faiss", "--finetune-epochs": "finetune_epochs", "--finetune-lr": "finetune_lr",
    "--finetune-batch-size": "finetune_batch_size", "--test-clips": "finetune_test_clips",
    "--audio-crops": "audio_crops", "--box-merge": "box_merge", "--segment-seconds": "segment_seconds",
    "--event-labels": "event_labels", "--head-epochs": "head_epochs", "--head-lr": "head_lr",
    "--tal-thresholds": "tal_thresholds", "--tal-merge-gap": "tal_merge_gap", "--fake-manifest": "fake_manifest",
    "--edits": "edits", "--fingerprint-modality": "fingerprint_modality",
}


def _csv(kind: type) -> Callable[[str], tuple]:
    """An argparse ``type``: comma-separated values converted with ``kind``."""

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values: {exc}") from None
    return parse


class _OptionFlag(argparse.Action):
    """Record ``--flag VALUE`` as ``(field, VALUE)`` in ``namespace.option_flags`` (in command-line order)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        flags = list(getattr(namespace, "option_flags", None) or [])
        flags.append((OPTION_FLAGS[str(option_string)], str(values)))
        namespace.option_flags = flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``eval`` arguments to its subparser."""
    p.add_argument("task", metavar="TASK", help=" | ".join(TASK_NAMES) + " | all")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="protocol / loader options, e.g. clips_per_video=2 classifier=svm retrieval_ks=[1,5] "
                        "(the keys, their defaults and bounds: docs/evaluation.md \"Options\")")
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
    p.add_argument("--report", nargs="?", const="", metavar="DIR",
                   help="after the evaluation, write report.md + a self-contained report.html (results vs random "
                        "init, training curves, localisation contact sheets, a retrieval example) into DIR "
                        "(default: the folder of the results JSON)")
    g = p.add_argument_group("option aliases (--flag V is key=V; a list key takes V1,V2,...)")
    for flag, key in OPTION_FLAGS.items():
        g.add_argument(flag, metavar="V", action=_OptionFlag, help=f"= {key}=V")


def option_overrides(args: argparse.Namespace) -> list[str]:
    """The ``key=value`` overrides of a parsed command line: the alias flags (as ``key=value``, a list
    field's comma-separated values as a YAML list), then the ``key=value`` words (later ones win)."""
    from ..config import field_types
    from .context import EvalRunOptions

    types = field_types(EvalRunOptions)
    out = []
    for key, text in getattr(args, "option_flags", None) or []:
        listed = get_origin(types[key]) in (tuple, list)
        out.append(f"{key}=[{text}]" if listed else f"{key}={text}")
    return out + list(getattr(args, "overrides", None) or [])


def report_dir(args: argparse.Namespace, out: Path) -> Path | None:
    """The folder of ``--report`` (None without it; bare ``--report``: the results JSON's folder)."""
    report = getattr(args, "report", None)
    if report is None:
        return None
    return Path(report) if report else out.parent


def _unswallow_override(args: argparse.Namespace) -> None:
    """``--report knn_k=5``: the bare ``--report`` took the override as its folder; give it back."""
    from ..config import field_types
    from .context import EvalRunOptions

    value = getattr(args, "report", None)
    if value and "=" in value and value.split("=", 1)[0] in field_types(EvalRunOptions):
        args.overrides = [*(getattr(args, "overrides", None) or []), value]
        args.report = ""


def run(args: argparse.Namespace, write_report: Callable[[EvalReport, Path, Path], int] | None = None) -> int:
    """Entry point of ``glocal eval``.

    ``write_report(report, results_json, folder)`` draws the ``--report`` (the command line passes
    :func:`glocal.api.report.write_results_report`'s wrapper: pictures need the API layer); its
    return value is the exit status when the evaluation itself succeeded."""
    import torch

    from ..config import apply_overrides, build
    from ..errors import GlocalError
    from ..runtime.rundir import check_writable
    from .context import EvalRunOptions
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
    _unswallow_override(args)
    chosen = build(EvalRunOptions, apply_overrides({}, option_overrides(args)))
    options, overrides = chosen.protocol_options(), chosen.loader_overrides()
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "eval" / f"{args.task}.json"
    if out.is_dir():
        raise GlocalError(f"--out {out} is a folder; give the results file, e.g. --out {out / (args.task + '.json')}")
    check_writable(out.parent, "the results folder of --out")  # before minutes of work, not after
    folder = report_dir(args, out)
    if folder is not None:
        if write_report is None:
            raise GlocalError("--report needs the `glocal` command line (glocal.cli), which draws the pictures")
        check_writable(folder, "the folder of --report")
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
    status = 1 if report.failed else 0
    if folder is not None and write_report is not None and report.tasks:
        status = max(status, write_report(report, out, folder))
    return status
