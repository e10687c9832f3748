"""The verdict rules: holds / does not hold / inconclusive, per dataset and over datasets."""

from __future__ import annotations

import pytest

from glocal.study.verdict import HOLDS, INCONCLUSIVE, NOT, NOT_RUN, judge, values_from_reports


def _values(arms: dict[str, list[float]], dataset: str = "w", random: float = 0.1) -> dict:
    return {dataset: {arm: {s: {"linear/top1": v, "retrieval/R@1": v, "random_init:linear/top1": random}
                            for s, v in enumerate(vs)} for arm, vs in arms.items()}}


def _verdicts(cfg, values) -> dict[str, str]:
    return {r.claim.name: r.verdict for r in judge(cfg, values)}


def test_clearly_better_holds_worse_does_not_hold(study_cfg):
    cfg = study_cfg()
    v = _verdicts(cfg, _values({"good": [0.6, 0.61, 0.63], "plain": [0.4, 0.42, 0.41], "bad": [0.2, 0.25, 0.22]}))
    assert v == {"good_wins": HOLDS, "bad_wins": NOT, "good_vs_random": HOLDS}


def test_better_on_average_but_noisy_is_inconclusive(study_cfg):
    # diffs +0.3, -0.1, +0.1: mean +0.1, p(t) = 0.23
    v = _verdicts(study_cfg(), _values({"good": [0.7, 0.3, 0.5], "plain": [0.4, 0.4, 0.4], "bad": [0.4, 0.4, 0.4]}))
    assert v["good_wins"] == INCONCLUSIVE and v["bad_wins"] == NOT  # bad: mean difference 0 -> not better


def test_one_deciding_metric_worse_means_does_not_hold(study_cfg):
    values = _values({"good": [0.6, 0.61, 0.63], "plain": [0.4, 0.42, 0.41], "bad": [0.2, 0.2, 0.2]})
    for s, run in values["w"]["good"].items():
        run["retrieval/R@1"] = 0.1 + 0.01 * s  # good loses on retrieval
    assert _verdicts(study_cfg(), values)["good_wins"] == NOT


def test_too_few_seeds_or_missing_results_are_inconclusive(study_cfg):
    two = _values({"good": [0.6, 0.7], "plain": [0.1, 0.2], "bad": [0.0, 0.0]})
    v = _verdicts(study_cfg(), two)
    assert v["good_wins"] == INCONCLUSIVE and v["good_vs_random"] == INCONCLUSIVE
    missing = _values({"good": [0.6, 0.61, 0.63], "bad": [0.2, 0.2, 0.2]})  # plain never finished
    assert _verdicts(study_cfg(), missing)["good_wins"] == NOT_RUN  # no pair to compare at all
    one_metric = _values({"good": [0.6, 0.61, 0.63], "plain": [0.4, 0.42, 0.41], "bad": [0.2, 0.2, 0.2]})
    for run in one_metric["w"]["plain"].values():
        del run["retrieval/R@1"]  # one comparison without results, the other holds
    assert _verdicts(study_cfg(), one_metric)["good_wins"] == INCONCLUSIVE
    # with 2 seeds allowed, the same results hold
    assert _verdicts(study_cfg(min_seeds=2), two)["good_wins"] == HOLDS


def test_verdict_over_datasets(study_cfg):
    cfg = study_cfg(data={"w": "data/world", "r": "data/rp_big"})
    win = _values({"good": [0.6, 0.61, 0.63], "plain": [0.4, 0.42, 0.41], "bad": [0.2, 0.2, 0.2]}, "w")
    lose = _values({"good": [0.3, 0.31, 0.33], "plain": [0.4, 0.42, 0.41], "bad": [0.2, 0.2, 0.2]}, "r")
    res = {r.claim.name: r for r in judge(cfg, {**win, **lose})}
    assert res["good_wins"].per_dataset == {"w": HOLDS, "r": NOT} and res["good_wins"].verdict == INCONCLUSIVE
    both = {**win, "r": win["w"]}
    assert _verdicts(cfg, both)["good_wins"] == HOLDS
    only_w = {r.claim.name: r for r in judge(cfg, win)}["good_wins"]  # r not run (yet, or not selected)
    assert only_w.per_dataset == {"w": HOLDS, "r": NOT_RUN} and only_w.verdict == INCONCLUSIVE


def test_values_from_eval_reports():
    rep = {"metrics": {"checkpoint": {"linear": {"top1": 0.5}}, "random_init": {"linear": {"top1": 0.2}}}}
    v = values_from_reports({("w", "good", 1): rep})
    assert v == {"w": {"good": {1: {"linear/top1": 0.5, "random_init:linear/top1": 0.2}}}}


@pytest.mark.parametrize("alpha, verdict", [(0.05, HOLDS), (0.001, HOLDS), (0.0005, INCONCLUSIVE)])
def test_alpha_is_the_study_s(study_cfg, alpha, verdict):
    # diffs 0.2, 0.19, 0.22: t = 23.1, p(t) = 0.00094
    v = _verdicts(study_cfg(alpha=alpha), _values({"good": [0.6, 0.61, 0.63], "plain": [0.4, 0.42, 0.41],
                                                   "bad": [0.2, 0.2, 0.2]}))
    assert v["good_wins"] == verdict
