"""Statistics over seeds: mean ± std, the paired difference (mean ± SE), the paired t-test and the
exact sign-flip permutation test. Pure Python (no scipy); the formulas:

* paired differences ``d_i = a_i - b_i`` over the ``n`` seeds both arms ran; ``mean(d)``,
  ``sd(d)`` with ``n - 1`` in the denominator, ``SE = sd / sqrt(n)``;
* paired t-test: ``t = mean / SE`` with ``n - 1`` degrees of freedom; the one-sided p-value
  ``P(T >= t)`` from the Student-t CDF in closed form for integer degrees of freedom
  (Abramowitz & Stegun 26.7.3 / 26.7.4);
* sign-flip permutation test: under "no difference" each ``d_i`` is as likely to be ``-d_i``; the
  one-sided p-value is the share of the ``2^n`` sign patterns whose mean is ``>=`` the observed
  one (exact; the smallest possible p is ``2^-n``, 0.125 for 3 seeds).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Sequence

__all__ = ["mean_std", "student_t_sf", "sign_flip_p", "Paired", "paired"]

#: above this many seeds the sign-flip test draws random patterns instead of enumerating all 2^n
EXACT_MAX_N = 20


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1``; 0.0 for one value)."""
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, sd


def _abs_t_cdf(t: float, df: int) -> float:
    """``P(|T| < t)`` for Student's t with integer ``df >= 1`` and ``t >= 0`` (A&S 26.7.3 / 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 1:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2.4/3.5 cos^4 + ... up to cos^(df-3)))
        if df == 1:
            return 2 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(1, (df - 3) // 2 + 1):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + s * math.cos(theta) * total)
    term, total = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1.3/2.4 cos^4 + ... up to cos^(df-2))
    for k in range(1, (df - 2) // 2 + 1):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return s * total


def student_t_sf(t: float, df: int) -> float:
    """``P(T >= t)`` for Student's t with integer ``df >= 1`` (one-sided upper tail)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    half = 0.5 * (1.0 - _abs_t_cdf(abs(t), df))
    return half if t >= 0 else 1.0 - half


def sign_flip_p(diffs: Sequence[float], seed: int = 0, draws: int = 200_000) -> float:
    """One-sided sign-flip permutation p-value of ``mean(diffs) > 0``: the share of sign patterns
    whose mean is at least the observed one (all ``2^n`` when ``n <= 20``, else ``draws`` random
    ones, the observed pattern counted once)."""
    n = len(diffs)
    if n == 0:
        raise ValueError("no differences")
    observed = sum(diffs)
    tol = 1e-12 * max(1.0, sum(abs(d) for d in diffs))
    if n <= EXACT_MAX_N:
        hits = sum(1 for signs in itertools.product((1, -1), repeat=n)
                   if sum(s * d for s, d in zip(signs, diffs)) >= observed - tol)
        return hits / 2 ** n
    rng = random.Random(seed)
    hits = sum(1 for _ in range(draws) if sum(d if rng.random() < 0.5 else -d for d in diffs) >= observed - tol)
    return (hits + 1) / (draws + 1)


@dataclass(frozen=True)
class Paired:
    """The paired comparison of arm ``a`` with baseline ``b`` over ``n`` common seeds."""

    n: int
    mean: float  # mean of a - b
    se: float  # its standard error (nan for n < 2)
    t: float  # mean / se (inf when every difference is equal and non-zero)
    p_t: float  # one-sided paired t-test p-value of mean > 0 (nan for n < 2)
    p_sign: float  # one-sided exact sign-flip p-value of mean > 0
    p_t_worse: float  # one-sided p-value of mean < 0 (the baseline better)


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """Compare ``a`` with ``b`` seed by seed (equal-length lists, same seeds in the same order)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired samples need the same non-zero length, got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    m, sd = mean_std(d)
    if n < 2:
        nan = float("nan")
        return Paired(n, m, nan, nan, nan, sign_flip_p(d), nan)
    se = sd / math.sqrt(n)
    if se == 0.0:
        t = 0.0 if m == 0 else math.copysign(math.inf, m)
    else:
        t = m / se
    return Paired(n, m, se, t, student_t_sf(t, n - 1), sign_flip_p(d), student_t_sf(-t, n - 1))
