"""SQL of the metrics service. Functions take a session and never commit: the caller owns the
transaction (the consumer puts dedup, buckets and offsets in one)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import TextClause, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_metrics.buckets import Coverage, Grain, with_weeks
from cxloop_metrics.measures import COUNT_COLUMNS, DIMENSIONS, MEASURES, SUM_COLUMNS, Totals
from cxloop_metrics.orm import BUCKET_TABLES, CUBES, ConsumerOffset, MetaSetting, SeenEvent

# --------------------------------------------------------------------------------------------
# Ingest


class EventRow(NamedTuple):
    """One event reduced to what the buckets need (a tuple: built once per event)."""

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
    ("b", "int"),
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
_BUCKET_COLUMNS: Final = (
    ("minute", "timestamptz"),
    ("hour", "timestamptz"),
    ("day", "timestamptz"),
    ("week", "timestamptz"),
)
"""A batch's distinct (minute, hour, day, week) tuples; each event refers to its own by `b`
(its ordinality): binding a few dozen timestamps instead of four per event saves the client
most of its encoding time."""

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


_STORE_POSITIONS_CTE: Final = (
    "stored AS (UPDATE metrics_offsets AS o SET next_offset = greatest(o.next_offset, x.n), "
    "updated_at = now() "
    "FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]), "
    "CAST(:offsets AS bigint[])) AS x(t, p, n) WHERE o.topic = x.t AND o.partition = x.p)"
)
# The text columns are grouped and sorted in the "C" collation: the same groups (equality is
# bytewise either way) and the same order in every transaction (which is what the ORDER BY is
# for: row locks taken in one order never deadlock), with cheaper comparisons than the locale's.
_INGEST_SQL: Final = text(
    "WITH ev AS (SELECT * FROM unnest("  # noqa: S608
    + ", ".join(
        f"CAST(:{name} AS {kind}[])" + (' COLLATE "C"' if kind == "text" else "")
        for name, kind in _EVENT_COLUMNS
    )
    + ") AS e("
    + ", ".join(name for name, _ in _EVENT_COLUMNS)
    + ") JOIN unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _BUCKET_COLUMNS)
    + ") WITH ORDINALITY AS t("
    + ", ".join(name for name, _ in _BUCKET_COLUMNS)
    + ", b) USING (b)),\n"
    + "fresh AS (INSERT INTO metrics_seen (uid) SELECT uid FROM ev "
    + "ON CONFLICT DO NOTHING RETURNING uid),\n"
    + "fresh_events AS (SELECT ev.* FROM ev JOIN fresh USING (uid)),"
    + ",".join(_upsert_cte(g) for g in ("minute", "hour", "day", "week"))
    + ",\n"
    + _STORE_POSITIONS_CTE
    + "\nSELECT ch, tp, count(*) FROM fresh_events GROUP BY ch, tp"
)

EventColumns = dict[str, list[Any]]
"""Events as the arrays the ingest statement binds: one per column of `_EVENT_COLUMNS` and
of `_BUCKET_COLUMNS`."""


def event_columns(events: Sequence[EventRow]) -> EventColumns:
    """The events column by column (built before the transaction, off the writer's path)."""
    buckets: dict[tuple[datetime | None, datetime | None, datetime, datetime], int] = {}
    refs = [buckets.setdefault((e.minute, e.hour, e.day, e.week), len(buckets) + 1) for e in events]
    return {
        "uid": [e.uid for e in events],
        "b": refs,
        "minute": [b[0] for b in buckets],
        "hour": [b[1] for b in buckets],
        "day": [b[2] for b in buckets],
        "week": [b[3] for b in buckets],
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


def concat_event_columns(parts: Sequence[EventColumns]) -> EventColumns:
    """Several batches' columns as one (their bucket tuples appended, references moved)."""
    out: EventColumns = {name: [] for name in parts[0]}
    base = 0
    for columns in parts:
        for name, values in columns.items():
            if name == "b":
                out[name].extend([ref + base for ref in values])
            else:
                out[name].extend(values)
        base += len(columns["minute"])
    return out


async def apply_batch(
    session: AsyncSession, events: EventColumns, positions: Mapping[tuple[str, int], int]
) -> list[tuple[str, str, int]]:
    """Count the events not seen before into every bucket and advance the stored positions
    (never backwards; rows locked by `lock_positions` first); (channel, touchpoint, n) counted.

    `events` must hold each uid once. One statement: dedup insert, the upserts of the four
    grains over the fresh events only, and the positions.
    """
    ordered = sorted(positions.items())
    params: dict[str, list[Any]] = {
        **events,
        "topics": [tp[0] for tp, _ in ordered],
        "partitions": [tp[1] for tp, _ in ordered],
        "offsets": [n for _, n in ordered],
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


async def reset_positions(session: AsyncSession, positions: Mapping[tuple[str, int], int]) -> None:
    """Set the stored positions to these, backwards too (a partition's log was replaced)."""
    ordered = sorted(positions.items())
    await session.execute(
        _RESET_POSITIONS,
        {
            "topics": [t for (t, _), _ in ordered],
            "partitions": [p for (_, p), _ in ordered],
            "offsets": [n for _, n in ordered],
        },
    )


_RESET_POSITIONS: Final = text(
    "INSERT INTO metrics_offsets (topic, partition, next_offset) "
    "SELECT t, p, n FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]), "
    "CAST(:offsets AS bigint[])) AS x(t, p, n) "
    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, "
    "updated_at = now()"
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


@functools.lru_cache(maxsize=256)
def _totals_sql(
    grains: tuple[tuple[Grain, int], ...],
    *,
    group_dims: tuple[str, ...],
    by_bucket: bool,
    filter_dims: tuple[str, ...],
    touchpoint_exact: bool,
    touchpoint_like: bool,
) -> TextClause:
    """The read query of one shape: a grouped SELECT per grain, UNION ALL; values are bound.

    Only names from `DIMENSIONS`, `MEASURES` and the bucket tables enter the text, so it can
    be cached per shape; building SQLAlchemy Core statements per request cost more CPU than
    the query itself.
    """
    keys = (["bucket_start"] if by_bucket else []) + list(group_dims)
    sums = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
    parts = []
    for grain, n_ranges in grains:
        table = BUCKET_TABLES[grain].name
        times = " OR ".join(
            f"(bucket_start >= :{grain}_s{i} AND bucket_start < :{grain}_e{i})"
            for i in range(n_ranges)
        )
        where = [f"cube = :{grain}_cube", f"({times})"]
        where += [f"{dim} = ANY(CAST(:f_{dim} AS text[]))" for dim in filter_dims]
        tp_terms = []
        if touchpoint_exact:
            tp_terms.append("touchpoint = ANY(CAST(:tp_exact AS text[]))")
        if touchpoint_like:
            tp_terms.append("touchpoint LIKE ANY(CAST(:tp_like AS text[]))")
        if tp_terms:
            where.append("(" + " OR ".join(tp_terms) + ")")
        select_keys = ", ".join(keys)
        parts.append(
            f"SELECT {select_keys + ', ' if keys else ''}{sums} FROM {table} "  # noqa: S608
            f"WHERE {' AND '.join(where)}" + (f" GROUP BY {select_keys}" if keys else "")
        )
    return text(" UNION ALL ".join(parts))


_READ_SETTINGS: Final = text(
    "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
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
    # A few thousand rows: parallel workers cost more to start than they save. And plan for
    # the actual time bounds each time: a cached generic plan cannot tell a 90-day range of
    # week buckets from a scan of every hour bucket. (Transaction-local, one round trip.)
    await session.execute(_READ_SETTINGS)
    cube = choose_cube({*group_dims, *filters.dimensions})
    ranges = coverage.ranges
    if cube != 0 and not by_bucket and tz is not None:
        ranges = with_weeks(ranges, tz)
    per_grain: dict[Grain, list[tuple[datetime, datetime]]] = {}
    for grain, start, end in ranges:
        per_grain.setdefault(grain, []).append((start, end))
    params: dict[str, Any] = {}
    for grain, grain_ranges in per_grain.items():
        params[f"{grain}_cube"] = MINUTE_CUBE if grain == "minute" else cube
        for i, (start, end) in enumerate(grain_ranges):
            params[f"{grain}_s{i}"] = start
            params[f"{grain}_e{i}"] = end
    filter_dims = tuple(sorted(d for d, v in filters.values.items() if v and d != "touchpoint"))
    for dim in filter_dims:
        params[f"f_{dim}"] = sorted(filters.values[dim])
    exact = sorted(filters.values.get("touchpoint", frozenset()))
    like = [_escape_like(root) + ".%" for root in sorted(filters.touchpoint_subtrees)]
    if exact:
        params["tp_exact"] = exact
    if like:
        params["tp_like"] = like
    statement = _totals_sql(
        tuple((grain, len(r)) for grain, r in per_grain.items()),
        group_dims=tuple(group_dims),
        by_bucket=by_bucket,
        filter_dims=filter_dims,
        touchpoint_exact=bool(exact),
        touchpoint_like=bool(like),
    )
    result = await session.execute(statement, params)
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
