"""SQL of the metrics service. Functions take a session and never commit: the caller owns the
transaction (the consumer puts dedup, buckets and offsets in one)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_metrics.buckets import Coverage, Grain, with_weeks
from cxloop_metrics.measures import COUNT_COLUMNS, DIMENSIONS, MEASURES, SUM_COLUMNS, Totals
from cxloop_metrics.orm import BUCKET_TABLES, CUBES, ConsumerOffset, MetaSetting, SeenEvent

# --------------------------------------------------------------------------------------------
# Ingest


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event reduced to what the buckets need."""

    uid: str
    """`cxschema.feedback_uid`: 32 hex digits, stored as a UUID."""
    minute: datetime | None
    """None when the event is later than the lateness: then it skips the minute buckets."""
    hour: datetime | None
    """None when its hour is older than the hour retention."""
    day: datetime
    week: datetime
    touchpoint: str
    channel: str
    journey_stage: str
    region: str
    segment: str
    nps: int | None
    csat: int | None
    ces: int | None
    sentiment: float | None
    """The sentiment score of a commented event; None without a comment."""
    negative: bool


_EVENT_COLUMNS: Final = (
    ("uid", "uuid"),
    ("minute", "timestamptz"),
    ("hour", "timestamptz"),
    ("day", "timestamptz"),
    ("week", "timestamptz"),
    ("tp", "text"),
    ("ch", "text"),
    ("js", "text"),
    ("rg", "text"),
    ("sg", "text"),
    ("nps", "int"),
    ("csat", "int"),
    ("ces", "int"),
    ("sent", "float8"),
    ("neg", "bool"),
)

_MEASURE_EXPRESSIONS: Final = (
    "count(*)",
    *(f"count(*) FILTER (WHERE nps = {s})" for s in range(11)),
    *(f"count(*) FILTER (WHERE csat = {s})" for s in range(1, 6)),
    *(f"count(*) FILTER (WHERE ces = {s})" for s in range(1, 8)),
    "count(sent)",
    "count(*) FILTER (WHERE neg)",
    "coalesce(sum(sent), 0)",
    "coalesce(sum(sent * sent), 0)",
)
_KEY: Final = "cube, bucket_start, " + ", ".join(DIMENSIONS)


def _upsert_cte(grain: Grain) -> str:
    table = BUCKET_TABLES[grain].name
    measures = ", ".join(_MEASURE_EXPRESSIONS)
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in (*COUNT_COLUMNS, *SUM_COLUMNS))
    if grain == "minute":
        # Minute buckets only answer the edges of a range (at most two hours of them), so
        # the full cube suffices there and the projections are not worth their writes.
        cube = "0"
        sets = f"GROUPING SETS (({grain}, tp, ch, js, rg, sg))"
    elif grain == "week":
        # Week buckets make long windows cheap for the small cubes; the full cube, slow over
        # long windows anyway, is not worth a fourth write per event.
        cube = "CASE GROUPING(tp, rg) WHEN 1 THEN 1 ELSE 2 END"
        sets = f"GROUPING SETS (({grain}, tp, ch, js), ({grain}, ch, rg, sg))"
    else:
        # GROUPING(tp, rg) tells the grouping sets apart: 0 all dimensions, 1 without region
        # and segment (cube 1), 2 without touchpoint and journey stage (cube 2).
        cube = "CASE GROUPING(tp, rg) WHEN 0 THEN 0 WHEN 1 THEN 1 ELSE 2 END"
        sets = (
            f"GROUPING SETS (({grain}, tp, ch, js, rg, sg), ({grain}, tp, ch, js), "
            f"({grain}, ch, rg, sg))"
        )
    # Built from constants only; the values travel as bound arrays.
    return f"""
    {grain}_up AS (
      INSERT INTO {table} ({_KEY}, {", ".join(MEASURES)})
      SELECT {cube}, {grain},
             coalesce(tp, ''), ch, coalesce(js, ''), coalesce(rg, ''), coalesce(sg, ''),
             {measures}
      FROM fresh_events WHERE {grain} IS NOT NULL
      GROUP BY {sets}
      ORDER BY 1, 2, 3, 4, 5, 6, 7
      ON CONFLICT ({_KEY}) DO UPDATE SET {updates}
    )"""  # noqa: S608


_INGEST_SQL: Final = text(
    "WITH ev AS (SELECT * FROM unnest("  # noqa: S608
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _EVENT_COLUMNS)
    + ") AS e("
    + ", ".join(name for name, _ in _EVENT_COLUMNS)
    + ")),\n"
    + "fresh AS (INSERT INTO metrics_seen (uid) SELECT uid FROM ev "
    + "ON CONFLICT DO NOTHING RETURNING uid),\n"
    + "fresh_events AS (SELECT ev.* FROM ev JOIN fresh USING (uid)),"
    + ",".join(_upsert_cte(g) for g in ("minute", "hour", "day", "week"))
    + "\nSELECT ch, tp, count(*) FROM fresh_events GROUP BY ch, tp"
)


