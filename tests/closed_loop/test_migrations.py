"""Migration cl0004 against the real PostgreSQL: breaches and the original deadlines come back
from the `escalated` history of the current SLA period."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text

from cxruntime.db import make_engine
from cxruntime.embedded import EmbeddedPostgres
from cxruntime.migrations import COMPONENTS, alembic_config, migrate

pytestmark = pytest.mark.integration

OPENED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
REOPENED = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def escalated(case_id: uuid.UUID, at: str, deadline: str, due_at: str) -> dict[str, object]:
    return {
        "case_id": case_id,
        "at": datetime.fromisoformat(at),
        "details": json.dumps({"deadline": deadline, "due_at": due_at, "level": 1}),
    }


async def test_breaches_are_backfilled_from_the_history(postgres: EmbeddedPostgres) -> None:
    url = postgres.create_database(f"migrate_cl0004_{uuid.uuid4().hex[:8]}")
    others = tuple(c for c in COMPONENTS if c != "cxloop_closed_loop")
    await asyncio.to_thread(migrate, url, components=others)
    config = alembic_config("cxloop_closed_loop", url)
    await asyncio.to_thread(command.upgrade, config, "cl0003")
    escalated_case, reopened_case, calm_case = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            for case_id, started, ack_due in [
                # the old code overwrote the deadline with the owner rung's
                (escalated_case, OPENED, "2026-11-23T12:00:00+00:00"),
                (reopened_case, REOPENED, "2026-11-25T11:00:00+00:00"),
                (calm_case, OPENED, "2026-11-23T11:00:00+00:00"),
            ]:
                await connection.execute(
                    text(
                        "INSERT INTO cases (id, customer_key, touchpoint, team, route, severity,"
                        " status, escalation_level, labels, reasons, feedback_count,"
                        " reopen_count, opened_at, sla_started_at, updated_at,"
                        " acknowledge_due_at, resolve_due_at) VALUES (:id, :key, 'delivery',"
                        " 'logistics', 'delivery', 'normal', 'open', 2, '{}', '[]', 1, 0,"
                        " :opened, :started, :started, :ack_due, '2026-11-23T18:00:00+00:00')"
                    ),
                    {
                        "id": case_id,
                        "key": str(case_id),
                        "opened": OPENED,
                        "started": started,
                        "ack_due": datetime.fromisoformat(ack_due),
                    },
                )
            await connection.execute(
                text(
                    "INSERT INTO case_history (case_id, at, actor, action, from_status,"
                    " to_status, details) VALUES (:case_id, :at, 'system', 'escalated', 'open',"
                    " 'open', CAST(:details AS jsonb))"
                ),
                [
                    escalated(
                        escalated_case,
                        "2026-11-23T11:00:05+00:00",
                        "acknowledge",
                        "2026-11-23T11:00:00+00:00",
                    ),
                    escalated(
                        escalated_case,
                        "2026-11-23T12:00:05+00:00",
                        "acknowledge",
                        "2026-11-23T12:00:00+00:00",
                    ),
                    # breached before the reopening: not a breach of the current period
                    escalated(
                        reopened_case,
                        "2026-11-23T11:00:05+00:00",
                        "acknowledge",
                        "2026-11-23T11:00:00+00:00",
                    ),
                ],
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            rows = {
                row.id: row
                for row in await connection.execute(
                    text(
                        "SELECT id, acknowledge_due_at, acknowledge_breached_at,"
                        " resolve_breached_at FROM cases"
                    )
                )
            }
    finally:
        await engine.dispose()
    first_due = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert rows[escalated_case].acknowledge_breached_at == first_due
    assert rows[escalated_case].acknowledge_due_at == first_due
    assert rows[escalated_case].resolve_breached_at is None
    assert rows[reopened_case].acknowledge_breached_at is None
    assert rows[reopened_case].acknowledge_due_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    assert rows[calm_case].acknowledge_breached_at is None
