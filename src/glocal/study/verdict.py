"""Claims against the results: per dataset, per deciding metric, each arm against each baseline,
paired over the seeds both ran; then the verdict.

Rule (stated in every report), per claim and dataset, with alpha = the study's ``alpha`` and
``min_seeds`` its minimum:

* **holds**: every comparison (arm x baseline x deciding metric) has ``n >= min_seeds`` paired
  seeds, a positive mean difference and a one-sided paired t-test ``p < alpha``;
* **does not hold**: some comparison has ``n >= min_seeds`` and either the baseline is
  significantly better (one-sided ``p < alpha`` the other way) or its mean difference is ``<= 0``;
* **inconclusive**: anything else (too few seeds, a missing result, or better on average but not
  significantly everywhere);
* **not run**: no cell of the claim has finished on that dataset (yet, or not selected by
  ``only_datasets`` / ``only_arms``).

Across datasets: holds if it holds on every dataset, does not hold if it does not hold on every
dataset, else inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .config import RANDOM_INIT, ClaimConfig, StudyConfig
from .stats import Paired, paired

__all__ = ["HOLDS", "NOT", "INCONCLUSIVE", "NOT_RUN", "Comparison", "ClaimResult", "judge", "judge_claim", "RULE",
           "values_from_reports", "series"]

HOLDS, NOT, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"

RULE = ("A claim holds on a dataset when every comparison (each claimed arm against each baseline on each "
        "deciding metric, paired over the seeds both ran) has at least {min_seeds} seeds, a positive mean "
        "difference and a one-sided paired t-test p < {alpha}; it does not hold when some comparison with at least "
        "{min_seeds} seeds has a mean difference <= 0 or the baseline significantly better (p < {alpha}); otherwise "
        "it is inconclusive. Over datasets: holds if it holds on every dataset, does not hold if it does not hold "
        "on every dataset, else inconclusive. The exact sign-flip p is shown beside the t-test; with 3 seeds it "
        "cannot go below 0.125, so it does not decide. A dataset where no comparison has a finished pair of "
        "cells (yet, or not selected by only_datasets / only_arms) is 'not run'.")

#: ``values[dataset][arm][seed]`` = ``{"task/metric": value}``, with the random-init twin under
#: ``values[dataset][arm][seed]["random_init:task/metric"]``
Values = Mapping[str, Mapping[str, Mapping[int, Mapping[str, float]]]]


@dataclass
class Comparison:
    dataset: str
    arm: str
    baseline: str
    metric: str
    seeds: list[int]
    result: Paired | None  # None: no common seed


@dataclass
class ClaimResult:
    claim: ClaimConfig
    per_dataset: dict[str, str] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    verdict: str = INCONCLUSIVE


def series(values: Values, dataset: str, arm: str, baseline: str,
            metric: str) -> tuple[list[int], list[float], list[float]]:
    """``(seeds, arm values, baseline values)`` over the seeds both have (``random_init``: the arm's twin)."""
    runs = values.get(dataset, {}).get(arm, {})
    base_runs = runs if baseline == RANDOM_INIT else values.get(dataset, {}).get(baseline, {})
    base_key = f"{RANDOM_INIT}:{metric}" if baseline == RANDOM_INIT else metric
    seeds = sorted(s for s in runs if metric in runs[s] and s in base_runs and base_key in base_runs[s])
    return seeds, [runs[s][metric] for s in seeds], [base_runs[s][base_key] for s in seeds]


def _dataset_verdict(comps: list[Comparison], alpha: float, min_seeds: int) -> str:
    if all(c.result is None for c in comps):  # no cell of the claim finished here (yet, or not selected)
        return NOT_RUN
    enough = [c for c in comps if c.result is not None and c.result.n >= min_seeds]
    if any(c.result.mean <= 0 or c.result.p_t_worse < alpha for c in enough):  # type: ignore[union-attr]
        return NOT
    if comps and len(enough) == len(comps) and all(c.result.p_t < alpha for c in enough):  # type: ignore[union-attr]
        return HOLDS
    return INCONCLUSIVE


def judge_claim(cfg: StudyConfig, claim: ClaimConfig, values: Values) -> ClaimResult:
    """Every comparison of ``claim`` and its verdict per dataset and overall."""
    out = ClaimResult(claim)
    for dataset in cfg.claim_datasets(claim):
        comps = []
        for arm in claim.arms:
            for base in claim.baselines:
                for metric in claim.metrics:
                    seeds, a, b = series(values, dataset, arm, base, metric)
                    comps.append(Comparison(dataset, arm, base, metric, seeds, paired(a, b) if seeds else None))
        out.comparisons += comps
        out.per_dataset[dataset] = _dataset_verdict(comps, cfg.alpha, cfg.min_seeds)
    verdicts = set(out.per_dataset.values())
    out.verdict = verdicts.pop() if len(verdicts) == 1 else INCONCLUSIVE  # "not run" somewhere: inconclusive
    return out


def judge(cfg: StudyConfig, values: Values) -> list[ClaimResult]:
    return [judge_claim(cfg, c, values) for c in cfg.claims]


def values_from_reports(reports: Mapping[tuple[str, str, int], Mapping[str, Any]]) -> dict[str, Any]:
    """:data:`Values` from ``glocal eval`` reports keyed by ``(dataset, arm, seed)``."""
    out: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for (dataset, arm, seed), rep in reports.items():
        flat: dict[str, float] = {}
        for model, prefix in (("checkpoint", ""), (RANDOM_INIT, f"{RANDOM_INIT}:")):
            for task, res in (rep.get("metrics", {}).get(model) or {}).items():
                for k, v in res.items():
                    flat[f"{prefix}{task}/{k}"] = float(v)
        out.setdefault(dataset, {}).setdefault(arm, {})[seed] = flat
    return out
