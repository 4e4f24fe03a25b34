"""End to end through the HTTP APIs of a real `cxloop up`: collector -> Kafka -> enricher ->
metrics and closed_loop -> webhook. Tests run in file order on one stack; the last one stops it
and checks that nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.stack import WEBHOOK_SECRET, Stack, WebhookReceiver, alive
from tests.serverdirs import server_dir

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float, interval_s: float = 0.05) -> T | None:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    receiver = WebhookReceiver()
    receiver.start()
    with server_dir("cxloop-e2e-") as folder:
        stack = Stack(data_dir=folder / "data", webhook=receiver)
        try:
            stack.start()
            yield stack
        finally:
            if stack.process is not None and stack.process.poll() is None:
                stack.process.kill()
            receiver.stop()


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {stack.api_key}"}) as c:
        yield c


def event(region: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "channel": "web",
        "customer": {"id": f"crm-{uuid.uuid4().hex[:8]}", "segment": "premium", "region": region},
        "scores": {"nps": 9},
        "comment": "Alles bestens, schnelle Lieferung.",
        "context": {"url": "https://shop.example/checkout"},
    }
    body.update(overrides)
    return body


def kpis(stack: Stack, client: httpx.Client, region: str, window: str = "24h") -> dict[str, Any]:
    response = client.get(
        f"{stack.url('metrics')}/v1/kpis", params={"window": window, "region": region}
    )
    response.raise_for_status()
    groups = response.json()["groups"]
    assert len(groups) == 1
    group = groups[0]
    assert isinstance(group, dict)
    return group


def kpis_once_counted(
    stack: Stack, client: httpx.Client, region: str, at_least: int
) -> Callable[[], dict[str, Any] | None]:
    """A probe for `wait_for`: the region's KPI group once it counts `at_least` responses."""

    def probe() -> dict[str, Any] | None:
        try:
            group = kpis(stack, client, region)
        except httpx.TransportError:  # the service is restarting
            return None
        return group if group["responses"] >= at_least else None

    return probe


def webhooks_for(stack: Stack, customer_id: str) -> list[dict[str, Any]]:
    out = []
    for received in list(stack.webhook.received):
        payload = Webhook(WEBHOOK_SECRET).verify(received.body, received.headers)
        if customer_id in received.body.decode():
            out.append(payload)
    return out


def test_every_service_is_healthy_and_documented(stack: Stack) -> None:
    with httpx.Client(timeout=5) as plain:
        for name in ("collector", "enricher", "metrics", "closed-loop"):
            base = stack.url(name)
            assert plain.get(f"{base}/healthz").status_code == 200
            assert plain.get(f"{base}/readyz").status_code == 200
            metrics = plain.get(f"{base}/metrics")
            assert metrics.status_code == 200
            assert "cx_" in metrics.text
        for name in ("collector", "metrics", "closed-loop"):
            assert plain.get(f"{stack.url(name)}/openapi.json").json()["paths"]


def test_unauthenticated_posts_are_refused(stack: Stack) -> None:
    response = httpx.post(f"{stack.url('collector')}/v1/feedback", json=event("E2E-AUTH"))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_detractor_reaches_kpis_and_webhook_within_two_seconds(
    stack: Stack, client: httpx.Client
) -> None:
    body = event(
        "E2E-DETRACTOR",
        scores={"nps": 1, "csat": 1},
        comment="Die Lieferung kam drei Tage zu spät, und niemand hat sich gemeldet.",
        touchpoint="delivery",
    )
    response = client.post(f"{stack.url('collector')}/v1/feedback", json=body)
    accepted_at = time.monotonic()
    assert response.status_code == 202
    assert response.json() == {"id": body["id"], "status": "accepted"}

    group = wait_for(kpis_once_counted(stack, client, "E2E-DETRACTOR", 1), 2.0)
    assert group is not None, "the KPI API did not show the detractor within 2 s"
    assert group["nps"]["detractors"] == 1
    hooks = wait_for(
        lambda: webhooks_for(stack, body["customer"]["id"]) or None,
        2.0 - (time.monotonic() - accepted_at) + 0.05,
    )
    assert hooks, "the webhook did not receive the case within 2 s"
    assert hooks[0]["type"] == "case.opened"
    assert time.monotonic() - accepted_at < 2.5

    cases = client.get(f"{stack.url('closed-loop')}/v1/cases").json()
    assert any(body["customer"]["id"] in str(case) for case in cases["items"])

    duplicate = client.post(f"{stack.url('collector')}/v1/feedback", json=body)
    assert duplicate.status_code == 200
    assert duplicate.json()["status"] == "duplicate"


