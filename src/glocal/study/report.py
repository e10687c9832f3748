"""``glocal report STUDY_DIR``: report.md + self-contained report.html of a ``glocal study`` folder.

Per claim its verdict with every paired comparison (mean ± SE of the difference, paired t-test and
exact sign-flip p-values); per dataset one table per task metric (each arm and its random-init
twin, mean ± std over seeds); training-loss curves per arm (seeds overlaid); CPU and wall time per
cell and in all. Only finished cells (``done.json``) count; the others are listed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from ..config import build
from ..errors import DataError
from ..runtime.rundir import check_writable
from ..train.plot import read_csv_columns
from .config import RANDOM_INIT, StudyConfig
from .files import read_json, write_atomic
from .grid import cell_folder
from ..eval.render import Block, Heading, Image, Table, Text, to_html, to_markdown
from .runner import format_minutes
from .stats import mean_std, paired
from .verdict import RULE, ClaimResult, judge, series, values_from_reports

__all__ = ["load_study", "report_blocks", "write_study_report"]


def load_study(study_dir: str | Path) -> tuple[StudyConfig, dict[str, Any], dict[tuple[str, str, int], dict[str, Any]]]:
    """``(config, study.json, {(dataset, arm, seed): eval report})`` of the finished cells."""
    study_dir = Path(study_dir)
    path = study_dir / "study.json"
    if not path.is_file():
        raise DataError(f"{study_dir} has no study.json; pass the --out folder of a `glocal study` run")
    study = read_json(path)
    cfg = build(StudyConfig, study["config"])
    reports = {}
    for cell in study["cells"]:
        folder = cell_folder(study_dir, cell)  # a moved, copied or archived study reads its own cells
        if (folder / "done.json").is_file() and (folder / "eval.json").is_file():
            reports[(cell["dataset"], cell["arm"], int(cell["seed"]))] = read_json(folder / "eval.json")
            cell["_folder"] = folder
    return cfg, study, reports


def _ms(xs: list[float]) -> str:
    if not xs:
        return "-"
    m, sd = mean_std(xs)
    return f"{m:.3f} ± {sd:.3f}" if len(xs) > 1 else f"{m:.3f}"


def _signed(x: float) -> str:
    """``+0.123``; a difference that rounds to zero is ``+0.000``, never ``-0.000``."""
    return f"{round(x, 3) + 0.0:+.3f}"


def _p(p: float) -> str:
    return "-" if p is None or math.isnan(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def _metrics_of(cfg: StudyConfig, values: dict[str, Any], dataset: str) -> list[str]:
    """Metric keys to tabulate on ``dataset``: the claims' deciding ones first, then every other metric of
    the study's tasks that some arm reported (localization: the headline few)."""
    from ..eval.suite import TASKS

    seen: list[str] = []
    for c in cfg.claims:
        if dataset in cfg.claim_datasets(c):
            seen += [m for m in c.metrics if m not in seen]
    for task in cfg.tasks_for(dataset):
        for metric in TASKS[task].headline:
            key = f"{task}/{metric}"
            if key not in seen and any(key in run for per in values.get(dataset, {}).values() for run in per.values()):
                seen.append(key)
    return seen


def _claim_blocks(res: ClaimResult, values: dict[str, Any]) -> list[Block]:
    c = res.claim
    per = ", ".join(f"{d}: {v}" for d, v in res.per_dataset.items())
    blocks: list[Block] = [Heading(f"Claim {c.name}: {res.verdict}", 3),
                           Text(f"{c.text} — arms {c.arms} against {c.baselines} on {c.metrics}; {per}."
                                + (f" Note: {c.note}" if c.note else ""))]
    rows = []
    for cmp in res.comparisons:
        runs = values.get(cmp.dataset, {})
        a = [runs[cmp.arm][s][cmp.metric] for s in cmp.seeds]
        if cmp.baseline == RANDOM_INIT:
            b = [runs[cmp.arm][s][f"{RANDOM_INIT}:{cmp.metric}"] for s in cmp.seeds]
        else:
            b = [runs[cmp.baseline][s][cmp.metric] for s in cmp.seeds]
        r = cmp.result
        if r is None:
            rows.append([cmp.dataset, cmp.arm, cmp.baseline, cmp.metric, "0", "-", "-", "-", "-", "-"])
            continue
        diff = f"{_signed(r.mean)} ± {r.se:.3f}" if r.n > 1 else _signed(r.mean)
        rows.append([cmp.dataset, cmp.arm, cmp.baseline, cmp.metric, str(r.n), _ms(a), _ms(b), diff, _p(r.p_t),
                     _p(r.p_sign)])
    blocks.append(Table(["dataset", "arm", "baseline", "metric", "seeds", "arm", "baseline", "diff ± SE",
                         "p (t, 1-sided)", "p (sign-flip, exact)"], rows))
    return blocks


