"""Fingerprint what every shipped recipe computes, to show that a refactor changed nothing.

For each config it pretrains one short epoch on a small subset (fixed seed, one thread, no
workers), then hashes the checkpoint's weights and records every logged loss, and evaluates the
checkpoint (and its random-init twin) with ``glocal eval all``. Run it before and after a change
and compare the two JSON files::

    python benchmarks/recipe_fingerprint.py --world data/fp_world --real data/rp_big --out before.json
    ... change the code ...
    python benchmarks/recipe_fingerprint.py --world data/fp_world --real data/rp_big --out after.json
    python benchmarks/recipe_fingerprint.py --compare before.json after.json

An existing ``--out`` file is resumed: configs already in it are not run again.

``--world`` is generated when missing (``glocal synth``: 120 videos of the demo world at 32 px);
``--real`` is the real-parts set (``benchmarks/data/real_parts.py``). Same machine, same torch:
the hashes are bit-exact; anything else shows up as a differing key.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
WORLD_CONFIGS = ["configs/demo.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs/world").glob("*.yaml"))]
REAL_CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs/real").glob("*.yaml"))
#: evaluation tasks per dataset kind (the world has every annotation; real parts has boxes/masks)
WORLD_TASKS = "linear,retrieval,sound,localization,event,temporal,deepfake,tal,fingerprint"
REAL_TASKS = "linear,retrieval,sound,localization"
VIDEO_ONLY = {"simclr", "moco", "vclr", "ctrlaug"}
AUDIO_TASKS = {"sound", "localization", "deepfake"}


def glocal(*args: str) -> None:
    """Run the CLI of the checkout (``python -m glocal.cli``), failing loudly."""
    cmd = [sys.executable, "-m", "glocal.cli", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def subset_manifest(root: Path, n_train: int, n_test: int) -> Path:
    """Write ``root/fingerprint_manifest.csv``: the first rows of each split (every column kept)."""
    with open(root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep, counts = [], {"train": 0, "test": 0}
    limits = {"train": n_train, "test": n_test}
    for row in rows:
        split = row.get("split", "train")
        if split in limits and counts[split] < limits[split]:
            keep.append(row)
            counts[split] += 1
    out = root / "fingerprint_manifest.csv"
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    return out


def weights_hash(ckpt: Path) -> str:
    """sha256 over the checkpoint's model tensors (names and bytes, in name order)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    model = state.get("model", state.get("method", state))
    digest = hashlib.sha256()
    for name in sorted(model):
        t = model[name]
        if torch.is_tensor(t):
            digest.update(name.encode())
            digest.update(t.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def numbers(report: Any, prefix: str = "") -> dict[str, float]:
    """Every number in an eval report, flattened to ``a.b.c`` keys (timings left out)."""
    out: dict[str, float] = {}
    if isinstance(report, dict):
        for k, v in report.items():
            if any(s in str(k) for s in ("seconds", "time", "_s", "elapsed", "path", "checkpoint")):
                continue
            out.update(numbers(v, f"{prefix}{k}."))
    elif isinstance(report, (int, float)) and not isinstance(report, bool):
        out[prefix.rstrip(".")] = round(float(report), 6)
    return out


def fingerprint(config: str, data: Path, tasks: str, work: Path) -> dict[str, Any]:
    """Pretrain ``config`` one epoch on ``data``'s fingerprint manifest, hash, evaluate."""
    name = Path(config).parent.name + "_" + Path(config).stem
    run = work / name
    manifest = data / "fingerprint_manifest.csv"
    glocal("pretrain", "--config", config, f"data.root={manifest}", "data.num_workers=0",
           "train.epochs=1", "train.seed=0", "train.num_threads=1", "train.progress=false",
           "train.log_every=1", f"train.out_dir={run}", "train.save_every_epochs=1")
    ckpt = sorted(run.glob("ckpt_epoch*.pt"))[-1]
    with open(run / "log.csv", newline="") as f:
        log = [{k: v for k, v in row.items() if "loss" in k} for row in csv.DictReader(f)]
    method = config_method(config)
    task_list = [t for t in tasks.split(",") if not (method in VIDEO_ONLY and t in AUDIO_TASKS)]
    out_json = run / "eval_all.json"
    refused: dict[str, str] = {}
    while True:  # a task the method cannot run is refused with one line naming it: drop it, note why
        try:
            glocal("eval", "all", "--tasks", ",".join(task_list), "--checkpoint", str(ckpt), "--data", str(manifest),
                   "--num-workers", "0", "--threads", "1", "--quiet", "--out", str(out_json))
            break
        except SystemExit as failure:
            found = re.search(r"task '(\w+)':? (.*)", str(failure))
            if not found or found.group(1) not in task_list:
                raise
            task_list.remove(found.group(1))
            refused[found.group(1)] = found.group(2).strip()
    return {"weights": weights_hash(ckpt), "log": log, "refused": refused,
            "eval": numbers(json.loads(out_json.read_text()))}


def config_method(config: str) -> str:
    import yaml

    return str(yaml.safe_load((ROOT / config).read_text())["method"]["name"])


def compare(a_path: str, b_path: str) -> int:
    """Print every key whose value differs; exit status 1 when any does."""
    a, b = json.loads(Path(a_path).read_text()), json.loads(Path(b_path).read_text())
    bad = 0
    for config in sorted(set(a) | set(b)):
        fa, fb = a.get(config), b.get(config)
        if fa == fb:
            print(f"same      {config}")
            continue
        bad += 1
        if fa is None or fb is None:
            print(f"MISSING   {config}")
            continue
        print(f"DIFFERENT {config}: weights {fa['weights']} vs {fb['weights']}, log equal {fa['log'] == fb['log']}")
        for key in sorted(set(fa["eval"]) | set(fb["eval"])):
            if fa["eval"].get(key) != fb["eval"].get(key):
                print(f"    {key}: {fa['eval'].get(key)} -> {fb['eval'].get(key)}")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="data/fp_world")
    parser.add_argument("--real", default="data/rp_big")
    parser.add_argument("--out", default="recipe_fingerprint.json")
    parser.add_argument("--only", default="", help="comma-separated substrings of config paths to run")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    world, real = ROOT / args.world, ROOT / args.real
    if not (world / "manifest.csv").exists():
        glocal("synth", "--out", str(world), "--quiet", "num_videos=120", "height=32", "width=32", "fps=16",
               "duration=4.0", "object_radius=[0.22,0.32]", "max_distractors=1", "color_mode=class", "seed=0")
    subset_manifest(world, 64, 40)
    if (real / "manifest.csv").exists():
        subset_manifest(real, 64, 40)
    jobs = [(c, world, WORLD_TASKS) for c in WORLD_CONFIGS]
    if (real / "manifest.csv").exists():
        jobs += [(c, real, REAL_TASKS) for c in REAL_CONFIGS]
    only = [s for s in args.only.split(",") if s]
    out = Path(args.out)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}  # resumes
    with tempfile.TemporaryDirectory() as tmp:
        for config, data, tasks in jobs:
            if (only and not any(s in config for s in only)) or config in result:
                continue
            print(f"fingerprinting {config} on {data.name} ...", flush=True)
            result[config] = fingerprint(config, data, tasks, Path(tmp))
            out.write_text(json.dumps(result, indent=1, sort_keys=True))  # after each config
    print(f"{out}: {len(result)} configs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
