"""A stand-in for ``python -m glocal.cli`` in the study-runner tests: ``pretrain`` and ``eval all``
with the arguments the runner passes, writing what the real commands write (a checkpoint file,
log.csv, the eval JSON) in milliseconds instead of minutes.

Every call is appended to $FAKE_CALLS as one JSON line. A cell whose key (``dataset/arm/seedK``)
is in $FAKE_FAIL exits with status 1 in pretraining. With $FAKE_SLEEP, pretraining waits that many
seconds; SIGTERM then writes its checkpoint and exits 0, as the real loop does. Metrics: ``linear/top1`` and
``retrieval/R@1`` = ARM_BASE[arm] + 0.01 * seed for the checkpoint, 0.1 for random init. ``localize DIR`` writes a
small PNG per file of DIR.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

ARM_BASE = {"good": 0.6, "plain": 0.4, "bad": 0.2}


def _cell(path: Path) -> tuple[str, str, int]:
    """(dataset, arm, seed) of a path inside OUT/cells/<dataset>/<arm>/seed<k>/..."""
    parts = path.resolve().parts
    i = parts.index("cells")
    return parts[i + 1], parts[i + 2], int(parts[i + 3][4:])


def main(argv: list[str]) -> int:
    with open(os.environ["FAKE_CALLS"], "a") as fh:
        fh.write(json.dumps(argv) + "\n")
    if argv[0] == "pretrain":
        cfg = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text())
        out = Path(cfg["train"]["out_dir"])
        dataset, arm, seed = _cell(out)
        if f"{dataset}/{arm}/seed{seed}" in os.environ.get("FAKE_FAIL", "").split(","):
            print("boom: a crash in pretraining", file=sys.stderr)
            return 1
        out.mkdir(parents=True, exist_ok=True)
        if os.environ.get("FAKE_SLEEP"):
            def stop(signum, frame):
                (out / "ckpt_epoch0001.pt").write_bytes(b"fake, preempted")
                sys.exit(0)

            signal.signal(signal.SIGTERM, stop)
            (out / "log.csv").write_text("epoch,step,lr,loss\n")
            time.sleep(float(os.environ["FAKE_SLEEP"]))
        rows = ["epoch,step,lr,loss"] + [f"1,{s},0.001,{4.0 - 0.1 * s - ARM_BASE.get(arm, 0.3)}" for s in range(1, 6)]
        (out / "log.csv").write_text("\n".join(rows) + "\n")
        (out / "ckpt_epoch0001.pt").write_bytes(b"fake")
        return 0
    if argv[0] == "eval":
        ckpt = Path(argv[argv.index("--checkpoint") + 1])
        dataset, arm, seed = _cell(ckpt)
        tasks = argv[argv.index("--tasks") + 1].split(",")
        value = ARM_BASE.get(arm, 0.3) + 0.01 * seed
        metrics = {"checkpoint": {}, "random_init": {}}
        for t in tasks:
            key = {"linear": "top1", "retrieval": "R@1", "sound": "top1", "localization": "pointing"}[t]
            metrics["checkpoint"][t] = {key: value}
            metrics["random_init"][t] = {key: 0.1}
        Path(argv[argv.index("--out") + 1]).write_text(json.dumps({"tasks": tasks, "metrics": metrics, "failed": {}}))
        return 0
    if argv[0] == "localize":
        from PIL import Image

        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        for video in sorted(Path(argv[1]).iterdir()):
            Image.new("RGB", (16, 8), (200, 40, 40)).save(out / f"{video.stem}.png")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