def _curves(cfg: StudyConfig, study: dict[str, Any], dataset: str, out: Path) -> Path | None:
    """One panel per arm: the training loss (per logged step) of every finished seed of ``dataset``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, list[tuple[int, dict[str, list[float]]]]] = {}
    for cell in study["cells"]:
        folder = cell.get("_folder")
        if cell["dataset"] != dataset or folder is None or not (folder / "pretrain" / "log.csv").is_file():
            continue
        cols = read_csv_columns(folder / "pretrain" / "log.csv")
        if "step" in cols and "loss" in cols:
            runs.setdefault(cell["arm"], []).append((cell["seed"], cols))
    if not runs:
        return None
    arms = [a.name for a in cfg.arms if a.name in runs]
    ncols = min(3, len(arms))
    nrows = math.ceil(len(arms) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3 * nrows), squeeze=False)
    for ax, arm in zip(axes.flat, arms):
        for seed, cols in sorted(runs[arm], key=lambda x: x[0]):
            ax.plot(cols["step"], cols["loss"], linewidth=1, label=f"seed {seed}")
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(arms):]:
        ax.set_visible(False)
    fig.suptitle(f"{dataset}: training loss per arm (each seed a line)")
    fig.tight_layout()
    path = out / f"curves_{dataset}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def which_method(cfg: StudyConfig, values: dict[str, Any], dataset: str, metrics: list[str]) -> list[list[str]]:
    """Rows of the "which method for which task" table on ``dataset``: per metric the table arms
    ranked by their mean over seeds, the best against the runner-up paired over common seeds (mean
    ± SE, one-sided t-test p) and the best against its random-init twin."""
    runs = values.get(dataset, {})
    rows = []
    for key in metrics:
        ranked = []
        for arm in cfg.method_arms():
            per = runs.get(arm, {})
            xs = [per[s][key] for s in sorted(per) if key in per[s]]
            if xs:
                ranked.append((mean_std(xs)[0], arm, len(xs)))
        if not ranked:
            continue
        ranked.sort(key=lambda r: -r[0])
        best = ranked[0]
        vs_next = vs_rand = "-"
        if len(ranked) > 1:
            seeds, a, b = series(values, dataset, best[1], ranked[1][1], key)
            if len(seeds) > 1:
                r = paired(a, b)
                vs_next = f"{ranked[1][1]} {ranked[1][0]:.3f}: {_signed(r.mean)} ± {r.se:.3f} (p {_p(r.p_t)})"
        seeds, a, b = series(values, dataset, best[1], RANDOM_INIT, key)
        if len(seeds) > 1:
            r = paired(a, b)
            vs_rand = f"{_signed(r.mean)} ± {r.se:.3f} (p {_p(r.p_t)})"
        rows.append([key, f"{best[1]} {best[0]:.3f} (n={best[2]})", vs_next, vs_rand,
                     ", ".join(f"{arm} {m:.3f}" for m, arm, _ in ranked[1:])])
    return rows


def _sheet_blocks(cfg: StudyConfig, study: dict[str, Any], dataset: str) -> list[Block]:
    """The contact sheets (``sheet_videos``) of each arm's lowest finished seed on ``dataset``."""
    out: list[Block] = []
    for arm in cfg.arms:
        cells = sorted((c for c in study["cells"] if c["dataset"] == dataset and c["arm"] == arm.name
                        and c.get("_folder") is not None), key=lambda c: c["seed"])
        for cell in cells:
            pngs = [Path(p) for p in (read_json(cell["_folder"] / "done.json").get("sheets") or {}).get("pngs", [])]
            pngs = [cell["_folder"] / "sheets" / p.name for p in pngs if (cell["_folder"] / "sheets" / p.name).is_file()]
            if pngs:
                if not out:
                    out.append(Heading(f"Localisation contact sheets on {dataset}", 3))
                out += [Image(p, f"{dataset}/{arm.name} seed {cell['seed']}: {p.stem} (heat map, its peak and the "
                                 "ground truth where annotated)") for p in pngs]
                break
    return out


