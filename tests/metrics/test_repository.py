"""The bucket SQL against a real PostgreSQL: dedup, cubes, positions and their fence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics import repository
from cxloop_metrics.buckets import Horizons, cover
from cxloop_metrics.processor import BucketCache, observe, to_row
from cxloop_metrics.repository import Filters
from tests.metrics.factories import enriched, value

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.now(UTC)


async def _apply(s: AsyncSession, rows: list[repository.EventRow]) -> list[tuple[str, str, int]]:
    return await repository.apply_batch(s, repository.event_columns(rows), {})


def _rows(events: list[bytes]) -> list[repository.EventRow]:
    return [
        to_row(
            observe(v, BucketCache(BERLIN)),
            now=NOW,
            lateness=timedelta(days=7),
            hour_retention=timedelta(days=35),
        )
        for v in events
    ]


def _events(n: int, start: datetime) -> list[bytes]:
    out = []
    for i in range(n):
        out.append(
            value(
                enriched(
                    f"e{i}",
                    occurred_at=start + timedelta(minutes=7 * i),
                    channel=("web", "app", "email")[i % 3],
                    touchpoint=("delivery", "delivery.tracking", "checkout")[i % 3 - 1],
                    region=("DE-BY", "DE-BE", None)[i % 3],
                    segment=("premium", "basic")[i % 2],
                    nps=i % 11,
                    csat=1 + i % 5,
                    ces=1 + i % 7,
                    comment="ok" if i % 2 else None,
                    sentiment=("negative", -0.5) if i % 4 == 1 else ("positive", 0.5),
                )
            )
        )
    return out


def test_event_columns_bind_each_bucket_tuple_once() -> None:
    def at(t: datetime, n: int, prefix: str) -> list[repository.EventRow]:
        return _rows([value(enriched(f"{prefix}{i}", occurred_at=t, nps=i)) for i in range(n)])

    live = at(NOW - timedelta(minutes=1), 3, "live")
    too_late = at(NOW - timedelta(days=9), 2, "late")  # no minute bucket, an hour bucket
    columns = repository.event_columns([*live, too_late[0], live[1], too_late[1]])
    assert columns["b"] == [1, 1, 1, 2, 1, 2]
    assert columns["minute"] == [live[0].minute, None]
    assert columns["hour"] == [live[0].hour, too_late[0].hour]
    assert columns["day"] == [live[0].day, too_late[0].day]
    assert columns["week"] == [live[0].week, too_late[0].week]
    assert columns["uid"] == [r.uid for r in (*live, too_late[0], live[1], too_late[1])]
    assert all(len(columns[c]) == 6 for c in ("tp", "ch", "js", "rg", "sg", "nps", "neg"))


async def test_counts_each_uid_once_and_cubes_agree(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = _events(60, NOW - timedelta(hours=30))
    async with db_sessions() as s, s.begin():
        counted = await _apply(s, _rows(events))
    assert sum(n for _, _, n in counted) == 60
    async with db_sessions() as s, s.begin():
        again = await _apply(s, _rows(events[:20]))
    assert again == []

    horizons = Horizons(minute=NOW - timedelta(days=7), hour=NOW - timedelta(days=35))
    coverage = cover(NOW - timedelta(days=3), NOW + timedelta(minutes=1), BERLIN, horizons)
    assert {g for g, _, _ in coverage.ranges} == {"minute", "hour", "day"}
    async with db_sessions() as s:
        by_cube = {}
        for dims in ((), ("touchpoint",), ("region",), ("touchpoint", "region")):
            rows = await repository.fetch_totals(
                s, coverage, filters=Filters(values={}), group_dims=dims
            )
            by_cube[dims] = rows
    for dims, rows in by_cube.items():
        assert sum(t.responses for _, _, t in rows) == 60, dims
        assert sum(sum(t.nps) for _, _, t in rows) == 60, dims
    touchpoints: dict[str, int] = {}
    for _, key, t in by_cube[("touchpoint",)]:
        touchpoints[key[0]] = touchpoints.get(key[0], 0) + t.responses
    assert touchpoints == {"delivery": 20, "delivery.tracking": 20, "checkout": 20}
    regions: dict[str, int] = {}
    for _, key, t in by_cube[("region",)]:
        regions[key[0]] = regions.get(key[0], 0) + t.responses
    assert regions == {"DE-BY": 20, "DE-BE": 20, "": 20}


async def test_filters_select_the_matching_cube_rows(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as s, s.begin():
        await _apply(s, _rows(_events(30, NOW - timedelta(hours=4))))
    horizons = Horizons(minute=NOW - timedelta(days=7), hour=NOW - timedelta(days=35))
    coverage = cover(NOW - timedelta(hours=5), NOW + timedelta(minutes=1), BERLIN, horizons)
    async with db_sessions() as s:
        subtree = await repository.fetch_totals(
            s,
            coverage,
            filters=Filters(
                values={"touchpoint": frozenset({"delivery"})},
                touchpoint_subtrees=frozenset({"delivery"}),
            ),
            group_dims=(),
        )
        premium_web = await repository.fetch_totals(
            s,
            coverage,
            filters=Filters(
                values={"segment": frozenset({"premium"}), "channel": frozenset({"web"})}
            ),
            group_dims=(),
        )
    assert sum(t.responses for _, _, t in subtree) == 20
    # i % 3 == 0 (web) and i % 2 == 0 (premium): i in 0, 6, 12, 18, 24
    assert sum(t.responses for _, _, t in premium_web) == 5


async def test_position_lock_fences_a_stale_owner(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    tp = ("cx.feedback.enriched.v1", 0)
    async with db_sessions() as s, s.begin():
        assert await repository.lock_positions(s, [tp]) == {tp: 0}
        await repository.apply_batch(s, repository.event_columns([]), {tp: 10})

    order: list[str] = []

    async def owner(name: str, new_position: int, hold: float) -> int:
        async with db_sessions() as s, s.begin():
            stored = await repository.lock_positions(s, [tp])
            order.append(f"{name} saw {stored[tp]}")
            await asyncio.sleep(hold)
            await repository.apply_batch(s, repository.event_columns([]), {tp: new_position})
            return stored[tp]

    first = asyncio.create_task(owner("new", 50, 0.3))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(owner("stale", 30, 0.0))
    assert await first == 10
    # The stale owner waited for the lock and then saw the new owner's position.
    assert await second == 50
    async with db_sessions() as s:
        assert await repository.load_positions(s, [tp]) == {tp: 50}
    assert order == ["new saw 10", "stale saw 50"]


async def test_prune_keeps_day_buckets(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    old = NOW - timedelta(days=6, hours=23)
    async with db_sessions() as s, s.begin():
        await _apply(s, _rows(_events(5, old)))
    async with db_sessions() as s, s.begin():
        counts = await repository.prune(
            s, minute_before=NOW, hour_before=NOW, seen_before=NOW - timedelta(days=1)
        )
    assert counts["minute"] > 0
    assert counts["hour"] > 0
    assert counts["seen"] == 0
    async with db_sessions() as s:
        days = await s.scalar(text("SELECT sum(responses) FROM metrics_day WHERE cube = 0"))
    assert days == 5
