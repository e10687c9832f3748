"""``glocal plot RUN_DIR``: render a run's curves (every loss term, lr, throughput, kNN) to PNG.

Reads ``log.csv`` (per step) and ``epochs.csv`` (per epoch) written by the training loop and draws
one panel per loss term (per-step values, plus epoch means and the dashed chance level), then the
learning rate, the throughput (clips/s), the gradient norm and the per-epoch diagnostics: kNN
top-1 (when the monitor ran), online-probe top-1, alignment / uniformity, attention entropy.
Uses matplotlib's non-interactive Agg backend (works on headless machines).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import DataError

__all__ = ["read_csv_columns", "plot_run"]

_NON_LOSS = {"epoch", "step", "lr", "grad_norm", "clips_per_s", "step_time_s", "skipped_steps", "epoch_time_s",
             "knn_top1"}


def read_csv_columns(path: Path) -> dict[str, list[float]]:
    """Numeric columns of a CSV file (empty cells → NaN)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    cols: dict[str, list[float]] = {}
    for key in rows[0]:
        values = []
        for row in rows:
            cell = row.get(key) or ""
            try:
                values.append(float(cell) if cell else math.nan)
            except ValueError:
                values.append(math.nan)
        cols[key] = values
    return cols


def plot_run(run_dir: str | Path, out: str | Path | None = None, dpi: int = 110) -> Path:
    """Draw the curves of ``run_dir`` into ``out`` (default ``RUN_DIR/curves.png``); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    log_path = run_dir / "log.csv"
    if not log_path.is_file():
        raise DataError(f"{run_dir} has no log.csv; pass the train.out_dir of a `glocal pretrain` run")
    steps = read_csv_columns(log_path)
    if not steps or "step" not in steps:
        raise DataError(f"{log_path} has no rows yet")
    epochs = read_csv_columns(run_dir / "epochs.csv") if (run_dir / "epochs.csv").is_file() else {}
    loss_terms = [k for k in steps if k not in _NON_LOSS and "/" not in k]  # "<term>/chance" etc.: diagnostics
    panels: list[tuple[str, str]] = [(k, "loss") for k in loss_terms]
    panels += [(k, "scalar") for k in ("lr", "clips_per_s", "grad_norm") if k in steps]
    # online diagnostics per epoch (docs/diagnostics.md): kNN, probe, alignment / uniformity, entropy
    diag = [k for k in epochs if k == "knn_top1" or k.startswith("probe_")
            or k.endswith(("/align", "/uniform", "/entropy"))]
    panels += [(k, "epoch") for k in diag if any(math.isfinite(v) for v in epochs[k])]
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.2 * nrows), squeeze=False)
    x = steps["step"]
    for ax, (key, kind) in zip(axes.flat, panels):
        if kind == "epoch":
            ax.plot(epochs["epoch"], epochs[key], marker="o")
            ax.set_xlabel("epoch")
        else:
            ax.plot(x, steps[key], linewidth=1, label="per step")
            if kind == "loss" and key in epochs and "step" in epochs:
                ax.plot(epochs["step"], epochs[key], marker="o", linewidth=1.5, label="epoch mean")
            if kind == "loss" and f"{key}/chance" in steps:
                ax.plot(x, steps[f"{key}/chance"], linestyle="--", color="grey", linewidth=1, label="chance")
            if kind == "loss":
                ax.legend(fontsize=8)
            ax.set_xlabel("step")
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_title(key)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    out_path = Path(out) if out else run_dir / "curves.png"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi)
    plt.close(fig)
    return out_path
