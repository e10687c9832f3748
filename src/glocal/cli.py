"""The ``glocal`` command line: synth, pretrain, eval, demo.

User-input problems (:class:`~glocal.errors.GlocalError`) are printed as one line
``glocal: error: ...`` with exit status 2; anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import GlocalError

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
    summary = pretrain(cfg, resume=args.resume)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .eval.suite import TASKS, evaluate, results_markdown

    tasks = None if args.task == "all" else [args.task]
    if tasks and tasks[0] not in TASKS:
        raise GlocalError(f"unknown eval task '{args.task}'; choose one of {sorted(TASKS) + ['all']}")
    overrides = {}
    if args.clips_per_video:
        overrides["clips_per_video"] = args.clips_per_video
    results = evaluate(
        args.checkpoint, args.data, tasks, device=args.device, with_random=not args.no_random,
        progress=not args.quiet, out_json=args.out, **overrides,
    )
    print(results_markdown(results))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out_dir=args.out, data_dir=args.data, config=args.config, overrides=args.overrides,
             progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glocal",
        description="Self-supervised global-local audio-visual video representation learning.",
    )
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
                       description="Pretrain a method. Config keys can be overridden: train.epochs=5 data.root=DIR")
    p.add_argument("--config", help="YAML config, e.g. configs/glcm.yaml")
    p.add_argument("--resume", help="'auto' (newest valid checkpoint in train.out_dir) or a checkpoint path")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a downstream task (random init reported beside it)",
                       description="Evaluate a checkpoint. TASK: linear, retrieval, localization, sound, or all.")
    p.add_argument("task", help="linear | retrieval | localization | sound | all")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `glocal pretrain`")
    p.add_argument("--data", help="dataset folder or manifest (default: the pretraining data root)")
    p.add_argument("--out", help="write results JSON here")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--clips-per-video", type=int, default=0, help="uniform clips averaged per video")
    p.add_argument("--no-random", action="store_true", help="skip the random-init baseline")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("demo", help="generate the world, pretrain GLCM, evaluate vs random init, print the table",
                       description="End-to-end demo (about 10 minutes on 2 CPU cores).")
    p.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    p.add_argument("--data", default="data/world", help="world folder (default: data/world)")
    p.add_argument("--config", default=None, help="pretraining config (default: the packaged demo config)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="pretraining config overrides")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GlocalError as exc:
        print(f"glocal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glocal: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