def report_blocks(cfg: StudyConfig, study: dict[str, Any], reports: dict[tuple[str, str, int], dict[str, Any]],
                  out: Path, curves: bool = True) -> list[Block]:
    """Every block of the report (curve PNGs are written into ``out``)."""
    values = values_from_reports(reports)
    cells = study["cells"]
    done = [c for c in cells if c.get("_folder") is not None]
    cpu_total = sum(c.get("cpu_s") or 0.0 for c in cells)
    results = judge(cfg, values)
    blocks: list[Block] = [
        Heading(f"Study report: {study.get('config_file') or 'study'}", 1),
        Text(f"{len(done)} of {len(cells)} cells finished ({len(cfg.data)} dataset(s) x {len(cfg.arms)} arm(s) x "
             f"{len(cfg.seeds)} seed(s): {cfg.seeds}"
             + (f"; selected: only_datasets {cfg.only_datasets or 'all'}, only_arms {cfg.only_arms or 'all'}"
                if cfg.only_datasets or cfg.only_arms else "")
             + f"); evaluation tasks {cfg.tasks}; CPU time in all "
             f"{format_minutes(cpu_total)} ({cpu_total / 3600:.2f} CPU hours). Generated "
             f"{time.strftime('%Y-%m-%d %H:%M')} from {study.get('updated', '?')}'s study.json."),
    ]
    if len(cfg.seeds) < cfg.min_seeds:
        blocks.append(Text(f"Warning: {len(cfg.seeds)} seed(s) < min_seeds={cfg.min_seeds}: every claim is "
                           "inconclusive by rule."))
    if results:
        blocks.append(Heading("Verdicts", 2))
        datasets = list(cfg.data)
        rows = [[r.claim.name, r.claim.text, *[r.per_dataset.get(d, "-") for d in datasets], r.verdict]
                for r in results]
        blocks.append(Table(["claim", "text", *datasets, "verdict"], rows))
        blocks.append(Text("Rule: " + RULE.format(min_seeds=cfg.min_seeds, alpha=cfg.alpha)
                           + " Higher is better for every deciding metric. Results are test-split metrics of the "
                             "last checkpoint of each run; no setting was chosen on them."))
        for r in results:
            blocks += _claim_blocks(r, values)
    for dataset in cfg.data:
        blocks.append(Heading(f"Results on {dataset} ({cfg.data[dataset]})", 2))
        runs = values.get(dataset, {})
        metrics = _metrics_of(cfg, values, dataset)
        table = which_method(cfg, values, dataset, metrics)
        if table:
            blocks.append(Table(["task metric", "best (mean)", "vs runner-up (paired diff ± SE)",
                                 "best vs its random init", "the others (mean)"], table,
                                caption=f"{dataset}: which method for which task (arms {cfg.method_arms()})"))
        for key in metrics:
            rows = []
            for arm in cfg.arms:
                per = runs.get(arm.name, {})
                a = [per[s][key] for s in sorted(per) if key in per[s]]
                b = [per[s][f"{RANDOM_INIT}:{key}"] for s in sorted(per) if f"{RANDOM_INIT}:{key}" in per[s]]
                if a or b:
                    rows.append([arm.name, str(len(a)), _ms(a), _ms(b)])
            if rows:
                blocks.append(Table(["arm", "seeds", "trained (mean ± std)", "random init (mean ± std)"], rows,
                                    caption=f"{dataset}: {key}"))
        if curves:
            png = _curves(cfg, study, dataset, out)
            if png is not None:
                blocks.append(Image(png, f"{dataset}: training loss per arm, seeds overlaid (the weighted sum of the "
                                         "arm's own terms: compare seeds within a panel, not levels across arms)"))
        blocks += _sheet_blocks(cfg, study, dataset)
    blocks.append(Heading("CPU time per cell", 2))
    rows = []
    for c in cells:
        folder = c.get("_folder")
        d = read_json(folder / "done.json") if folder is not None else {}
        rows.append([c["key"], c["state"], format_minutes(c.get("cpu_s")),
                     format_minutes(d.get("cpu_s_pretrain")), format_minutes(d.get("cpu_s_eval")),
                     format_minutes(c.get("wall_s")), c.get("reason") or ""])
    rows.append(["all cells", "", format_minutes(cpu_total), "", "", "", ""])
    blocks.append(Table(["cell", "state", "CPU", "CPU pretrain", "CPU eval", "wall", "note"], rows,
                        caption="CPU = user + system time of the cell's processes (data-loader workers included), "
                                "killed attempts included"))
    return blocks


def write_study_report(study_dir: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (default: into ``study_dir``); returns their paths."""
    study_dir = Path(study_dir)
    out = Path(out) if out else study_dir
    cfg, study, reports = load_study(study_dir)
    check_writable(out, "the report folder --out")
    blocks = report_blocks(cfg, study, reports, out)
    md = write_atomic(out / "report.md", to_markdown(blocks, out))
    page = write_atomic(out / "report.html", to_html(blocks, f"glocal study report: {study_dir.name}"))
    return md, page
