"""Seed table: a checkpoint against its random-init twin over several seeds, from `glocal eval` JSONs.

    python benchmarks/seed_table.py LABEL runs/real/glcm_s0/eval.json runs/real/glcm_s1/eval.json ...

Each JSON is one seed's `glocal eval all --out` report (it holds the checkpoint's and the
random-init twin's metrics, same seed, same test videos). Prints a Markdown table: per metric the
trained mean ± std, the random-init mean ± std, the paired difference (trained - random init, per
seed) as mean ± standard error, and whether that difference exceeds two standard errors
(``mean > 2 * std(ddof=1) / sqrt(n)``; needs n >= 2). The statistics are the library's
(:mod:`glocal.study.stats`, also behind ``glocal report``), which adds the paired t-test p-value.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from glocal.study.stats import mean_std, paired

#: (task, metric) rows in print order; rows absent from every report are left out
ROWS = (("linear", "top1"), ("retrieval", "R@1"), ("retrieval", "R@5"), ("sound", "top1"),
        ("localization", "pointing"), ("localization", "mass_share"), ("localization", "AUC"),
        # video_pool=sound's audio-swap control (docs/evaluation.md): the donor audio's class read
        # out of the pooled video features, its chance rate, and the video's own class under that audio
        ("linear", "leak_top1"), ("linear", "leak_chance"), ("linear", "swap_top1"),
        ("retrieval", "leak_R@1"), ("retrieval", "swap_R@1"))


def seed_rows(reports: list[dict]) -> list[dict]:
    """One dict per metric found in every report: trained/random mean and std, paired diff, SE, verdict."""
    out = []
    for task, key in ROWS:
        try:
            a = [float(r["metrics"]["checkpoint"][task][key]) for r in reports]
            b = [float(r["metrics"]["random_init"][task][key]) for r in reports]
        except KeyError:
            continue
        d = paired(a, b)
        out.append({"task": task, "metric": key, "n": d.n, "trained": mean_std(a), "random": mean_std(b),
                    "diff": d.mean, "se": d.se, "p_t": d.p_t, "beats": d.n > 1 and d.mean > 2 * d.se})
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
