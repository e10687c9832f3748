"""The paired statistics against slow, obvious references: the Student-t tail against numerical
integration of its density and against printed table values; the sign-flip test against an
enumeration written another way."""

from __future__ import annotations

import math
import random

import pytest

from glocal.study.stats import mean_std, paired, sign_flip_p, student_t_sf


def _t_sf_by_integration(t: float, df: int, steps: int = 200_000) -> float:
    """P(T >= t) = 1/2 - integral_0^t of the t density (t >= 0), Simpson's rule."""
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    h = t / steps
    s = f(0) + f(t) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 0.5 - s * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 8, 13])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 6.0])
def test_t_tail_matches_numerical_integration(t, df):
    assert student_t_sf(t, df) == pytest.approx(_t_sf_by_integration(t, df), abs=1e-7)
    assert student_t_sf(-t, df) == pytest.approx(1 - student_t_sf(t, df), abs=1e-12)


@pytest.mark.parametrize("df, t95", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (10, 2.228), (30, 2.042)])
def test_two_sided_critical_values_of_the_t_table(df, t95):
    assert 2 * student_t_sf(t95, df) == pytest.approx(0.05, abs=2e-4)


def _sign_flip_reference(diffs: list[float]) -> float:
    """Count the patterns by building every signed list recursively (no itertools)."""
    def patterns(rest: list[float]) -> list[list[float]]:
        if not rest:
            return [[]]
        tails = patterns(rest[1:])
        return [[rest[0]] + t for t in tails] + [[-rest[0]] + t for t in tails]

    obs = sum(diffs)
    all_ = patterns(list(diffs))
    return sum(1 for p in all_ if sum(p) >= obs - 1e-9) / len(all_)


def test_sign_flip_matches_brute_force():
    rng = random.Random(3)
    for n in range(1, 9):
        for _ in range(5):
            d = [round(rng.gauss(0.1, 0.2), 3) for _ in range(n)]
            assert sign_flip_p(d) == pytest.approx(_sign_flip_reference(d))
    assert sign_flip_p([0.1, 0.2, 0.3]) == 1 / 8  # all positive: only the observed pattern is as large
    assert sign_flip_p([0.1, 0.1, 0.1, -0.1]) == 5 / 16  # ties count as "at least as large"
    assert sign_flip_p([0.0, 0.0]) == 1.0


def test_sign_flip_draws_above_the_exact_limit():
    d = [0.1] * 25
    p = sign_flip_p(d, draws=2000)
    assert 0 < p <= 2 / 2001  # essentially only the observed pattern reaches its mean


def test_paired_difference_se_and_tests():
    r = paired([0.3, 0.5, 0.4], [0.2, 0.3, 0.1])  # diffs 0.1, 0.2, 0.3
    assert r.n == 3 and r.mean == pytest.approx(0.2) and r.se == pytest.approx(0.1 / math.sqrt(3))
    assert r.t == pytest.approx(2 * math.sqrt(3))
    assert r.p_t == pytest.approx(student_t_sf(2 * math.sqrt(3), 2)) and r.p_t < 0.05
    assert r.p_sign == 1 / 8 and r.p_t_worse > 0.95
    same = paired([0.5, 0.5], [0.4, 0.4])  # equal differences: SE 0, t infinite
    assert same.t == math.inf and same.p_t == 0.0
    one = paired([0.5], [0.4])
    assert one.n == 1 and math.isnan(one.se) and math.isnan(one.p_t)
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0])


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([4.0]) == (4.0, 0.0)
