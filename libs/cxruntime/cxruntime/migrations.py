"""Alembic migrations, one history per component, each with its own version table.

Every component that owns tables has a `migrations/` folder inside its package (`env.py`,
`script.py.mako`, `versions/`). Separate histories let the services evolve their schemas
independently in one database; `cxloop migrate` applies them all in order.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Final

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

COMPONENTS: Final = ("cxruntime", "cxloop_collector", "cxloop_metrics", "cxloop_closed_loop")
"""Packages with migrations, in the order they are applied."""


def alembic_config(component: str, dsn: str) -> Config:
    """The Alembic configuration of one component, pointing at `dsn`."""
    script_location = resources.files(component) / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    cfg.attributes["version_table"] = f"alembic_version_{component}"
    return cfg


def has_migrations(component: str) -> bool:
    """True when the component ships a migrations folder."""
    try:
        return (resources.files(component) / "migrations" / "env.py").is_file()
    except ModuleNotFoundError:
        return False


def migrate(dsn: str, *, components: tuple[str, ...] = COMPONENTS) -> list[str]:
    """Upgrade every component to its head (synchronous; call it in a thread from async code)."""
    done = []
    for component in components:
        if not has_migrations(component):
            continue
        command.upgrade(alembic_config(component, dsn), "head")
        done.append(component)
    return done


def run_env(target_metadata: MetaData) -> None:
    """Body of every component's `env.py`: run its migrations online over asyncpg."""
    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            version_table=version_table,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())
