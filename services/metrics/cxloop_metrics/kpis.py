"""The KPIs of a set of buckets: each number with its n and its 95% interval."""

from __future__ import annotations

from dataclasses import dataclass

from cxloop_metrics import stats
from cxloop_metrics.config import KpiConfig
from cxloop_metrics.measures import Totals


@dataclass(frozen=True, slots=True)
class NpsKpi:
    """NPS in points with its parts; `score` and `ci95` are None without answers."""

    score: float | None
    promoters: int
    passives: int
    detractors: int
    n: int
    ci95: tuple[float, float] | None
    estimate: stats.NpsEstimate | None


@dataclass(frozen=True, slots=True)
class CsatKpi:
    """CSAT: top-box share in percent (Wilson interval) and the mean of the 1-5 scale."""

    top2_pct: float | None
    top2: int
    n: int
    ci95: tuple[float, float] | None
    mean: float | None
    mean_ci95: tuple[float, float] | None
    mean_estimate: stats.MeanEstimate | None


@dataclass(frozen=True, slots=True)
class CesKpi:
    """CES: mean of the 1-7 scale (t interval) and the share of easy answers (5-7)."""

    mean: float | None
    n: int
    ci95: tuple[float, float] | None
    high: int
    high_share: float | None
    high_share_ci95: tuple[float, float] | None
    estimate: stats.MeanEstimate | None


@dataclass(frozen=True, slots=True)
class SentimentKpi:
    """Mean sentiment score (-1..1) and the share of negative comments, over commented events."""

    avg: float | None
    avg_ci95: tuple[float, float] | None
    negative: int
    negative_share: float | None
    negative_share_ci95: tuple[float, float] | None
    n: int
    estimate: stats.MeanEstimate | None


@dataclass(frozen=True, slots=True)
class Kpis:
    """Every KPI of one group."""

    responses: int
    nps: NpsKpi
    csat: CsatKpi
    ces: CesKpi
    sentiment: SentimentKpi
    low_sample: bool


