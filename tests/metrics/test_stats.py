"""The interval and comparison math against published worked examples and hand computations."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from cxloop_metrics import stats


@pytest.mark.parametrize(
    ("successes", "n", "lo", "hi"),
    [
        # Newcombe RG (1998). Two-sided confidence intervals for the single proportion:
        # comparison of seven methods. Statistics in Medicine 17:857-872, Table II, method 3
        # (Wilson score interval without continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998(successes: int, n: int, lo: float, hi: float) -> None:
    interval = stats.wilson(successes, n)
    assert interval is not None
    assert interval[0] == pytest.approx(lo, abs=5e-5)
    assert interval[1] == pytest.approx(hi, abs=5e-5)


def test_wilson_agrees_with_scipy_and_handles_no_data() -> None:
    for k, n in [(3, 7), (40, 40), (512, 1000)]:
        ci = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        ours = stats.wilson(k, n)
        assert ours is not None
        assert ours[0] == pytest.approx(ci.low, abs=1e-9)
        assert ours[1] == pytest.approx(ci.high, abs=1e-9)
    assert stats.wilson(0, 0) is None
    # No rounding dust at the ends: exactly 0 and 1, as shown to a user.
    none_of_three, all_of_three = stats.wilson(0, 3), stats.wilson(3, 3)
    assert none_of_three is not None
    assert all_of_three is not None
    assert none_of_three[0] == 0.0
    assert all_of_three[1] == 1.0


def test_nps_adjusted_wald_by_hand() -> None:
    # Rocks B (2016). Interval estimation for the "Net Promoter Score". The American
    # Statistician 70(4):365-372: add 3/4 to promoters and detractors and 3 to n.
    # 50 promoters, 30 passives, 20 detractors: NPS = 50% - 20% = 30.
    # n' = 103, p+ = 50.75/103 = 0.4927184, p- = 20.75/103 = 0.2014563,
    # NPS' = 0.2912621, var = (0.4927184 + 0.2014563 - 0.2912621^2) / 103 = 0.00591594,
    # half = 1.959964 * sqrt(0.00591594) = 0.1507501 -> [14.0512, 44.2012].
    est = stats.nps(50, 30, 20)
    assert est is not None
    assert est.score == pytest.approx(30.0)
    assert est.ci95[0] == pytest.approx(14.0512, abs=1e-3)
    assert est.ci95[1] == pytest.approx(44.2012, abs=1e-3)


def test_nps_interval_stays_within_scale_and_exists_for_one_answer() -> None:
    est = stats.nps(1, 0, 0)
    assert est is not None
    assert est.score == 100.0
    # n' = 4, p+ = 0.4375, p- = 0.1875, NPS' = 0.25, var = (0.625 - 0.0625) / 4 = 0.140625,
    # half = 1.959964 * 0.375 = 0.7349865 -> [-48.50, 98.50]: the observed 100 lies outside
    # (see docs/metrics.md; the method is Rocks' as published, and low_sample flags it).
    assert est.ci95[0] == pytest.approx(-48.4987, abs=1e-3)
    assert est.ci95[1] == pytest.approx(98.4987, abs=1e-3)
    assert not est.ci95[0] <= est.score <= est.ci95[1]
    extreme = stats.nps(10_000, 0, 0)
    assert extreme is not None
    assert -100.0 <= extreme.ci95[0] <= extreme.ci95[1] <= 100.0
    assert stats.nps(0, 0, 0) is None


def test_t_quantiles_match_scipy() -> None:
    for df in [1, 2, 5, 10, 29, 30]:
        assert stats.t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-8)
    for df in [30.5, 31, 45, 120, 10_000]:
        assert stats.t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-6)
    # Welch's fractional df: the quantile of that df itself, not of a neighbour.
    for df in [1.01, 1.5, 2.25, 4.7, 9.99, 17.3, 29.9]:
        assert stats.t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-8)


def test_mean_t_interval_by_hand() -> None:
    # CES answers 4, 5, 6, 7, 3: mean 5, sample sd sqrt(2.5) = 1.5811388,
    # half = t(0.975, 4) * 1.5811388 / sqrt(5) = 2.7764451 * 0.7071068 = 1.9632432.
    values = [4, 5, 6, 7, 3]
    est = stats.mean_from_sums(5, float(sum(values)), float(sum(v * v for v in values)))
    assert est is not None
    assert est.mean == 5.0
    assert est.sd == pytest.approx(math.sqrt(2.5))
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(5 - 1.9632432, abs=1e-6)
    assert est.ci95[1] == pytest.approx(5 + 1.9632432, abs=1e-6)
    single = stats.mean_from_sums(1, 6.0, 36.0)
    assert single is not None
    assert single.ci95 is None
    # With a scale the interval is cut to it: answers 6 and 7 give 6.5 +/- 12.706 * 0.5.
    scaled = stats.mean_from_sums(2, 13.0, 85.0, scale=(1.0, 7.0))
    assert scaled is not None
    assert scaled.ci95 == (1.0, 7.0)
    # An interval inside the scale stays as it is.
    inside = stats.mean_from_sums(5, float(sum(values)), 135.0, scale=(1.0, 7.0))
    assert inside is not None
    assert inside.ci95 == est.ci95


def test_clip_cuts_an_interval_to_bounds() -> None:
    assert stats.clip((-0.5, 8.2), (1.0, 7.0)) == (1.0, 7.0)
    assert stats.clip((2.0, 3.0), (1.0, 7.0)) == (2.0, 3.0)
    assert stats.clip((7.5, 9.0), (1.0, 7.0)) == (7.0, 7.0)


@pytest.mark.parametrize(
    ("a", "b", "lo", "hi"),
    [
        # Newcombe RG (1998). Interval estimation for the difference between independent
        # proportions: comparison of eleven methods. Statistics in Medicine 17:873-890,
        # Table II, method 10 (hybrid score interval).
        ((48, 80), (56, 70), 0.0524, 0.3339),
        ((0, 10), (9, 10), 0.4882, 0.9821),
    ],
)
def test_proportion_difference_matches_newcombe_1998(
    a: tuple[int, int], b: tuple[int, int], lo: float, hi: float
) -> None:
    d = stats.proportion_difference(a[0], a[1], b[0], b[1])
    assert d is not None
    # Published to four decimals.
    assert d.ci95[0] == pytest.approx(lo, abs=1e-4)
    assert d.ci95[1] == pytest.approx(hi, abs=1e-4)
    assert d.significant


def test_nps_difference_by_hand() -> None:
    # a: 50/30/20 (adjusted 0.2912621, var 0.00591594); b: 30/30/40, n' = 103,
    # p+ = 30.75/103 = 0.2985437, p- = 40.75/103 = 0.3956311, NPS' = -0.0970874,
    # var = (0.6941748 - 0.0094260) / 103 = 0.00664805.
    # diff' = -0.3883495, half = 1.959964 * sqrt(0.01256399) = 0.2196925
    # -> [-60.804, -16.866]; the raw difference is -10 - 30 = -40 points.
    a = stats.nps(50, 30, 20)
    b = stats.nps(30, 30, 40)
    assert a is not None
    assert b is not None
    d = stats.nps_difference(a, 100, b, 100)
    assert d is not None
    assert d.diff == pytest.approx(-40.0)
    assert d.ci95[0] == pytest.approx(-60.804, abs=1e-2)
    assert d.ci95[1] == pytest.approx(-16.866, abs=1e-2)
    assert d.significant
    same = stats.nps_difference(a, 100, a, 100)
    assert same is not None
    assert not same.significant


def test_welch_difference_agrees_with_scipy() -> None:
    xs = [5, 6, 7, 5, 6, 7, 6, 5, 7, 6, 4, 6]
    ys = [3, 4, 5, 4, 3, 5, 4, 2, 5, 4]

    def est(v: list[int]) -> stats.MeanEstimate:
        e = stats.mean_from_sums(len(v), float(sum(v)), float(sum(x * x for x in v)))
        assert e is not None
        return e

    d = stats.mean_difference(est(xs), len(xs), est(ys), len(ys))
    assert d is not None
    result = scipy_stats.ttest_ind(ys, xs, equal_var=False)
    ci = result.confidence_interval(0.95)
    assert d.diff == pytest.approx(sum(ys) / len(ys) - sum(xs) / len(xs))
    assert d.ci95[0] == pytest.approx(ci.low, abs=1e-9)
    assert d.ci95[1] == pytest.approx(ci.high, abs=1e-9)
    assert d.significant == (result.pvalue < 0.05)
