"""PostgreSQL through async SQLAlchemy: one engine per process, built in the app's lifespan."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cxruntime.probes import CachedProbe


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


class DatabaseProbe(CachedProbe):
    """Readiness probe: `SELECT 1`."""

    failures = (SQLAlchemyError, OSError)

    def __init__(self, engine: AsyncEngine, *, timeout_s: float = 1.5) -> None:
        super().__init__(timeout_s=timeout_s)
        self._engine = engine

    async def check(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
