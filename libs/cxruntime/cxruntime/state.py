"""The embedded-servers state file: how `cxloop up` tells other commands where its servers are.

`cxloop up` writes `<CX_DATA_DIR>/embedded.json` once its broker and database are up and
removes it when it stops; `cxloop keys ...`, `cxloop demo` and a lone `cxloop collector` run in
the same folder read it when `CX_KAFKA_BOOTSTRAP_SERVERS` or `CX_DATABASE_URL` is unset.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "embedded.json"
DEV_KEY_FILE = "dev-api-key"
"""The development API key `cxloop up` creates (all scopes), read by `cxloop demo`."""


@dataclass(frozen=True)
class EmbeddedState:
    """What a running `cxloop up` published."""

    pid: int
    kafka_bootstrap: str | None
    database_url: str | None
    services: dict[str, str]


def write_state(data_dir: Path, state: EmbeddedState) -> Path:
    """Write the state file atomically; returns its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(path)
    return path


def read_state(data_dir: Path) -> EmbeddedState | None:
    """The state of a live `cxloop up` in this data dir, or None (no file, or its process gone)."""
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    state = EmbeddedState(
        pid=int(raw["pid"]),
        kafka_bootstrap=raw.get("kafka_bootstrap"),
        database_url=raw.get("database_url"),
        services=dict(raw.get("services") or {}),
    )
    if not _alive(state.pid):
        return None
    return state


def remove_state(data_dir: Path) -> None:
    """Remove the state file if present."""
    (data_dir / STATE_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