async def apply_events(
    session: AsyncSession, events: Sequence[EventRow]
) -> list[tuple[str, str, int]]:
    """Count the events not seen before into every bucket; (channel, touchpoint, n) counted.

    `events` must hold each uid once. One statement: dedup insert, then the upserts of the
    four grains over the fresh events only.
    """
    if not events:
        return []
    params: dict[str, list[Any]] = {
        "uid": [e.uid for e in events],
        "minute": [e.minute for e in events],
        "hour": [e.hour for e in events],
        "day": [e.day for e in events],
        "week": [e.week for e in events],
        "tp": [e.touchpoint for e in events],
        "ch": [e.channel for e in events],
        "js": [e.journey_stage for e in events],
        "rg": [e.region for e in events],
        "sg": [e.segment for e in events],
        "nps": [e.nps for e in events],
        "csat": [e.csat for e in events],
        "ces": [e.ces for e in events],
        "sent": [e.sentiment for e in events],
        "neg": [e.negative for e in events],
    }
    result = await session.execute(_INGEST_SQL, params)
    return [(str(ch), str(tp), int(n)) for ch, tp, n in result.all()]


# --------------------------------------------------------------------------------------------
# Consumer positions

_LOCK_POSITIONS: Final = text(
    "INSERT INTO metrics_offsets (topic, partition, next_offset) "
    "SELECT t, p, 0 FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[])) AS x(t, p) "
    "ORDER BY t, p "
    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = metrics_offsets.next_offset "
    "RETURNING topic, partition, next_offset"
)
_STORE_POSITIONS: Final = text(
    "UPDATE metrics_offsets AS o SET next_offset = greatest(o.next_offset, x.n), "
    "updated_at = now() "
    "FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]), CAST(:offsets AS bigint[])) "
    "AS x(t, p, n) WHERE o.topic = x.t AND o.partition = x.p"
)


