"""docker-compose.yml cannot run here (no Docker engine), so it is kept correct by reading it:
every service's command, port and environment against the CLI and the settings classes."""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxruntime.cli import build_parser
from cxruntime.services import SERVICES, ServiceInfo
from cxruntime.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def settings_class(service: ServiceInfo) -> type[CommonSettings]:
    module = importlib.import_module(f"{service.package}.settings")
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, CommonSettings) and obj is not CommonSettings
    ]
    assert len(classes) == 1, f"{module.__name__} should define one settings class"
    return classes[0]


def settings_variables(cls: type[CommonSettings]) -> set[str]:
    return {f"CX_{name.upper()}" for name in cls.model_fields}


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_service_command_port_and_environment(
    compose: dict[str, Any], service: ServiceInfo
) -> None:
    spec = compose["services"][service.name]
    assert spec["command"] == [service.name]
    build_parser().parse_args(spec["command"])  # a real `cxloop` command
    port = service.default_port
    # The enricher has no HTTP API of its own to serve on one address, so it may be scaled
    # (`--scale enricher=N`): its replicas take host ports from a range.
    expected = f"{port}-{port + 3}:{port}" if service.name == "enricher" else f"{port}:{port}"
    assert spec["ports"] == [expected]
    env = spec["environment"]
    assert env[service.port_variable] == str(service.default_port)
    known = settings_variables(settings_class(service))
    unknown = sorted(name for name in env if name not in known)
    assert not unknown, f"{service.name}: variables no settings field reads: {unknown}"
    assert env["CX_HOST"] == "0.0.0.0"
    assert env["CX_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["CX_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert f":{service.default_port}/readyz" in " ".join(spec["healthcheck"]["test"])
    assert spec["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_setup_creates_topics_and_migrates_with_real_commands(compose: dict[str, Any]) -> None:
    setup = compose["services"]["setup"]
    script = setup["entrypoint"][-1]
    for command in script.split("&&"):
        argv = shlex.split(command)
        assert argv[0] == "cxloop"
        build_parser().parse_args(argv[1:])
    assert "topics create" in script
    assert "migrate" in script


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_prometheus_scrapes_every_service(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    # Docker's DNS answers a service name with every replica's address: scaled services are
    # scraped whole.
    targets = {
        f"{name}:{sd['port']}"
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
        if sd["type"] == "A"
    }
    assert targets == {f"{s.name}:{s.default_port}" for s in SERVICES}
    mounted = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "deploy/prometheus.yml" in mounted
    assert "deploy/alerts.yml" in mounted
    alerts = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    assert alerts["groups"][0]["rules"]


def test_one_image_for_all_services() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["cxloop"]' in dockerfile
    assert "pip install" in dockerfile


def _exported_metric_names() -> set[str]:
    """Every `cx_...` name the code declares as a metric (as a string literal)."""
    names: set[str] = set()
    for folder in ("libs", "services"):
        for source in (ROOT / folder).rglob("*.py"):
            names.update(re.findall(r"\"(cx_[a-z0-9_]+)\"", source.read_text()))
    return names


def test_every_alert_names_a_metric_the_code_exports() -> None:
    alerts = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    exported = _exported_metric_names()
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert "for" in rule
        assert "summary" in rule["annotations"]
        used = set(re.findall(r"\b(cx_[a-z0-9_]+)", rule["expr"]))
        assert used <= exported, f"{rule['alert']}: {used - exported} not exported"
    covered = " ".join(rule["expr"] for rule in rules)
    # The closed loop's failure modes and a dependency outage (during which `up` stays 1).
    for metric in (
        "cx_ready",
        "cx_closed_loop_dead_letters",
        "cx_closed_loop_outbox_backlog",
        "cx_closed_loop_breaker_open",
        "cx_closed_loop_sla_breaches_total",
    ):
        assert metric in covered
