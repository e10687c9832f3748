"""``glocal demo``: generate the world, pretrain a method (GLCM by default), evaluate against random
init, print a table.

The demo reports :data:`DEMO_TASKS` (or the ``tasks`` it is given); tasks the configured method
cannot run (a modality it does not use, e.g. ``sound`` for a video-only method, or a hook it
does not implement, e.g. ``localization`` without audio-visual maps) are skipped with a printed
note and listed under ``skipped`` in ``results.json`` / ``results.md``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Sequence

import torch

from .errors import ConfigError

__all__ = ["DEMO_TASKS", "default_demo_config", "check_demo_tasks", "demo_row", "run_demo"]

#: the tasks the demo table reports (``glocal eval all`` runs every task)
DEMO_TASKS = ["linear", "retrieval", "localization", "sound"]
#: retrieval cut-offs of the demo table: R@20 / R@50 saturate on the demo's test split (50 of its
#: 300 videos per class: random features already reach ~0.97 / ~1.0); `glocal eval` reports them
DEMO_RETRIEVAL_KS = (1, 5, 10)


def demo_row(key: str) -> bool:
    """Whether the ``"task/metric"`` row goes into results.md (localisation: its short list, with the
    oracle; results.json keeps every metric)."""
    from .eval.localization import SUMMARY_KEYS

    task, _, metric = key.partition("/")
    return task != "localization" or metric in SUMMARY_KEYS


def default_demo_config() -> Path:
    """``configs/demo.yaml`` of the source tree (the demo is run from a checkout)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        path = base / "configs" / "demo.yaml"
        if path.is_file():
            return path
    raise ConfigError("configs/demo.yaml not found; run the demo from the glocal checkout or pass --config")


def check_demo_tasks(tasks: Sequence[str], method_name: str) -> tuple[list[str], dict[str, str]]:
    """Split ``tasks`` into those the method's modalities allow and ``{task: reason}`` for the
    others, before any work is done. Unknown task names, or no task left, are a
    :class:`ConfigError`. (Tasks needing a hook the method lacks are found at evaluation.)"""
    from .eval.suite import TASKS, missing_modalities
    from .methods import method_class

    tasks = list(dict.fromkeys(tasks))
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"unknown demo task(s) {unknown}; choose from {list(TASKS)}")
    if not tasks:
        raise ConfigError("no demo task given")
    modalities = method_class(method_name).modalities
    keep: list[str] = []
    skipped: dict[str, str] = {}
    for t in tasks:
        reason = missing_modalities(t, method_name, modalities)
        if reason:
            skipped[t] = reason
        else:
            keep.append(t)
    if not keep:
        raise ConfigError(f"none of the demo tasks {tasks} applies to method '{method_name}': "
                          + "; ".join(skipped.values()))
    return keep, skipped


def run_demo(
    out_dir: str | Path = "runs/demo",
    data_dir: str | Path = "data/world",
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    tasks: Sequence[str] | None = None,
) -> dict:
    """The whole demo; writes ``results.json`` and ``results.md`` under ``out_dir``. (``glocal demo``
    then writes the report there with :func:`glocal.api.report.write_results_report`, given the
    returned dict's ``evaluation``: demo and api are peers, so the command line joins them.)

    ``tasks``: evaluation tasks (default :data:`DEMO_TASKS`); those the method cannot run are
    skipped with a printed note (checked before pretraining where the modalities tell, else at
    evaluation) and listed under ``skipped``.
    """
    from .config import apply_overrides, load_yaml
    from .data.synth import WorldConfig, generate_world
    from .eval.context import EvalOptions
    from .eval.suite import results_markdown, run_evaluation
    from .train.config import config_from_dict
    from .train.engine import pretrain

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = Path(config) if config else default_demo_config()
    raw = load_yaml(cfg_path)
    raw = apply_overrides(raw, [*overrides, f"data.root={data_dir}", f"train.out_dir={out / 'pretrain'}"])
    cfg = config_from_dict(raw)
    cfg.train.progress = progress
    eval_tasks, skipped = check_demo_tasks(DEMO_TASKS if tasks is None else tasks, cfg.method.name)
    for name, reason in skipped.items():
        print(f"[glocal demo] skipping {name}: {reason}")
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    print(f"[glocal demo] 1/3 generating the audio-visual world in {data_dir}")
    world = generate_world(cfg.world or WorldConfig(), data_dir, progress=progress)  # built and checked with the config
    timings["synth_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print(f"[glocal demo] 2/3 pretraining {cfg.method.name} ({cfg.train.epochs} epochs)")
    summary = pretrain(cfg)
    timings["pretrain_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("[glocal demo] 3/3 evaluating the pretrained encoders and a random-init twin")
    evaluation = run_evaluation(summary["checkpoint"], data_dir, eval_tasks, progress=progress,
                                skip_unsupported=True, options=EvalOptions(retrieval_ks=DEMO_RETRIEVAL_KS))
    results = evaluation.flat()
    timings["eval_s"] = time.perf_counter() - t0
    for name, reason in evaluation.skipped.items():
        if name not in skipped:
            skipped[name] = reason
            print(f"[glocal demo] skipped {name}: {reason}")

    table = results_markdown(results, keep=demo_row)
    skipped_md = "".join(f"\n- skipped `{k}`: {v}" for k, v in skipped.items()) + ("\n" if skipped else "")
    report = {
        "results": results,
        "skipped": skipped,
        "timings": timings,
        "checkpoint": summary["checkpoint"],
        "evaluation": evaluation.to_dict(),  # per-task details (folds, sizes) for the report
        "world": {k: v for k, v in world.items() if k != "config"} if isinstance(world, dict) else str(world),
        "config": cfg.to_dict(),
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform()},
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "results.md").write_text(
        f"# glocal demo results ({cfg.method.name})\n\n{table}\n{skipped_md}\nTimings (s): "
        + ", ".join(f"{k}={v:.0f}" for k, v in timings.items()) + "\n"
    )
    print("\n" + table + "\n")
    print(f"[glocal demo] results written to {out / 'results.json'} and {out / 'results.md'}")
    return report
