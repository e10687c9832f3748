"""Does a joint audio-visual index find the video a sound came from? Recall against chance.

    glocal embed data/world --checkpoint CKPT --out runs/index_av split=test modality=both space=joint
    python benchmarks/search_recall.py runs/index_av [--queries runs/index_av_val]

Every row's sound of ``--queries`` (default: the index itself) is searched among the index's videos
with :func:`glocal.api.search.top_k` (and the other way round). Without ``--queries`` it prints the
instance recall R@1 / R@10 (the sound's own video among the top 1 / 10) with its chance level, the
median rank of the own video, and the class precision P@1 / P@10 (hits of the query's label) against
chance (the share of each label in the index). With ``--queries`` (another split embedded with the
same checkpoint and settings) it prints the class precision only, of all four directions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def recall_rows(queries: np.ndarray, query_labels: np.ndarray, index: np.ndarray, labels: np.ndarray,
                same_rows: bool) -> dict[str, float]:
    """``queries (Q, D)`` against ``index (N, D)``: the metrics of the module docstring."""
    from glocal.api.search import top_k

    n = index.shape[0]
    _, rows, _ = top_k(index, queries, n, backend="torch")  # full ranking (N is small here)
    out: dict[str, float] = {}
    if same_rows:
        own = np.argmax(rows == np.arange(len(queries))[:, None], axis=1)  # 0-based rank of the own row
        out.update({"R@1": float((own < 1).mean()), "R@10": float((own < 10).mean()), "chance R@1": 1 / n,
                    "chance R@10": min(10, n) / n, "median rank": float(np.median(own) + 1)})
    hit = labels[rows] == query_labels[:, None]
    share = {lab: float((labels == lab).mean()) for lab in np.unique(labels)}
    out.update({"P@1": float(hit[:, 0].mean()), "P@10": float(hit[:, :10].mean()),
                "chance P": float(np.mean([share.get(lab, 0.0) for lab in query_labels]))})
    return out


def main() -> None:
    from glocal.api.search import load_index

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", help="a `glocal embed ... modality=both space=joint` folder")
    ap.add_argument("--queries", help="another such folder whose rows are the queries (default: the index)")
    args = ap.parse_args()
    idx = load_index(args.index)
    qidx = load_index(args.queries) if args.queries else idx
    if idx.space != "joint" or not {"video", "audio"} <= set(idx.vectors) <= set(qidx.vectors):
        raise SystemExit(f"{args.index} (and --queries) must be embedded with modality=both space=joint")
    labels = np.array([r["label"] for r in idx.rows])
    qlabels = np.array([r["label"] for r in qidx.rows])
    print(f"{Path(args.index).name}: {len(idx.rows)} rows, method {idx.method}, queries {len(qidx.rows)}")
    pairs = [("audio", "video", "sound -> video"), ("video", "audio", "video -> sound")]
    if args.queries:  # a row against its own index finds itself: same-modality rows only for other queries
        pairs += [("video", "video", "video -> video"), ("audio", "audio", "sound -> sound")]
    for q, x, name in pairs:
        res = recall_rows(qidx.vectors[q], qlabels, idx.vectors[x], labels, same_rows=args.queries is None)
        print(f"{name:16s} " + "  ".join(f"{k} {v:.3f}" if k != "median rank" else f"{k} {v:.1f}"
                                         for k, v in res.items()))


if __name__ == "__main__":
    main()
