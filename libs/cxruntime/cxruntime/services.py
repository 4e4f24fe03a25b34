"""The four services: their CLI names, packages and default ports (SPEC.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ServiceInfo:
    """One service as the CLI and the supervisor know it."""

    name: str
    package: str
    default_port: int
    consumes: bool

    @property
    def port_variable(self) -> str:
        """The environment variable overriding its port, `CX_<SERVICE>_PORT`."""
        return f"CX_{self.name.upper().replace('-', '_')}_PORT"

    def port(self) -> int:
        """The port it listens on, after `CX_<SERVICE>_PORT`."""
        return int(os.environ.get(self.port_variable, self.default_port))


SERVICES: Final = (
    ServiceInfo("collector", "cxloop_collector", 8000, consumes=False),
    ServiceInfo("enricher", "cxloop_enricher", 8001, consumes=True),
    ServiceInfo("metrics", "cxloop_metrics", 8002, consumes=True),
    ServiceInfo("closed-loop", "cxloop_closed_loop", 8003, consumes=True),
)
BY_NAME: Final = {service.name: service for service in SERVICES}
