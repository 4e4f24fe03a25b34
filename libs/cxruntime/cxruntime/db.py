"""PostgreSQL through async SQLAlchemy: one engine per process, built in the app's lifespan."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(dsn: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An asyncpg engine with pre-ping, so a restarted database costs one retry, not an error."""
    return create_async_engine(
        dsn,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit; the caller owns the transaction."""
    return async_sessionmaker(engine, expire_on_commit=False)


class DatabaseProbe:
    """Readiness probe: `SELECT 1` within a timeout, cached for a second."""

    def __init__(self, engine: AsyncEngine, *, timeout_s: float = 1.5) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._checked_at = 0.0
        self._ok = False

    async def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at < 1.0:
            return self._ok
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            self._ok = True
        except (SQLAlchemyError, OSError, TimeoutError):
            self._ok = False
        self._checked_at = time.monotonic()
        return self._ok
