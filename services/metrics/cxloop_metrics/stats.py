"""Interval estimates and two-sample comparisons for the KPIs; pure functions, 95% level.

- NPS: adjusted-Wald interval (Rocks 2016, "Interval estimation for the Net Promoter Score",
  The American Statistician 70(4)): add 3/4 to promoters and to detractors and 3 to n, then a
  Wald interval on the difference of the two proportions.
- Proportions (CSAT top-2-box, CES high share, negative share): Wilson score interval
  (Wilson 1927); differences by Newcombe's hybrid score interval (Newcombe 1998, method 10).
- Means (CES, CSAT mean, sentiment): Student t interval; differences by Welch's t.

Every interval is cut to the values its estimate can take: a mean of a 1-7 scale cannot lie
outside 1..7, nor a difference of two NPS outside -200..200, although the normal and t
approximations at small n reach beyond (the point estimate always stays inside the cut
interval, and cutting never changes whether a difference interval excludes 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
"""The 97.5% quantile of the standard normal distribution."""

# t(0.975, df) for df = 1..30 (scipy.stats.t.ppf, 9 digits); beyond 30 a Cornish-Fisher series.
_T975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)

Interval = tuple[float, float]


def clip(interval: Interval, bounds: Interval) -> Interval:
    """`interval` cut to `bounds`."""
    lo, hi = bounds
    return (min(max(interval[0], lo), hi), max(min(interval[1], hi), lo))


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (df >= 1).

    Tabulated for whole df up to 30; a fractional df up to 30 (Welch's) is solved from the
    distribution function between its two neighbours in the table; beyond 30 the
    Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5; error below 1e-6 there).
    """
    if df < 1:
        raise ValueError("df must be at least 1")
    if df <= 30:
        whole = math.floor(df)
        if whole == df:
            return _T975[whole - 1]
        # The quantile falls as df grows: it lies between the neighbours' (bisection).
        low, high = _T975[whole], _T975[whole - 1]
        for _ in range(60):
            middle = (low + high) / 2
            if _t_upper_tail(middle, df) > 0.025:
                low = middle
            else:
                high = middle
        return (low + high) / 2
    z = Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0: half the regularised incomplete beta I_x(df/2, 1/2) at
    x = df / (df + t^2)."""
    return 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction
    (modified Lentz; Numerical Recipes 6.4), on the side where it converges fast."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def wilson(successes: int, n: int) -> Interval | None:
    """Wilson score interval of a proportion, as fractions in [0, 1]; None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    z2 = Z95 * Z95
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 (or n) successes the bound is exactly 0 (or 1); the formula leaves rounding dust.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True, slots=True)
class NpsEstimate:
    """NPS in points (-100..100) with its adjusted-Wald interval and the adjusted variance."""

    score: float
    ci95: Interval
    variance: float
    """Variance of the adjusted estimate, in squared fractions (for comparisons)."""
    adjusted: float
    """The adjusted point estimate (fraction), the centre of the interval."""


def nps(promoters: int, passives: int, detractors: int) -> NpsEstimate | None:
    """NPS and its adjusted-Wald 95% interval (Rocks 2016); None without responses."""
    n = promoters + passives + detractors
    if n <= 0:
        return None
    n_adj = n + 3
    p_pro = (promoters + 0.75) / n_adj
    p_det = (detractors + 0.75) / n_adj
    centre = p_pro - p_det
    variance = (p_pro + p_det - centre * centre) / n_adj
    half = Z95 * math.sqrt(variance)
    lo = max(-1.0, centre - half)
    hi = min(1.0, centre + half)
    return NpsEstimate(
        score=100.0 * (promoters - detractors) / n,
        ci95=(100.0 * lo, 100.0 * hi),
        variance=variance,
        adjusted=centre,
    )


@dataclass(frozen=True, slots=True)
class MeanEstimate:
    """A sample mean with its standard deviation and t interval (None below two values)."""

    mean: float
    sd: float | None
    ci95: Interval | None
    scale: Interval | None = None
    """The lowest and highest value an answer can take, if bounded; the interval is cut to it."""


def mean_from_sums(
    n: int, total: float, total_sq: float, *, scale: Interval | None = None
) -> MeanEstimate | None:
    """Mean, sample standard deviation and t interval from n, sum and sum of squares.

    With `scale` (the answers' lowest and highest possible value) the interval is cut to it.
    """
    if n <= 0:
        return None
    mean = total / n
    if n == 1:
        return MeanEstimate(mean=mean, sd=None, ci95=None, scale=scale)
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    sd = math.sqrt(variance)
    half = t975(n - 1) * sd / math.sqrt(n)
    ci95 = (mean - half, mean + half)
    return MeanEstimate(
        mean=mean, sd=sd, ci95=ci95 if scale is None else clip(ci95, scale), scale=scale
    )


@dataclass(frozen=True, slots=True)
class Difference:
    """b minus a, with its 95% interval; significant when the interval excludes zero."""

    diff: float
    ci95: Interval
    significant: bool


def _difference(diff: float, lo: float, hi: float, bounds: Interval | None = None) -> Difference:
    ci95 = (lo, hi) if bounds is None else clip((lo, hi), bounds)
    return Difference(diff=diff, ci95=ci95, significant=lo > 0 or hi < 0)


def nps_difference(a: NpsEstimate, n_a: int, b: NpsEstimate, n_b: int) -> Difference | None:
    """Change of NPS from a to b in points, by the adjusted-Wald method for two samples.

    Each sample adjusted as in `nps`; the interval of the difference is the adjusted difference
    plus or minus z times the root of the summed variances (Sauro & Lewis, "Quantifying the User
    Experience", 2nd ed. 2016, on comparing two Net Promoter Scores).
    """
    if n_a <= 0 or n_b <= 0:
        return None
    centre = b.adjusted - a.adjusted
    half = Z95 * math.sqrt(a.variance + b.variance)
    return _difference(
        b.score - a.score, 100.0 * (centre - half), 100.0 * (centre + half), (-200.0, 200.0)
    )


def proportion_difference(x_a: int, n_a: int, x_b: int, n_b: int) -> Difference | None:
    """p_b - p_a with Newcombe's hybrid score interval (Newcombe 1998, method 10), fractions."""
    wa = wilson(x_a, n_a)
    wb = wilson(x_b, n_b)
    if wa is None or wb is None:
        return None
    p_a, p_b = x_a / n_a, x_b / n_b
    l_a, u_a = wa
    l_b, u_b = wb
    diff = p_b - p_a
    lo = diff - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2)
    hi = diff + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2)
    return _difference(diff, lo, hi)


def mean_difference(a: MeanEstimate, n_a: int, b: MeanEstimate, n_b: int) -> Difference | None:
    """mean_b - mean_a with Welch's t interval (Welch-Satterthwaite degrees of freedom).

    When both estimates carry a scale, the interval is cut to the differences the two scales
    allow (for two 1-7 means, -6..6).
    """
    if a.sd is None or b.sd is None or n_a < 2 or n_b < 2:
        return None
    va = a.sd * a.sd / n_a
    vb = b.sd * b.sd / n_b
    diff = b.mean - a.mean
    se2 = va + vb
    if se2 == 0:
        return Difference(diff=diff, ci95=(diff, diff), significant=diff != 0)
    df = se2 * se2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1))
    half = t975(max(1.0, df)) * math.sqrt(se2)
    bounds = None
    if a.scale is not None and b.scale is not None:
        bounds = (b.scale[0] - a.scale[1], b.scale[1] - a.scale[0])
    return _difference(diff, diff - half, diff + half, bounds)
