"""Response bodies of the KPI API (pydantic, for validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cxloop_metrics.kpis import Change, Kpis

Interval95 = tuple[float, float] | None


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class NpsOut(_Out):
    """NPS in points (-100..100); ci95 by the adjusted-Wald method (Rocks 2016).

    The interval is centred on the adjusted estimate, so at small n the score can lie outside
    it (one detractor: -100 with ci95 [-98.5, 48.5]); `low_sample` flags such groups.
    """

    score: float | None
    promoters: int
    passives: int
    detractors: int
    n: int
    ci95: Interval95


class CsatOut(_Out):
    """CSAT top-2-box percentage (Wilson ci95 in percent) and the 1-5 mean (t interval, cut to
    1-5)."""

    top2_pct: float | None
    n: int
    ci95: Interval95
    mean: float | None
    mean_ci95: Interval95


class CesOut(_Out):
    """CES mean on the 1-7 scale (t ci95, cut to 1-7) and the share of answers 5-7 (Wilson)."""

    mean: float | None
    n: int
    ci95: Interval95
    high_share: float | None
    high_share_ci95: Interval95


class SentimentOut(_Out):
    """Mean sentiment (-1..1, its t ci95 cut to that) and share of negative comments, over
    commented events."""

    avg: float | None
    avg_ci95: Interval95
    negative_share: float | None
    negative_share_ci95: Interval95
    n: int


class KpiGroup(_Out):
    """The KPIs of one group, with the flat aliases of SPEC.md."""

    key: dict[str, str | None]
    responses: int
    nps: NpsOut
    csat: CsatOut
    ces: CesOut
    sentiment: SentimentOut
    low_sample: bool = Field(description="fewer responses than CX_METRICS_MIN_SAMPLE")
    nps_ci95: Interval95
    csat_ci95: Interval95
    ces_ci95: Interval95
    sentiment_avg: float | None
    negative_share: float | None


class KpiReport(_Out):
    """GET /v1/kpis."""

    model_config = ConfigDict(populate_by_name=True)

    window: str | None
    from_: datetime = Field(alias="from")
    to: datetime
    timezone: str
    min_sample: int
    groups: list[KpiGroup]


class SeriesPoint(_Out):
    """One interval of a time series."""

    start: datetime
    end: datetime
    value: float | None
    n: int
    ci95: Interval95
    low_sample: bool


class Series(_Out):
    """The points of one group."""

    key: dict[str, str | None]
    points: list[SeriesPoint]


class TimeSeriesReport(_Out):
    """GET /v1/kpis/timeseries."""

    metric: str
    interval: str
    timezone: str
    from_: datetime = Field(alias="from")
    to: datetime
    series: list[Series]


class ChangeOut(_Out):
    """b minus a, its 95% interval and whether the interval excludes zero."""

    a: float | None
    b: float | None
    diff: float | None
    ci95: Interval95
    significant: bool


class Side(_Out):
    """One side of a comparison: its label, range and filters."""

    label: str
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, list[str]]


class ComparedGroup(_Out):
    """Both sides' KPIs of one group and the change of each KPI."""

    key: dict[str, str | None]
    a: KpiGroup
    b: KpiGroup
    changes: dict[str, ChangeOut]


class ComparisonReport(_Out):
    """GET /v1/kpis/compare."""

    mode: str
    window: str | None
    a: Side
    b: Side
    groups: list[ComparedGroup]


def _key_out(key: dict[str, str]) -> dict[str, str | None]:
    return {k: (v or None) for k, v in key.items()}


def kpi_group(key: dict[str, str], k: Kpis) -> KpiGroup:
    """The API form of one group's KPIs.

    Built with `model_construct`: every value comes typed from `compute_kpis`, and validating
    hundreds of nested models per report cost more than the query.
    """
    return KpiGroup.model_construct(
        key=_key_out(key),
        responses=k.responses,
        nps=NpsOut.model_construct(
            score=k.nps.score,
            promoters=k.nps.promoters,
            passives=k.nps.passives,
            detractors=k.nps.detractors,
            n=k.nps.n,
            ci95=k.nps.ci95,
        ),
        csat=CsatOut.model_construct(
            top2_pct=k.csat.top2_pct,
            n=k.csat.n,
            ci95=k.csat.ci95,
            mean=k.csat.mean,
            mean_ci95=k.csat.mean_ci95,
        ),
        ces=CesOut.model_construct(
            mean=k.ces.mean,
            n=k.ces.n,
            ci95=k.ces.ci95,
            high_share=k.ces.high_share,
            high_share_ci95=k.ces.high_share_ci95,
        ),
        sentiment=SentimentOut.model_construct(
            avg=k.sentiment.avg,
            avg_ci95=k.sentiment.avg_ci95,
            negative_share=k.sentiment.negative_share,
            negative_share_ci95=k.sentiment.negative_share_ci95,
            n=k.sentiment.n,
        ),
        low_sample=k.low_sample,
        nps_ci95=k.nps.ci95,
        csat_ci95=k.csat.ci95,
        ces_ci95=k.ces.ci95,
        sentiment_avg=k.sentiment.avg,
        negative_share=k.sentiment.negative_share,
    )


def change_out(c: Change) -> ChangeOut:
    """The API form of a KPI change."""
    return ChangeOut(a=c.a, b=c.b, diff=c.diff, ci95=c.ci95, significant=c.significant)
