"""Settings: URL normalisation and finding the servers of a running `cxloop up`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxruntime.errors import ConfigurationError
from cxruntime.settings import CommonSettings, asyncpg_url
from cxruntime.state import EmbeddedState, read_state, remove_state, write_state


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/x",
            "postgresql+asyncpg://postgres:@/postgres?host=/tmp/x",
        ),
    ],
)
def test_database_urls_are_normalised(given: str, expected: str) -> None:
    assert asyncpg_url(given) == expected


def test_non_postgres_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="postgresql://"):
        asyncpg_url("mysql://x")


def test_missing_servers_say_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CX_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("CX_DATABASE_URL", raising=False)
    settings = CommonSettings(data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="CX_KAFKA_BOOTSTRAP_SERVERS is not set"):
        settings.kafka_bootstrap()
    with pytest.raises(ConfigurationError, match="CX_DATABASE_URL is not set"):
        settings.database_dsn()


def test_state_file_of_a_live_up_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CX_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("CX_DATABASE_URL", raising=False)
    write_state(
        tmp_path,
        EmbeddedState(
            os.getpid(), "127.0.0.1:9999", "postgresql://postgres:@/postgres?host=/x", {}
        ),
    )
    settings = CommonSettings(data_dir=tmp_path)
    assert settings.kafka_bootstrap() == "127.0.0.1:9999"
    assert settings.database_dsn().startswith("postgresql+asyncpg://")
    remove_state(tmp_path)
    assert read_state(tmp_path) is None


def test_state_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    write_state(tmp_path, EmbeddedState(2**22 + 12345, "127.0.0.1:1", None, {}))
    assert read_state(tmp_path) is None


def test_environment_wins_over_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_state(tmp_path, EmbeddedState(os.getpid(), "127.0.0.1:9999", None, {}))
    monkeypatch.setenv("CX_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert CommonSettings(data_dir=tmp_path).kafka_bootstrap() == "kafka-1:9092,kafka-2:9092"
