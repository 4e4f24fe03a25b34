"""HTTP API of the metrics service: thin routes over `reports`."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_metrics import reports
from cxloop_metrics.buckets import Interval
from cxloop_metrics.measures import DIMENSIONS
from cxloop_metrics.ranges import ReportError
from cxloop_metrics.reports import Metric, ReportContext, Slice
from cxloop_metrics.repository import Filters
from cxloop_metrics.schemas import ComparisonReport, KpiReport, TimeSeriesReport
from cxruntime.auth import ReadKey
from cxruntime.problems import invalid_parameter as _problem
from cxruntime.problems import problem_response, unknown_parameter
from cxschema import CHANNELS, JOURNEY_STAGES

Window = Literal["1h", "24h", "7d", "28d", "90d"]

_FROM = (
    "start of the range (inclusive); ISO 8601 date or date-time. Without an offset it is a "
    "wall-clock time of CX_METRICS_TIMEZONE, a date its local midnight. Cut to 1970-2099, the "
    "years events can have"
)
_TO = "end of the range (exclusive), read like `from`"

WindowQuery = Annotated[Window | None, Query(description="rolling window ending now (default 7d)")]
FromQuery = Annotated[
    datetime | None, Query(alias="from", description=_FROM + "; instead of `window`")
]
ToQuery = Annotated[datetime | None, Query(description=_TO)]


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def _context(request: Request) -> ReportContext:
    ctx = request.app.state.report_context
    assert isinstance(ctx, ReportContext)
    return ctx


SessionDep = Annotated[AsyncSession, Depends(_session)]
ContextDep = Annotated[ReportContext, Depends(_context)]


def _split(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


CLOSED_SETS: dict[str, tuple[str, ...]] = {"channel": CHANNELS, "journey_stage": JOURNEY_STAGES}
"""Dimensions whose values are fixed by the event contract: a value outside them is a typo,
answered 422 rather than an empty group."""


def _known(field: str, values: frozenset[str], dimension: str | None = None) -> frozenset[str]:
    """`values` of `dimension` (default: `field`), or a 422 naming those outside its set."""
    allowed = CLOSED_SETS.get(dimension or field)
    unknown = sorted(values - set(allowed)) if allowed is not None else []
    if allowed is not None and unknown:
        raise _problem(field, f"unknown {dimension or field} {unknown}; one of {list(allowed)}")
    return values


def install_report_error_handler(app: FastAPI) -> None:
    """Answer a `ReportError` from any endpoint as a 422 problem naming its parameter."""

    async def on_report_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ReportError)
        return problem_response(_problem(exc.field, str(exc)), request.url.path)

    app.add_exception_handler(ReportError, on_report_error)


def _only(*names: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """A dependency refusing query parameters other than `names`, and any given twice.

    Either would otherwise be ignored without a word (FastAPI drops unknown parameters and
    keeps the last of repeated ones), and a misspelt filter would answer for everything. It
    checks the key first, so a caller without one learns nothing about the parameters.
    """
    allowed = frozenset(names)

    async def check(request: Request, _key: ReadKey) -> None:
        counts = Counter(key[:100] for key, _ in request.query_params.multi_items())
        for key, count in counts.items():
            if key not in allowed:
                raise unknown_parameter(key, allowed)
            if count > 1:
                raise _problem(key, f"give `{key}` once; separate several values with commas")

    return check


class SliceParams:
    """Query parameters shared by every KPI endpoint: grouping and filters."""

    def __init__(
        self,
        *,
        ctx: ContextDep,
        group_by: Annotated[
            str | None,
            Query(description="up to two of: " + ", ".join(DIMENSIONS), examples=["touchpoint"]),
        ] = None,
        touchpoint: Annotated[
            str | None, Query(description="comma-separated; includes descendants")
        ] = None,
        channel: Annotated[str | None, Query(description="comma-separated")] = None,
        journey_stage: Annotated[str | None, Query(description="comma-separated")] = None,
        region: Annotated[str | None, Query(description="comma-separated")] = None,
        segment: Annotated[str | None, Query(description="comma-separated")] = None,
        touchpoint_level: Annotated[
            int | None,
            Query(ge=1, le=10, description="roll touchpoints up to this taxonomy depth (1=root)"),
        ] = None,
    ) -> None:
        dims = [d.strip() for d in (group_by or "").split(",") if d.strip()]
        unknown = [d for d in dims if d not in DIMENSIONS]
        if unknown:
            raise _problem("group_by", f"unknown dimension(s) {unknown}; use {list(DIMENSIONS)}")
        if len(dims) > 2 or len(set(dims)) != len(dims):
            raise _problem("group_by", "group by at most two distinct dimensions")
        if touchpoint_level is not None and "touchpoint" not in dims:
            raise _problem(
                "touchpoint_level",
                "`touchpoint_level` rolls up groups: it needs group_by=touchpoint",
            )
        tps = _split(touchpoint)
        children = set()
        for tp in tps:
            children |= ctx.config.taxonomy.children_of(tp)
        self.slice = Slice(
            group_by=tuple(dims),
            filters=Filters(
                values={
                    "touchpoint": frozenset(tps | children),
                    "channel": _known("channel", _split(channel)),
                    "journey_stage": _known("journey_stage", _split(journey_stage)),
                    "region": _split(region),
                    "segment": _split(segment),
                },
                touchpoint_subtrees=frozenset(tps | children),
            ),
            touchpoint_level=touchpoint_level,
        )


SliceDep = Annotated[SliceParams, Depends()]
SLICE_PARAMETERS = (
    "group_by",
    "touchpoint",
    "channel",
    "journey_stage",
    "region",
    "segment",
    "touchpoint_level",
)


def _no_window_with_range(window: str | None, start: datetime | None, end: datetime | None) -> None:
    if window is not None and (start is not None or end is not None):
        raise _problem("window", "give either a `window` or `from` and `to`, not both")


def _json(report: BaseModel) -> Response:
    """The report as JSON; it is built and validated already, so FastAPI need not redo it."""
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")


router = APIRouter(prefix="/v1/kpis", tags=["kpis"])


@router.get(
    "",
    response_model=KpiReport,
    response_model_by_alias=True,
    summary="KPIs per group",
    dependencies=[Depends(_only(*SLICE_PARAMETERS, "window", "from", "to"))],
)
async def get_kpis(
    *,
    _key: ReadKey,
    session: SessionDep,
    ctx: ContextDep,
    params: SliceDep,
    window: WindowQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Response:
    """NPS, CSAT, CES and sentiment, each with its n and 95% interval, per group.

    Counted by `occurred_at`. `from`/`to` in the answer are the range actually covered: older
    parts are answered from hour or day buckets, so an old `from` is moved back to the hour or
    the local day.
    """
    _no_window_with_range(window, from_, to)
    return _json(
        await reports.kpi_report(session, ctx, window=window, start=from_, end=to, sl=params.slice)
    )


@router.get(
    "/timeseries",
    response_model=TimeSeriesReport,
    response_model_by_alias=True,
    summary="One KPI over time",
    dependencies=[Depends(_only(*SLICE_PARAMETERS, "metric", "interval", "from", "to"))],
)
async def get_timeseries(
    *,
    _key: ReadKey,
    session: SessionDep,
    ctx: ContextDep,
    params: SliceDep,
    metric: Metric = "nps",
    interval: Interval = "day",
    from_: Annotated[datetime | None, Query(alias="from", description=_FROM)] = None,
    to: Annotated[datetime | None, Query(description=_TO + "; default now")] = None,
) -> Response:
    """A KPI per local hour, day, week (from Monday) or month of CX_METRICS_TIMEZONE.

    Every interval in the range is listed (n = 0 and value null where nothing was counted), so
    gaps show; a range in the future lists empty intervals too. Default range: 48 hours, 28
    days, 12 weeks or a year back from `to`, which defaults to now. At most 2000 points.
    """
    return _json(
        await reports.timeseries_report(
            session,
            ctx,
            metric=metric,
            interval=interval,
            start=from_,
            end=to,
            sl=params.slice,
        )
    )


@router.get(
    "/compare",
    response_model=ComparisonReport,
    response_model_by_alias=True,
    summary="Compare two periods or two segments",
    dependencies=[Depends(_only(*SLICE_PARAMETERS, "window", "from", "to", "dimension", "a", "b"))],
)
async def get_compare(
    *,
    _key: ReadKey,
    session: SessionDep,
    ctx: ContextDep,
    params: SliceDep,
    window: WindowQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    dimension: Annotated[
        str | None,
        Query(description="segment mode: the dimension whose values `a` and `b` compare"),
    ] = None,
    a: Annotated[str | None, Query(description="segment mode: value(s) of side a")] = None,
    b: Annotated[str | None, Query(description="segment mode: value(s) of side b")] = None,
) -> Response:
    """Each KPI's change with its 95% interval and a significance flag.

    Period mode (no `dimension`): the window, or `from`-`to`, against the period of the same
    length just before it (a = previous, b = current); both are aligned to the minute, hour or
    local midnight that the older one's buckets allow, so they adjoin exactly. Segment mode:
    `dimension=channel&a=web&b=app` compares two slices over the same window or range. NPS
    differences use the adjusted-Wald method, proportions Newcombe's score interval and means
    Welch's t; significant means the interval excludes 0.
    """
    _no_window_with_range(window, from_, to)
    sl = params.slice
    if dimension is None:
        if a is not None or b is not None:
            raise _problem("dimension", "`a` and `b` name values of a `dimension`: give it too")
        sides: tuple[Slice, Slice | None, str, str] = (sl, None, "previous", "current")
    else:
        sides = _segments(sl, dimension, a, b)
    a_slice, b_slice, a_label, b_label = sides
    return _json(
        await reports.compare_report(
            session,
            ctx,
            window=window,
            start=from_,
            end=to,
            sl=a_slice,
            b_slice=b_slice,
            a_label=a_label,
            b_label=b_label,
        )
    )


def _segments(
    sl: Slice, dimension: str, a: str | None, b: str | None
) -> tuple[Slice, Slice, str, str]:
    """The two slices (and labels) of segment mode: `sl` with `dimension` cut to `a`, to `b`."""
    if dimension not in DIMENSIONS:
        raise _problem("dimension", f"unknown dimension {dimension!r}; use {list(DIMENSIONS)}")
    if dimension in sl.group_by:
        raise _problem("dimension", "do not group by the dimension being compared")
    a_values, b_values = _known("a", _split(a), dimension), _known("b", _split(b), dimension)
    for name, values in (("a", a_values), ("b", b_values)):
        if not values:
            raise _problem(
                name, f"segment mode needs values for both `a` and `b`; `{name}` has none"
            )

    def side(values: frozenset[str]) -> Slice:
        filters = dict(sl.filters.values)
        filters[dimension] = values
        subtrees = sl.filters.touchpoint_subtrees
        if dimension == "touchpoint":
            subtrees = values
        return Slice(
            group_by=sl.group_by,
            filters=Filters(values=filters, touchpoint_subtrees=subtrees),
            touchpoint_level=sl.touchpoint_level,
        )

    return side(a_values), side(b_values), ",".join(sorted(a_values)), ",".join(sorted(b_values))
