"""``glocal demo``: generate the world, pretrain GLCM, evaluate against random init, print a table."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Sequence

import torch

from .errors import ConfigError

__all__ = ["DEMO_TASKS", "default_demo_config", "run_demo"]

#: the tasks the demo table reports (``glocal eval all`` runs every task)
DEMO_TASKS = ["linear", "retrieval", "localization", "sound"]


def default_demo_config() -> Path:
    """``configs/demo.yaml`` of the source tree (the demo is run from a checkout)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        path = base / "configs" / "demo.yaml"
        if path.is_file():
            return path
    raise ConfigError("configs/demo.yaml not found; run the demo from the glocal checkout or pass --config")


def run_demo(
    out_dir: str | Path = "runs/demo",
    data_dir: str | Path = "data/world",
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    tasks: Sequence[str] | None = None,
) -> dict:
    """The whole demo; writes ``results.json`` and ``results.md`` under ``out_dir``."""
    from .config import apply_overrides, build, load_yaml
    from .data.synth import WorldConfig, generate_world
    from .eval.suite import evaluate, results_markdown
    from .train.config import config_from_dict
    from .train.engine import pretrain

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = Path(config) if config else default_demo_config()
    raw = load_yaml(cfg_path)
    raw = apply_overrides(raw, [*overrides, f"data.root={data_dir}", f"train.out_dir={out / 'pretrain'}"])
    cfg = config_from_dict(raw)
    cfg.train.progress = progress
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    print(f"[glocal demo] 1/3 generating the audio-visual world in {data_dir}")
    world = generate_world(build(WorldConfig, cfg.world or {}, prefix="world."), data_dir, progress=progress)
    timings["synth_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print(f"[glocal demo] 2/3 pretraining {cfg.method.name} ({cfg.train.epochs} epochs)")
    summary = pretrain(cfg)
    timings["pretrain_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("[glocal demo] 3/3 evaluating the pretrained encoders and a random-init twin")
    results = evaluate(summary["checkpoint"], data_dir, list(tasks or DEMO_TASKS), progress=progress)
    timings["eval_s"] = time.perf_counter() - t0

    table = results_markdown(results)
    report = {
        "results": results,
        "timings": timings,
        "checkpoint": summary["checkpoint"],
        "world": {k: v for k, v in world.items() if k != "config"} if isinstance(world, dict) else str(world),
        "config": cfg.to_dict(),
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform()},
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "results.md").write_text(
        f"# glocal demo results\n\n{table}\n\nTimings (s): "
        + ", ".join(f"{k}={v:.0f}" for k, v in timings.items()) + "\n"
    )
    print("\n" + table + "\n")
    print(f"[glocal demo] results written to {out / 'results.json'} and {out / 'results.md'}")
    return report
