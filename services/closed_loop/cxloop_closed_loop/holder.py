"""The live routing configuration, swapped whole on reload (SIGHUP)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cxloop_closed_loop.config import RoutingConfig
from cxloop_closed_loop.telemetry import CONFIG_RELOADS
from cxruntime.errors import ConfigurationError

log = logging.getLogger(__name__)


class ConfigHolder:
    """Holds the current `RoutingConfig`; a failed reload keeps the previous one."""

    def __init__(self, load: Callable[[], RoutingConfig]) -> None:
        self._load = load
        self._current = load()

    def __call__(self) -> RoutingConfig:
        return self._current

    def reload(self) -> bool:
        """Load the file again; True when the new configuration is in force."""
        try:
            self._current = self._load()
        except ConfigurationError as exc:
            CONFIG_RELOADS.labels("failed").inc()
            log.error("routing.yaml reload failed, keeping the previous configuration: %s", exc)
            return False
        CONFIG_RELOADS.labels("ok").inc()
        log.info("routing.yaml reloaded")
        return True