async def lock_positions(
    session: AsyncSession, partitions: Collection[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Lock the partitions' offset rows (creating them at 0) and return the stored positions.

    Holding the row lock until commit fences a stale owner of the partition: it waits, then
    sees the position the new owner stored and skips what was already counted.
    """
    ordered = sorted(partitions)
    result = await session.execute(
        _LOCK_POSITIONS,
        {"topics": [t for t, _ in ordered], "partitions": [p for _, p in ordered]},
    )
    return {(str(t), int(p)): int(n) for t, p, n in result.all()}


async def store_positions(session: AsyncSession, positions: Mapping[tuple[str, int], int]) -> None:
    """Advance the stored positions (never backwards); rows must be locked already."""
    ordered = sorted(positions.items())
    await session.execute(
        _STORE_POSITIONS,
        {
            "topics": [tp[0] for tp, _ in ordered],
            "partitions": [tp[1] for tp, _ in ordered],
            "offsets": [n for _, n in ordered],
        },
    )


async def load_positions(
    session: AsyncSession, partitions: Collection[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Stored positions of these partitions (absent when never stored)."""
    if not partitions:
        return {}
    topics = {t for t, _ in partitions}
    rows = await session.execute(
        select(ConsumerOffset.topic, ConsumerOffset.partition, ConsumerOffset.next_offset).where(
            ConsumerOffset.topic.in_(topics)
        )
    )
    wanted = set(partitions)
    return {(t, p): n for t, p, n in rows.all() if (t, p) in wanted}


# --------------------------------------------------------------------------------------------
# Queries


@dataclass(frozen=True, slots=True)
class Filters:
    """Dimension filters: each dimension to a set of allowed values (empty: no filter).

    `touchpoint_subtrees` also admits every descendant of the listed touchpoints.
    """

    values: Mapping[str, frozenset[str]]
    touchpoint_subtrees: frozenset[str] = frozenset()

    @property
    def dimensions(self) -> set[str]:
        """Dimensions with a filter."""
        dims = {d for d, v in self.values.items() if v}
        if self.touchpoint_subtrees:
            dims.add("touchpoint")
        return dims


def choose_cube(dimensions: Collection[str]) -> int:
    """The smallest cube holding every one of `dimensions`."""
    needed = set(dimensions)
    for cube, kept in CUBES.items():
        if needed <= set(kept):
            return cube
    return 0


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_conditions(table: Any, filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for dim, allowed in filters.values.items():
        if allowed and dim != "touchpoint":
            conditions.append(table.c[dim].in_(sorted(allowed)))
    exact = sorted(filters.values.get("touchpoint", frozenset()))
    subtree_terms: list[ColumnElement[bool]] = []
    if exact:
        subtree_terms.append(table.c.touchpoint.in_(exact))
    for root in sorted(filters.touchpoint_subtrees):
        subtree_terms.append(table.c.touchpoint.like(_escape_like(root) + ".%", escape="\\"))
    if subtree_terms:
        conditions.append(or_(*subtree_terms))
    return conditions


def _grain_select(
    grain: Grain,
    ranges: Sequence[tuple[datetime, datetime]],
    *,
    cube: int,
    filters: Filters,
    group_dims: Sequence[str],
    by_bucket: bool,
) -> Select[Any]:
    table = BUCKET_TABLES[grain]
    keys = [table.c[d] for d in group_dims]
    if by_bucket:
        keys.insert(0, table.c.bucket_start)
    time_terms = [and_(table.c.bucket_start >= s, table.c.bucket_start < e) for s, e in ranges]
    return (
        select(*keys, *(func.sum(table.c[m]).label(m) for m in MEASURES))
        .where(
            table.c.cube == (MINUTE_CUBE if grain == "minute" else cube),
            or_(*time_terms),
            *_filter_conditions(table, filters),
        )
        .group_by(*keys)
    )


GroupKey = tuple[str, ...]
MINUTE_CUBE: Final = 0
"""Minute buckets hold only the full cube."""


async def fetch_totals(
    session: AsyncSession,
    coverage: Coverage,
    *,
    filters: Filters,
    group_dims: Sequence[str],
    by_bucket: bool = False,
    tz: ZoneInfo | None = None,
) -> list[tuple[datetime | None, GroupKey, Totals]]:
    """Summed measures over the coverage, per group (and per stored bucket if `by_bucket`).

    Rows of different grains for the same group come back separately; callers merge them.
    With `tz`, whole local weeks are read from week buckets where the cube has them.
    """
    if not coverage.ranges:
        return []
    # A few thousand rows: parallel workers cost more to start than they save.
    await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    cube = choose_cube({*group_dims, *filters.dimensions})
    ranges = coverage.ranges
    if cube != 0 and not by_bucket and tz is not None:
        ranges = with_weeks(ranges, tz)
    per_grain: dict[Grain, list[tuple[datetime, datetime]]] = {}
    for grain, start, end in ranges:
        per_grain.setdefault(grain, []).append((start, end))
    selects = [
        _grain_select(
            grain, ranges, cube=cube, filters=filters, group_dims=group_dims, by_bucket=by_bucket
        )
        for grain, ranges in per_grain.items()
    ]
    statement = selects[0] if len(selects) == 1 else union_all(*selects)
    result = await session.execute(statement)
    width = len(group_dims)
    out: list[tuple[datetime | None, GroupKey, Totals]] = []
    for row in result.all():
        offset = 1 if by_bucket else 0
        bucket = row[0] if by_bucket else None
        key = tuple(str(v) for v in row[offset : offset + width])
        out.append((bucket, key, Totals.from_row(row[offset + width :])))
    return out


# --------------------------------------------------------------------------------------------
# Retention and metadata


async def prune(
    session: AsyncSession,
    *,
    minute_before: datetime,
    hour_before: datetime,
    seen_before: datetime,
) -> dict[str, int]:
    """Delete minute and hour buckets and dedup uids older than their retention."""
    counts: dict[str, int] = {}
    grains: tuple[tuple[Grain, datetime], ...] = (("minute", minute_before), ("hour", hour_before))
    for grain, before in grains:
        table = BUCKET_TABLES[grain]
        result = await session.execute(delete(table).where(table.c.bucket_start < before))
        counts[grain] = int(getattr(result, "rowcount", 0) or 0)
    result = await session.execute(delete(SeenEvent).where(SeenEvent.seen_at < seen_before))
    counts["seen"] = int(getattr(result, "rowcount", 0) or 0)
    return counts


async def claim_setting(session: AsyncSession, key: str, value: str) -> str:
    """Store `value` under `key` unless set; return what is stored."""
    await session.execute(
        text("INSERT INTO metrics_meta (key, value) VALUES (:k, :v) ON CONFLICT DO NOTHING"),
        {"k": key, "v": value},
    )
    stored = await session.scalar(select(MetaSetting.value).where(MetaSetting.key == key))
    return str(stored)


def retention_cutoffs(
    now: datetime, *, minute: timedelta, hour: timedelta
) -> tuple[datetime, datetime]:
    """Instants before which minute and hour buckets may be deleted (a margin past the horizons)."""
    return now - minute, now - hour - timedelta(days=1)
