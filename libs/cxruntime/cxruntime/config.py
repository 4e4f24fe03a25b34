"""YAML configuration: from `CX_CONFIG_DIR` when it holds the file, else the packaged default."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cxruntime.errors import ConfigurationError


def config_path(name: str, *, config_dir: Path | None, default_package: str) -> Path:
    """Where `name` is read from: `config_dir/name` if it exists, else the package's copy."""
    if config_dir is not None:
        candidate = config_dir / name
        if candidate.is_file():
            return candidate
    packaged = resources.files(default_package) / name
    with resources.as_file(packaged) as path:
        if not path.is_file():
            raise ConfigurationError(
                f"no {name} in {config_dir} and none packaged in {default_package}"
            )
        return path


def load_yaml(path: Path) -> Any:
    """Parse one YAML file safely; a syntax error becomes a `ConfigurationError` naming the file."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: invalid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc}") from exc
