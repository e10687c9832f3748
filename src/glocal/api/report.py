"""The results report with pictures: ``report.md`` + a self-contained ``report.html``.

``glocal eval ... --report [DIR]`` and ``glocal demo`` call :func:`write_results_report` once the
results are computed. Beside the header (method, checkpoint, data, seed, budget, date, version) and
the table against random init (:mod:`glocal.eval.report`), it draws with the tools of the package:

- the training curves (``glocal plot``: :func:`glocal.train.plot.plot_run`) of the run folder the
  checkpoint sits in, when its ``log.csv`` is there;
- 2-4 localisation contact sheets (``glocal localize``: :func:`glocal.api.localize.contact_sheet`)
  of test videos, ground truth drawn where annotations.json has it (audio-visual methods only);
- one retrieval example (``glocal search``): a test video and its top-k nearest train videos
  (:func:`glocal.api.search.top_k` over :meth:`Encoder.embed_video` embeddings, drawn by
  :func:`glocal.api.search_sheet.render_sheet`).

Each picture is drawn on its own: one that fails (no audio in the data, a method without maps, a
broken file) becomes a one-line note in the report, never a failed evaluation.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping, Sequence

import numpy as np

from .. import __version__
from ..config import Range
from ..data.formats import load_manifest
from ..data.manifest import Manifest
from ..errors import GlocalError, one_line
from ..eval.report import Figure, atomic_write, metrics_from_flat, results_rows, write_report
from ..eval.suite import EvalReport
from ..eval.usable import file_state, unusable_reason
from ..runtime.checkpoint import load_checkpoint
from ..runtime.rundir import check_writable
from . import Encoder, load
from .localize import LocalizeOptions, contact_sheet
from .search import top_k
from .search_sheet import SheetItem, png_bytes, render_sheet

__all__ = ["ReportOptions", "write_results_report"]


@dataclass
class ReportOptions:
    """What the report draws (its cost: a few seconds on the demo world)."""

    #: localisation contact sheets (test videos of different classes; 0 = none)
    sheets: Annotated[int, Range(0, 4)] = 3
    #: frames on each contact sheet
    frames: Annotated[int, Range(1, 16)] = 6
    #: uniformly spaced clips whose maps the contact sheet shows (each clip gives several maps)
    sheet_clips: Annotated[int, Range(1)] = 2
    #: nearest train videos shown for the retrieval query (0 = no retrieval example)
    retrieval_k: Annotated[int, Range(0, 10)] = 5
    #: train videos searched (evenly spaced over the train split; all when there are fewer)
    gallery: Annotated[int, Range(1)] = 60
    #: clips per video averaged into a retrieval embedding
    clips_per_video: Annotated[int, Range(1)] = 1
    #: picture tile side in pixels
    tile: Annotated[int, Range(16)] = 128
    #: every metric in the table, not only each task's headline ones
    full: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"


# ---------------------------------------------------------------------------- inputs
def _as_reports(results: Any) -> list[dict[str, Any]]:
    """``EvalReport`` / its dict / the demo's ``results.json`` dict / a list of them (several seeds)."""
    items = results if isinstance(results, (list, tuple)) else [results]
    out = []
    for r in items:
        if isinstance(r, EvalReport):
            out.append(r.to_dict())
        elif isinstance(r, Mapping) and "metrics" in r:
            out.append(dict(r))
        elif isinstance(r, Mapping) and "results" in r:  # the demo's results.json
            out.append({**metrics_from_flat(r["results"]), "skipped": dict(r.get("skipped", {}))})
        else:
            raise GlocalError(f"cannot report {type(r).__name__}: give an EvalReport or its JSON")
    return out


def _budget(checkpoint: Path) -> str:
    """``epoch E of N, S steps, batch B`` from the checkpoint (empty when it does not say)."""
    ck = load_checkpoint(checkpoint, "cpu")
    train = (ck.get("config") or {}).get("train") or {}
    parts = []
    if "epoch" in ck:
        parts.append(f"epoch {ck['epoch']}" + (f" of {train['epochs']}" if "epochs" in train else ""))
    if "step" in ck:
        parts.append(f"{ck['step']} optimizer steps")
    if ck.get("global_micro_batch") or train.get("batch_size"):
        parts.append(f"batch {ck.get('global_micro_batch') or train.get('batch_size')}")
    return ", ".join(parts)


def _dataset(enc: Encoder, data: str | Path | None, data_format: str | None) -> Manifest:
    d = enc.spec.data
    if data is None:
        return load_manifest(d.root, d.format, manifest=d.manifest, deny_list=d.deny_list)
    return load_manifest(data, data_format or "auto")


def _split(m: Manifest, name: str) -> Manifest:
    """The rows of split ``name``; all rows when the manifest has no split column."""
    return m.split(name) if m.has_column("split") else m


