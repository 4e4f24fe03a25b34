"""A service process exports its own metrics only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cxruntime.services import SERVICES

_PROBE = """
import json, sys
from unittest import mock
from prometheus_client import REGISTRY
from cxruntime import cli
with mock.patch.object(cli, "_run_service", return_value=0):
    cli.main([sys.argv[1]])
names = {name for name in REGISTRY._names_to_collectors if name.startswith("cx_")}
print(json.dumps(sorted(names)))
"""

_OWN_PREFIX = {
    "collector": "cx_collector_",
    "enricher": "cx_enricher_",
    "metrics": "cx_metrics_",
    "closed-loop": "cx_closed_loop_",
}


@pytest.mark.parametrize("service", [service.name for service in SERVICES])
def test_a_service_process_registers_no_other_services_metrics(service: str) -> None:
    # Each service in a fresh interpreter: the `cxloop SERVICE` command, up to running it.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, service], capture_output=True, text=True, check=True
    )
    names = json.loads(done.stdout)
    foreign = [
        name
        for name in names
        for other, prefix in _OWN_PREFIX.items()
        if other != service and name.startswith(prefix)
    ]
    assert foreign == []
