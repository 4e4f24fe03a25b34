"""Settings shared by every service, read from `CX_*` environment variables.

Each service subclasses `CommonSettings` and adds its own fields named `<service>_<what>`, so
that with the common `CX_` prefix its variables read `CX_<SERVICE>_<WHAT>`
(`collector_port` is `CX_COLLECTOR_PORT`). Built once at start-up and passed in.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cxruntime.errors import ConfigurationError
from cxruntime.state import read_state


class CommonSettings(BaseSettings):
    """Configuration every cxloop process reads (SPEC.md, "Configuration")."""

    model_config = SettingsConfigDict(env_prefix="CX_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = None
    database_url: SecretStr | None = None
    data_dir: Path = Path(".cxloop")
    config_dir: Path | None = None
    embedded_kafka_port: int = 9092
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    host: str = "127.0.0.1"
    log_level: str = "INFO"

    def kafka_bootstrap(self) -> str:
        """The bootstrap list: `CX_KAFKA_BOOTSTRAP_SERVERS`, else a running `cxloop up`'s broker."""
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        state = read_state(self.data_dir)
        if state is not None and state.kafka_bootstrap:
            return state.kafka_bootstrap
        raise ConfigurationError(
            "CX_KAFKA_BOOTSTRAP_SERVERS is not set and no `cxloop up` is running in "
            f"{self.data_dir.resolve()}; set it or start `cxloop up`"
        )

    def database_dsn(self) -> str:
        """The SQLAlchemy asyncpg URL: `CX_DATABASE_URL`, else a running `cxloop up`'s database."""
        if self.database_url is not None and self.database_url.get_secret_value():
            return asyncpg_url(self.database_url.get_secret_value())
        state = read_state(self.data_dir)
        if state is not None and state.database_url:
            return asyncpg_url(state.database_url)
        raise ConfigurationError(
            "CX_DATABASE_URL is not set and no `cxloop up` is running in "
            f"{self.data_dir.resolve()}; set it or start `cxloop up`"
        )


def asyncpg_url(url: str) -> str:
    """Normalise `postgresql://` and `postgres://` URLs to SQLAlchemy's asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ConfigurationError(
        f"CX_DATABASE_URL must be a postgresql:// URL, got {url.split(':', maxsplit=1)[0]}"
    )