def _label(m: Manifest, i: int) -> str:
    k = int(m.labels[i])
    return m.class_names[k] if 0 <= k < len(m.class_names) else "unlabelled"


def _usable(m: Manifest, needs: tuple[str, ...]) -> list[int]:
    """The rows whose files have the ``needs`` streams (each file probed once)."""
    return [i for i, p in enumerate(m.paths.tolist()) if unusable_reason(file_state(p), needs) is None]


def _rel(m: Manifest, i: int) -> str:
    return str(m.relative_paths()[i])


def _png(picture: np.ndarray, path: Path) -> Path:
    return atomic_write(path, png_bytes(picture))


# ---------------------------------------------------------------------------- pictures
def _curves(checkpoint: Path, out: Path) -> list[Figure]:
    from ..train.plot import plot_run

    title = "Training curves"
    run_dir = checkpoint.parent
    if not (run_dir / "log.csv").is_file():
        return [Figure(title, None, f"no training log next to the checkpoint ({run_dir} has no log.csv)")]
    tmp = out / f".curves.tmp-{os.getpid()}.png"
    try:
        plot_run(run_dir, tmp, dpi=80)
        os.replace(tmp, out / "curves.png")
    finally:
        tmp.unlink(missing_ok=True)
    return [Figure(title, out / "curves.png", f"`glocal plot {run_dir}`: every loss term per step (epoch means, "
                                              "dashed chance level), learning rate, throughput, gradient norm")]


def _sheet_videos(test: Manifest, n: int) -> list[int]:
    """Up to ``n`` test rows with video and audio, of different classes where it can (files are
    probed in order, only until enough are found)."""
    picks: list[int] = []
    spare: list[int] = []
    for i, path in enumerate(test.paths.tolist()):
        if len(picks) == n or (len(picks) + len(spare) >= n and i >= 8 * n):  # enough, or classes repeat
            break
        if unusable_reason(file_state(path), ("video", "audio")) is not None:
            continue
        if _label(test, i) in {_label(test, j) for j in picks}:
            spare.append(i)
        else:
            picks.append(i)
    return picks + spare[: n - len(picks)]


def _sheets(enc: Encoder, m: Manifest, out: Path, opts: ReportOptions) -> list[Figure]:
    title = "Localisation contact sheets"
    if opts.sheets == 0:
        return []
    try:
        enc.require_av()
    except GlocalError as exc:
        return [Figure(title, None, f"no contact sheets: {one_line(exc)}")]
    test = _split(m, "test")
    picks = _sheet_videos(test, opts.sheets)
    if not picks:
        return [Figure(title, None, f"no contact sheets: no test video of {m.source} has a video and an audio track")]
    lopts = LocalizeOptions(frames=opts.frames, tile=opts.tile, video=False, device=opts.device,
                            clips_per_video=opts.sheet_clips)
    figures = []
    for n, i in enumerate(picks, 1):
        name = f"{title} {n}/{len(picks)}: {_rel(test, i)} ({_label(test, i)})"
        try:
            sheet, facts = contact_sheet(enc, test.paths[i], lopts)
        except GlocalError as exc:  # e.g. a method without localisation maps: say so once
            return figures + [Figure(title, None, f"no contact sheets: {one_line(exc)}")]
        path = _png(sheet, out / f"localization_{n}.png")
        hits = [t["peak_in_box"] for t in facts["tiles"] if "peak_in_box" in t]
        truth = (f"green: the sounding object's box (annotations.json); map peak inside it on {sum(hits)} of "
                 f"{len(hits)} frames" if hits else "no ground truth for this video")
        figures.append(Figure(name, path, f"audio-visual heat map over {len(facts['tiles'])} frames, white cross: "
                                          f"its peak; {truth}; orange: silent distractors where annotated"))
    return figures


