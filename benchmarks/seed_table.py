"""Seed table: a checkpoint against its random-init twin over several seeds, from `glocal eval` JSONs.

    python benchmarks/seed_table.py LABEL runs/real/glcm_s0/eval.json runs/real/glcm_s1/eval.json ...

Each JSON is one seed's `glocal eval all --out` report (it holds the checkpoint's and the
random-init twin's metrics, same seed, same test videos). Prints a Markdown table: per metric the
trained mean ± std, the random-init mean ± std, the paired difference (trained - random init, per
seed) as mean ± standard error, and whether that difference exceeds two standard errors
(``mean > 2 * std(ddof=1) / sqrt(n)``; needs n >= 2).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

#: (task, metric) rows in print order; rows absent from every report are left out
ROWS = (("linear", "top1"), ("retrieval", "R@1"), ("retrieval", "R@5"), ("sound", "top1"),
        ("localization", "pointing"), ("localization", "mass_share"), ("localization", "AUC"))


def _mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def seed_rows(reports: list[dict]) -> list[dict]:
    """One dict per metric found in every report: trained/random mean and std, paired diff, SE, verdict."""
    out = []
    for task, key in ROWS:
        try:
            a = [float(r["metrics"]["checkpoint"][task][key]) for r in reports]
            b = [float(r["metrics"]["random_init"][task][key]) for r in reports]
        except KeyError:
            continue
        diff = [x - y for x, y in zip(a, b)]
        n = len(diff)
        d_mean, d_sd = _mean_std(diff)
        se = d_sd / math.sqrt(n) if n > 1 else float("nan")
        out.append({"task": task, "metric": key, "n": n, "trained": _mean_std(a), "random": _mean_std(b),
                    "diff": d_mean, "se": se, "beats": n > 1 and d_mean > 2 * se})
    return out


def markdown(label: str, rows: list[dict]) -> str:
    n = rows[0]["n"] if rows else 0
    lines = [f"| {label} (n={n} seeds) | trained | random init | paired diff ± SE | > 2 SE |", "|---|---:|---:|---:|:---:|"]
    for r in rows:
        verdict = "-" if r["n"] < 2 else ("yes" if r["beats"] else "no")
        lines.append(f"| {r['task']} {r['metric']} | {r['trained'][0]:.3f} ± {r['trained'][1]:.3f} | "
                     f"{r['random'][0]:.3f} ± {r['random'][1]:.3f} | {r['diff']:+.3f} ± {r['se']:.3f} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("label")
    ap.add_argument("reports", nargs="+", type=Path)
    args = ap.parse_args(argv)
    reports = [json.loads(p.read_text()) for p in args.reports]
    print(markdown(args.label, seed_rows(reports)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