def test_exact_kpis_for_a_known_set_of_events(stack: Stack, client: httpx.Client) -> None:
    nps = [10, 9, 9, 8, 7, 6, 3, 0, 10, 5]
    csat = [5, 4, 4, 3, 2, 1, 5, 5, 4, 2]
    ces = [7, 6, 5, 4, 3, 2, 1, 7, 6, 5]
    events = [
        event("E2E-EXACT", scores={"nps": n, "csat": c, "ces": e}, channel=("web", "app")[i % 2])
        for i, (n, c, e) in enumerate(zip(nps, csat, ces, strict=True))
    ]
    response = client.post(f"{stack.url('collector')}/v1/feedback/batch", json={"events": events})
    assert response.status_code in (200, 202)
    assert response.json()["accepted"] == 10
    # One duplicate: accepted once only.
    again = client.post(f"{stack.url('collector')}/v1/feedback", json=events[0])
    assert again.json()["status"] == "duplicate"

    group = wait_for(kpis_once_counted(stack, client, "E2E-EXACT", 10), 15, 0.2)
    assert group is not None
    time.sleep(1.0)
    group = kpis(stack, client, "E2E-EXACT")
    assert group["responses"] == 10
    # NPS: 4 promoters (10, 9, 9, 10), 2 passives (8, 7), 4 detractors (6, 3, 0, 5): 40 - 40 = 0.
    assert group["nps"]["promoters"] == 4
    assert group["nps"]["passives"] == 2
    assert group["nps"]["detractors"] == 4
    assert group["nps"]["score"] == pytest.approx(0.0)
    # CSAT top-2-box: 5, 4, 4, 5, 5, 4 of 10 = 60 %; mean 35 / 10 = 3.5.
    assert group["csat"]["top2_pct"] == pytest.approx(60.0)
    assert group["csat"]["mean"] == pytest.approx(3.5)
    # CES mean 46 / 10 = 4.6.
    assert group["ces"]["mean"] == pytest.approx(4.6)
    assert group["low_sample"] is True

    by_channel = client.get(
        f"{stack.url('metrics')}/v1/kpis",
        params={"window": "24h", "region": "E2E-EXACT", "group_by": "channel"},
    ).json()["groups"]
    assert sorted((g["key"]["channel"], g["responses"]) for g in by_channel) == [
        ("app", 5),
        ("web", 5),
    ]


def test_metrics_killed_mid_stream_counts_exactly_once(stack: Stack, client: httpx.Client) -> None:
    total = 400
    events = [event("E2E-RESTART", scores={"nps": i % 11}) for i in range(total)]
    collector = f"{stack.url('collector')}/v1/feedback/batch"
    for start in range(0, total, 50):
        if start == 150:
            os.kill(stack.service_pid("metrics"), signal.SIGKILL)
        response = client.post(collector, json={"events": events[start : start + 50]})
        assert response.json()["accepted"] == 50
    counted = wait_for(kpis_once_counted(stack, client, "E2E-RESTART", total), 60, 0.5)
    assert counted is not None
    assert counted["responses"] == total
    time.sleep(2.0)
    group = kpis(stack, client, "E2E-RESTART")
    assert group["responses"] == total
    expected_promoters = sum(1 for i in range(total) if i % 11 >= 9)
    expected_detractors = sum(1 for i in range(total) if i % 11 <= 6)
    assert group["nps"]["promoters"] == expected_promoters
    assert group["nps"]["detractors"] == expected_detractors


def test_demo_posts_on_all_four_channels_and_reports(stack: Stack) -> None:
    cxloop = str(Path(sys.executable).with_name("cxloop"))
    result = subprocess.run(
        [
            cxloop,
            "demo",
            "--events",
            "80",
            "--collector",
            stack.url("collector"),
            "--metrics",
            stack.url("metrics"),
            "--closed-loop",
            stack.url("closed-loop"),
            "--key",
            stack.api_key,
        ],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "posted 80 events" in result.stdout
    for channel in ("web", "app", "email", "contact_centre"):
        assert f"{channel} " in result.stdout
    assert "KPIs, last 24 h, by channel" in result.stdout
    assert "Open cases:" in result.stdout


def test_interrupted_up_leaves_no_process_behind(stack: Stack) -> None:
    children = stack.children()
    assert len(children) >= 5, children  # four services and the broker
    postgres = stack.postgres_pid()
    assert postgres is not None
    assert alive(postgres)
    status = stack.interrupt()
    assert status == 0, "\n".join(stack.output[-40:])
    time.sleep(0.5)  # the output pump drains the last lines
    assert not [line for line in stack.output if "Traceback" in line], "\n".join(stack.output)
    assert "consumer cxloop-metrics stopped" in "\n".join(stack.output)
    time.sleep(0.5)
    left = [pid for pid in [*children, postgres] if alive(pid)]
    assert not left, {pid: children.get(pid, "postgres") for pid in left}
    assert not (Path(stack.data_dir) / "embedded.json").exists()


def test_up_again_on_the_same_data_counts_every_new_event(stack: Stack) -> None:
    # The embedded broker starts empty, while PostgreSQL keeps the metrics service's stored
    # positions (hundreds of records per partition by now): the new records, at offsets
    # below them, must be counted, not skipped.
    stack.start()
    try:
        total = 60
        events = [event("E2E-UP-AGAIN", scores={"nps": 10}) for _ in range(total)]
        with httpx.Client(
            timeout=10, headers={"Authorization": f"Bearer {stack.api_key}"}
        ) as client:
            response = client.post(
                f"{stack.url('collector')}/v1/feedback/batch", json={"events": events}
            )
            assert response.json()["accepted"] == total
            counted = wait_for(kpis_once_counted(stack, client, "E2E-UP-AGAIN", total), 60, 0.5)
            assert counted is not None, "\n".join(stack.output[-40:])
            assert counted["responses"] == total
        assert "after the end of the log" in "\n".join(stack.output)
    finally:
        assert stack.interrupt() == 0
