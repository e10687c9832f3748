"""Cross gallery: one set's test videos as queries against another set's training videos.

    python benchmarks/data/cross_gallery.py --queries data/rp_big --gallery data/rp_dev \
        --out data/rp_big_vs_rp_dev_gallery
    glocal eval retrieval --checkpoint runs/real/moco/ckpt_epoch0020.pt --data data/rp_big_vs_rp_dev_gallery

`glocal eval retrieval` queries a set's test split against its train split, and a model
pretrained on that set has seen every gallery video. This writes a dataset root whose test rows
are the query set's test rows and whose train rows are the gallery set's train rows, so the same
protocol scores retrieval against videos the model never trained on (docs/methods_results.md,
"Fourth round"). The root holds two links, ``queries`` and ``gallery``, to the two sets' roots
and a ``manifest.csv`` whose paths go through them; nothing is copied. Both manifests are read
with glocal's own reader (CSV or TSV) and must have a ``split`` column, and every query class must
occur in the gallery (else no query could be a hit, and R@1 would read as a failure of the model).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from glocal.data.manifest import Manifest, read_manifest  # noqa: E402
from glocal.errors import DataError  # noqa: E402
from glocal.runtime.files import atomic_path  # noqa: E402

__all__ = ["manifest_rows", "cross_rows", "write_cross_gallery", "main"]


def _read(root: Path) -> Manifest:
    """The root's ``manifest.csv`` through glocal's reader (CSV or TSV, checked row by row)."""
    try:
        m = read_manifest(root / "manifest.csv")
    except DataError as e:
        raise SystemExit(f"cross_gallery: {e} (pass a dataset root with a manifest.csv, e.g. one written by "
                         "benchmarks/data/real_parts.py)") from None
    if not m.has_column("split"):
        raise SystemExit(f"cross_gallery: {m.source} has no 'split' column: it needs path, label and split")
    return m


def manifest_rows(m: Manifest) -> list[dict[str, str]]:
    """Rows as strings: ``path`` relative to the root (absolute where it lies outside), ``label``
    (empty for an unlabelled row), every other column (NaN ``start``/``end`` as empty)."""
    def text(v: object) -> str:
        return "" if isinstance(v, float) and math.isnan(v) else str(v)

    labels = [m.class_names[i] if i >= 0 else "" for i in m.labels.tolist()]
    cols = {k: v.tolist() for k, v in m.columns.items()}
    return [{"path": p, "label": lab, **{k: text(v[i]) for k, v in cols.items()}}
            for i, (p, lab) in enumerate(zip(m.relative_paths().tolist(), labels))]


def cross_rows(query_rows: list[dict[str, str]], gallery_rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The query set's ``test`` rows (paths under ``queries/``) then the gallery set's ``train`` rows
    (under ``gallery/``); absolute paths are kept as they are."""
    def moved(row: dict[str, str], link: str) -> dict[str, str]:
        path = row["path"] if Path(row["path"]).is_absolute() else f"{link}/{row['path']}"
        return {**row, "path": path}

    queries = [moved(r, "queries") for r in query_rows if r["split"] == "test"]
    gallery = [moved(r, "gallery") for r in gallery_rows if r["split"] == "train"]
    if not queries:
        raise SystemExit("cross_gallery: the query set has no test rows")
    if not gallery:
        raise SystemExit("cross_gallery: the gallery set has no train rows")
    absent = sorted({r["label"] for r in queries} - {r["label"] for r in gallery})
    if absent:
        raise SystemExit(f"cross_gallery: query classes {absent} never occur in the gallery: pick a gallery "
                         "set with the same classes")
    return queries + gallery


def write_cross_gallery(queries: Path, gallery: Path, out: Path) -> int:
    """Write ``out`` (links + manifest, the manifest last and atomically); returns the row count."""
    q, g = _read(queries), _read(gallery)
    rows = cross_rows(manifest_rows(q), manifest_rows(g))
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"cross_gallery: {out} exists and is not empty: pass a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    for name, target in (("queries", queries), ("gallery", gallery)):
        (out / name).symlink_to(target.resolve(), target_is_directory=True)
    fields = ["path", "label", *q.columns, *(c for c in g.columns if c not in q.columns)]
    with atomic_path(out / "manifest.csv", what="the cross-gallery manifest") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, required=True, help="dataset root whose test split gives the queries")
    ap.add_argument("--gallery", type=Path, required=True, help="dataset root whose train split gives the gallery")
    ap.add_argument("--out", type=Path, required=True, help="new folder for the combined root")
    args = ap.parse_args(argv)
    n = write_cross_gallery(args.queries, args.gallery, args.out)
    print(f"cross_gallery: {n} rows -> {args.out / 'manifest.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
