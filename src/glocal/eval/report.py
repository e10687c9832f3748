"""The results report of an evaluation: ``report.md`` + a self-contained ``report.html``.

:func:`results_rows` turns one or more :class:`~glocal.eval.suite.EvalReport` dicts (one per seed)
into rows ``task | metric | checkpoint | random init | difference`` (mean +- std over the seeds, or
over a protocol's folds where it reports them, e.g. ``sound``'s ``per_fold``); :func:`write_report`
writes the header, that table and the pictures (:class:`Figure`: a PNG saved next to the report, or
the one-line note saying why there is none) as markdown (pictures by file name) and as one HTML file
(pictures inline as ``data:`` URIs, a little CSS, no script, nothing fetched), each atomically.

Drawing the pictures is the caller's (``glocal.api.report``: training curves, localisation contact
sheets, a retrieval example); this module only lays them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DataError
from ..runtime.files import write_atomic
from .render import Block, Fields, Heading, Image, Table, Text, to_html, to_markdown
from .suite import TASKS

__all__ = ["Figure", "Row", "results_rows", "metrics_from_flat", "report_blocks", "write_report",
           "atomic_write", "REPORT_MD", "REPORT_HTML"]

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
CHECKPOINT, RANDOM = "checkpoint", "random_init"


@dataclass
class Figure:
    """One picture of the report: ``png`` (a file in the report folder) with its ``caption``, or
    ``png=None`` and ``caption`` saying why there is no picture."""

    title: str
    png: Path | None = None
    caption: str = ""


@dataclass
class Row:
    """One table row: the metric's mean (and std, ``None`` for a single value) per model."""

    task: str
    metric: str
    checkpoint: tuple[float, float | None] | None
    random_init: tuple[float, float | None] | None
    spread: str = ""  #: what the std is over ("3 seeds", "5 folds"), empty without one

    @property
    def difference(self) -> float | None:
        if self.checkpoint is None or self.random_init is None:
            return None
        return self.checkpoint[0] - self.random_init[0]


def metrics_from_flat(flat: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """An EvalReport-like dict (``metrics``, ``tasks``) from flat ``{model: {"task/metric": v}}`` results
    (``glocal.eval.suite.evaluate``'s, the demo's ``results.json``)."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for model, per in flat.items():
        for key, v in per.items():
            task, _, metric = key.partition("/")
            metrics.setdefault(model, {}).setdefault(task, {})[metric] = float(v)
    tasks = list(dict.fromkeys(t for per in metrics.values() for t in per))
    return {"metrics": metrics, "tasks": tasks, "meta": {}}


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _cell(reports: Sequence[Mapping[str, Any]], model: str, task: str, metric: str) -> tuple[tuple[float, float | None] | None, str]:
    values = [r["metrics"][model][task][metric] for r in reports
              if metric in r.get("metrics", {}).get(model, {}).get(task, {})]
    if not values:
        return None, ""
    if len(values) > 1:
        return _mean_std(values), f"{len(values)} seeds"
    folds = reports[0].get("meta", {}).get(model, {}).get(task, {}).get("per_fold")
    headline = TASKS[task].headline if task in TASKS else ()
    if isinstance(folds, list) and len(folds) > 1 and headline and metric == headline[0]:
        mean, std = _mean_std([float(f) for f in folds])
        if abs(mean - values[0]) < 1e-6:  # the metric is the mean over the folds: its spread is theirs
            return (values[0], std), f"{len(folds)} folds"
    return (values[0], None), ""


def results_rows(reports: Sequence[Mapping[str, Any]], full: bool = False) -> list[Row]:
    """The table of one or more evaluation reports (``EvalReport.to_dict()``; several = several seeds):
    the headline metrics of each task (every metric when ``full``), checkpoint vs random init."""
    if not reports:
        raise DataError("no evaluation results to report")
    tasks = list(dict.fromkeys(t for r in reports for t in r.get("tasks") or
                               [t for per in r.get("metrics", {}).values() for t in per]))
    rows = []
    for task in tasks:
        names = list(dict.fromkeys(k for r in reports for per in r.get("metrics", {}).values()
                                   for k in per.get(task, {})))
        if not full and task in TASKS:
            names = [n for n in TASKS[task].headline if n in names] or names[:1]
        for name in names:
            ck, spread_c = _cell(reports, CHECKPOINT, task, name)
            rnd, spread_r = _cell(reports, RANDOM, task, name)
            rows.append(Row(task, name, ck, rnd, spread_c or spread_r))
    return rows


def _fmt(cell: tuple[float, float | None] | None) -> str:
    if cell is None:
        return "-"
    return f"{cell[0]:.3f}" if cell[1] is None else f"{cell[0]:.3f} ± {cell[1]:.3f}"


def _diff(row: Row) -> str:
    d = row.difference
    return "-" if d is None else f"{d:+.3f}"


_COLUMNS = ("task", "metric", "checkpoint", "random init", "difference", "± over")


def _table_cells(rows: Sequence[Row]) -> list[list[str]]:
    return [[r.task, r.metric, _fmt(r.checkpoint), _fmt(r.random_init), _diff(r), r.spread] for r in rows]


def report_blocks(title: str, header: Mapping[str, str], rows: Sequence[Row], figures: Sequence[Figure],
                  notes: Sequence[str] = ()) -> list[Block]:
    """The report as blocks (:mod:`glocal.eval.render`): header fields, the table against random
    init, the notes, then each figure (or the line saying why it is missing)."""
    blocks: list[Block] = [Heading(title, 1), Fields({k: str(v) for k, v in header.items()}),
                           Heading("Results against random init"), Table(list(_COLUMNS), _table_cells(rows))]
    blocks += [Text(f"- {n}") for n in notes]
    for fig in figures:
        blocks.append(Heading(fig.title))
        if fig.png is not None:
            blocks.append(Image(fig.png, fig.caption or fig.title))
        elif fig.caption:
            blocks.append(Text(fig.caption))
    return blocks


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`glocal.runtime.files.write_atomic`); a
    :class:`DataError` naming the file when it cannot be written."""
    return write_atomic(path, data, fix="free space there or pick another report folder")


def write_report(out_dir: str | Path, title: str, header: Mapping[str, str], rows: Sequence[Row],
                 figures: Sequence[Figure], notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (the figures' PNGs are already there);
    returns their paths."""
    out = Path(out_dir)
    blocks = report_blocks(title, header, rows, figures, notes)
    page = to_html(blocks, title)  # reads the PNGs before anything is replaced
    md = to_markdown(blocks, out)
    return {"md": atomic_write(out / REPORT_MD, md.encode()), "html": atomic_write(out / REPORT_HTML, page.encode())}