def _retrieval(enc: Encoder, m: Manifest, out: Path, opts: ReportOptions) -> list[Figure]:
    title = "Retrieval example"
    if opts.retrieval_k == 0:
        return []
    enc.require("video")
    test, train = _split(m, "test"), _split(m, "train")
    pick = np.unique(np.linspace(0, len(train) - 1, min(opts.gallery, len(train))).round().astype(int))
    gallery = _usable(train.select(pick), ("video",))  # probe only the evenly spaced picks
    gallery = [int(pick[i]) for i in gallery]
    query = next((i for i in range(len(test)) if unusable_reason(file_state(test.paths[i]), ("video",)) is None), None)
    if query is None or not gallery:
        return [Figure(title, None, f"no retrieval example: {m.source} has no usable "
                                    f"{'test' if query is None else 'train'} video")]
    q = query
    emb = enc.embed_video([test.paths[q], *train.paths[gallery].tolist()], clips_per_video=opts.clips_per_video)
    scores, rows, _ = top_k(emb[1:], emb[:1], opts.retrieval_k)
    query_label = _label(test, q)
    hits, same = [], 0
    for rank, (s, g) in enumerate(zip(scores[0].tolist(), rows[0].tolist()), 1):
        row = gallery[g]
        label = _label(train, row)
        same += label == query_label
        hits.append(SheetItem(str(train.paths[row]), (f"#{rank} cos {s:.2f}",
                                                      f"{label} ({'same' if label == query_label else 'other'})")))
    sheet = render_sheet(SheetItem(str(test.paths[q]), ("query (test)", query_label)), "video", hits, tile=opts.tile)
    path = _png(sheet, out / "retrieval.png")
    return [Figure(title, path, f"test video {_rel(test, q)} ({query_label}) and its {len(hits)} nearest of "
                                f"{len(gallery)} train videos (`glocal search`'s exact cosine top-k over global video "
                                f"embeddings, {opts.clips_per_video} clip(s) per video); {same} of {len(hits)} "
                                "share its class")]


def _attempt(title: str, draw: Callable[[], list[Figure]]) -> list[Figure]:
    """``draw()``, or one note when it fails: the results are computed already, a picture must not
    lose them (any exception, not only user-facing ones: a plotting library's error included)."""
    try:
        return draw()
    except Exception as exc:  # noqa: BLE001 - see the docstring
        return [Figure(title, None, f"{title} not drawn: {type(exc).__name__}: {one_line(exc)}")]


# ---------------------------------------------------------------------------- the report
def write_results_report(results: Any, checkpoint: str | Path, out_dir: str | Path, *,
                         data: str | Path | None = None, data_format: str | None = None,
                         opts: ReportOptions | None = None, title: str | None = None,
                         notes: Sequence[str] = (), encoder: Encoder | None = None) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and their PNGs into ``out_dir``; returns the paths and
    the figures' notes.

    ``results``: an :class:`~glocal.eval.suite.EvalReport`, its JSON dict, the demo's
    ``results.json`` dict, or a list of them (several seeds of one recipe: mean +- std).
    ``data`` / ``data_format``: the evaluated dataset (default: the checkpoint's pretraining data).
    """
    opts = opts or ReportOptions()
    out = Path(out_dir)
    check_writable(out, "the report folder")
    checkpoint = Path(checkpoint)
    reports = _as_reports(results)
    rows = results_rows(reports, full=opts.full)
    notes = list(notes)
    for r in reports[:1]:
        notes += [f"skipped `{k}`: {v}" for k, v in (r.get("skipped") or {}).items()]
        notes += [f"failed `{k}`: {v}" for k, v in (r.get("failed") or {}).items()]
    if not any(row.random_init for row in rows):
        notes.append("no random-init baseline in these results (evaluated with --no-random)")

    enc: Encoder | None = encoder
    load_error = ""
    try:
        enc = enc or load(checkpoint, opts.device)
    except Exception as exc:  # noqa: BLE001 - the table is still written
        load_error = f"{type(exc).__name__}: {one_line(exc)}"
    method = enc.info.method if enc is not None else str(reports[0].get("method", "?"))
    header: dict[str, str] = {
        "method": method,
        "checkpoint": str(checkpoint.resolve()),
        "data": str(data if data is not None else (enc.spec.data.root if enc is not None else reports[0].get("data", "?"))),
        "seeds": (f"{len(reports)} runs (mean ± std over them); the pictures: " if len(reports) > 1 else "")
                 + (f"pretraining seed {enc.spec.seed}" if enc is not None else "?"),
    }
    budget = ""
    try:
        budget = _budget(checkpoint)
    except Exception:  # noqa: BLE001 - the budget line is optional
        pass
    if budget:
        header["budget"] = budget
    header["date"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header["glocal"] = __version__

    figures = _attempt("Training curves", lambda: _curves(checkpoint, out))
    if enc is None:
        figures.append(Figure("Localisation and retrieval", None, f"no pictures: the checkpoint did not load "
                                                                  f"({load_error})"))
    else:
        manifest: list[Manifest] = []

        def dataset() -> Manifest:
            if not manifest:
                manifest.append(_dataset(enc, data, data_format))
            return manifest[0]

        figures += _attempt("Localisation contact sheets", lambda: _sheets(enc, dataset(), out, opts))
        figures += _attempt("Retrieval example", lambda: _retrieval(enc, dataset(), out, opts))
    paths = write_report(out, title or f"glocal results: {method}", header, rows, figures, notes)
    return {**paths, "figures": [f.png for f in figures if f.png is not None],
            "notes": [f.caption for f in figures if f.png is None]}