def _pct(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if interval is None else (100.0 * interval[0], 100.0 * interval[1])


def nps_kpi(totals: Totals, config: KpiConfig) -> NpsKpi:
    """NPS from the 0-10 histogram and the configured thresholds."""
    promoters = sum(totals.nps[config.nps.promoter_min :])
    detractors = sum(totals.nps[: config.nps.detractor_max + 1])
    n = sum(totals.nps)
    passives = n - promoters - detractors
    estimate = stats.nps(promoters, passives, detractors)
    return NpsKpi(
        score=None if estimate is None else estimate.score,
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        n=n,
        ci95=None if estimate is None else estimate.ci95,
        estimate=estimate,
    )


SENTIMENT_SCALE = (-1.0, 1.0)


def _histogram_mean(counts: list[int], first: int) -> tuple[int, stats.MeanEstimate | None]:
    """n and mean of a histogram of the answers first, first + 1, ...; its interval cut to them."""
    n = sum(counts)
    total = sum((first + i) * c for i, c in enumerate(counts))
    total_sq = sum((first + i) ** 2 * c for i, c in enumerate(counts))
    scale = (float(first), float(first + len(counts) - 1))
    return n, stats.mean_from_sums(n, float(total), float(total_sq), scale=scale)


def csat_kpi(totals: Totals, config: KpiConfig) -> CsatKpi:
    """CSAT top-box share from the 1-5 histogram, and its mean."""
    top2 = sum(totals.csat[config.csat.top_box_min - 1 :])
    n, mean = _histogram_mean(totals.csat, 1)
    return CsatKpi(
        top2_pct=100.0 * top2 / n if n else None,
        top2=top2,
        n=n,
        ci95=_pct(stats.wilson(top2, n)),
        mean=None if mean is None else mean.mean,
        mean_ci95=None if mean is None else mean.ci95,
        mean_estimate=mean,
    )


def ces_kpi(totals: Totals, config: KpiConfig) -> CesKpi:
    """CES mean from the 1-7 histogram, and the share of answers at or above `high_min`."""
    high = sum(totals.ces[config.ces.high_min - 1 :])
    n, mean = _histogram_mean(totals.ces, 1)
    return CesKpi(
        mean=None if mean is None else mean.mean,
        n=n,
        ci95=None if mean is None else mean.ci95,
        high=high,
        high_share=high / n if n else None,
        high_share_ci95=stats.wilson(high, n),
        estimate=mean,
    )


def sentiment_kpi(totals: Totals) -> SentimentKpi:
    """Mean sentiment and negative share over events with a comment."""
    n = totals.sentiment_n
    mean = stats.mean_from_sums(
        n, totals.sentiment_sum, totals.sentiment_sumsq, scale=SENTIMENT_SCALE
    )
    return SentimentKpi(
        avg=None if mean is None else mean.mean,
        avg_ci95=None if mean is None else mean.ci95,
        negative=totals.negative_n,
        negative_share=totals.negative_n / n if n else None,
        negative_share_ci95=stats.wilson(totals.negative_n, n),
        n=n,
        estimate=mean,
    )


def compute_kpis(totals: Totals, config: KpiConfig, *, min_sample: int) -> Kpis:
    """All KPIs of one group; `low_sample` when it has fewer than `min_sample` responses."""
    return Kpis(
        responses=totals.responses,
        nps=nps_kpi(totals, config),
        csat=csat_kpi(totals, config),
        ces=ces_kpi(totals, config),
        sentiment=sentiment_kpi(totals),
        low_sample=totals.responses < min_sample,
    )


@dataclass(frozen=True, slots=True)
class Change:
    """How one KPI moved from a to b, and whether that is beyond sampling noise."""

    a: float | None
    b: float | None
    diff: float | None
    ci95: tuple[float, float] | None
    significant: bool


def _change(a: float | None, b: float | None, d: stats.Difference | None, scale: float) -> Change:
    if d is None:
        diff = None if a is None or b is None else b - a
        return Change(a=a, b=b, diff=diff, ci95=None, significant=False)
    return Change(
        a=a,
        b=b,
        diff=d.diff * scale,
        ci95=(d.ci95[0] * scale, d.ci95[1] * scale),
        significant=d.significant,
    )


def compare_kpis(a: Kpis, b: Kpis) -> dict[str, Change]:
    """Changes of NPS, CSAT top-2 %, CES mean, sentiment mean and negative share from a to b."""
    nps_d = (
        stats.nps_difference(a.nps.estimate, a.nps.n, b.nps.estimate, b.nps.n)
        if a.nps.estimate is not None and b.nps.estimate is not None
        else None
    )
    csat_d = stats.proportion_difference(a.csat.top2, a.csat.n, b.csat.top2, b.csat.n)
    ces_d = (
        stats.mean_difference(a.ces.estimate, a.ces.n, b.ces.estimate, b.ces.n)
        if a.ces.estimate is not None and b.ces.estimate is not None
        else None
    )
    sent_d = (
        stats.mean_difference(
            a.sentiment.estimate, a.sentiment.n, b.sentiment.estimate, b.sentiment.n
        )
        if a.sentiment.estimate is not None and b.sentiment.estimate is not None
        else None
    )
    neg_d = stats.proportion_difference(
        a.sentiment.negative, a.sentiment.n, b.sentiment.negative, b.sentiment.n
    )
    return {
        "nps": _change(a.nps.score, b.nps.score, nps_d, 1.0),
        "csat_top2_pct": _change(a.csat.top2_pct, b.csat.top2_pct, csat_d, 100.0),
        "ces_mean": _change(a.ces.mean, b.ces.mean, ces_d, 1.0),
        "sentiment_avg": _change(a.sentiment.avg, b.sentiment.avg, sent_d, 1.0),
        "negative_share": _change(
            a.sentiment.negative_share, b.sentiment.negative_share, neg_d, 1.0
        ),
    }
