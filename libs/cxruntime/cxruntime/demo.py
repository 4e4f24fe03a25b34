"""`cxloop demo`: a realistic mixed stream of German and English feedback on all four channels,
posted to a running collector; then the KPIs and cases it caused."""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cxruntime.services import BY_NAME
from cxruntime.settings import CommonSettings
from cxruntime.state import DEV_KEY_FILE, read_state


@dataclass(frozen=True)
class Voice:
    """One kind of thing customers say, with the scores that go with it."""

    language: str
    text: str
    nps: tuple[int, int]
    touchpoint: str
    url: str = ""
    screen: str = ""


VOICES = (
    Voice(
        "de",
        "Die Lieferung kam drei Tage zu spät und der Karton war beschädigt.",
        (0, 4),
        "delivery",
    ),
    Voice(
        "de",
        "Paket ist nie angekommen, Sendungsverfolgung zeigt seit einer Woche nichts.",
        (0, 2),
        "delivery",
    ),
    Voice(
        "de", "Super schnelle Lieferung, alles bestens verpackt. Gerne wieder!", (9, 10), "delivery"
    ),
    Voice(
        "de",
        "Der Bezahlvorgang ist abgebrochen, aber das Geld wurde trotzdem abgebucht.",
        (0, 3),
        "online.checkout",
        "https://shop.example/checkout/payment",
    ),
    Voice(
        "de",
        "Bestellung ging schnell und einfach, sehr übersichtlicher Shop.",
        (8, 10),
        "online.checkout",
        "https://shop.example/checkout/confirm",
    ),
    Voice(
        "de",
        "Die Rechnung war doppelt so hoch wie vereinbart. Ich will kündigen!",
        (0, 2),
        "billing",
    ),
    Voice("de", "Die Retoure wurde schnell erstattet, danke.", (8, 10), "returns"),
    Voice("de", "Die App stürzt beim Login ständig ab, nicht gut.", (2, 5), "app", "", "login"),
    Voice(
        "de",
        "Die Hotline war freundlich, aber die Wartezeit von 40 Minuten ist unverschämt.",
        (3, 6),
        "service.contact_centre",
    ),
    Voice("de", "Produkt ist okay, nichts Besonderes.", (6, 8), "product"),
    Voice("en", "Delivery was two days late and nobody told me why.", (1, 5), "delivery"),
    Voice(
        "en",
        "Great service, the agent solved my billing problem in five minutes!",
        (9, 10),
        "service.contact_centre",
    ),
    Voice(
        "en",
        "Checkout kept failing with my credit card, very frustrating.",
        (0, 4),
        "online.checkout",
        "https://shop.example/checkout/payment",
    ),
    Voice(
        "en",
        "Love the new app, tracking my order is so easy now.",
        (9, 10),
        "app",
        "",
        "order_tracking",
    ),
    Voice("en", "Not bad, but the return label took ages to arrive.", (6, 8), "returns"),
    Voice(
        "en",
        "I was charged twice. If this is not fixed I will talk to my lawyer.",
        (0, 1),
        "billing",
    ),
)
SEGMENTS = ("premium", "standard", "standard", "business")
REGIONS = ("DE-BY", "DE-BE", "DE-NW", "DE-HH", "AT-9", "CH-ZH")


def _default_urls(args: argparse.Namespace) -> tuple[str, str, str]:
    settings = CommonSettings()
    state = read_state(settings.data_dir)
    services = state.services if state is not None else {}

    def url(name: str, given: str | None) -> str:
        if given:
            return given.rstrip("/")
        return services.get(name) or f"http://127.0.0.1:{BY_NAME[name].port()}"

    return (
        url("collector", args.collector),
        url("metrics", args.metrics),
        url("closed-loop", args.closed_loop),
    )


def _key(args: argparse.Namespace) -> str | None:
    if args.key:
        return str(args.key)
    path = Path(CommonSettings().data_dir) / DEV_KEY_FILE
    return path.read_text().strip() if path.is_file() else None


def _native(rng: random.Random, voice: Voice, channel: str, now: datetime) -> dict[str, Any]:
    nps = rng.randint(*voice.nps)
    csat = max(1, min(5, round(nps / 2.2) + 1))
    return {
        "id": f"demo-{uuid.uuid4()}",
        "occurred_at": (now - timedelta(minutes=rng.randint(0, 600))).isoformat(),
        "channel": channel,
        "customer": {
            "id": f"crm-{rng.randint(1000, 9999)}",
            "segment": rng.choice(SEGMENTS),
            "region": rng.choice(REGIONS),
        },
        "scores": {"nps": nps, "csat": csat} if channel == "web" else {"nps": nps},
        "comment": voice.text,
        "language": voice.language,
        "touchpoint": voice.touchpoint,
        "context": {"url": voice.url, "app_screen": voice.screen}
        if channel == "web" or voice.screen
        else {},
    }


def _email(rng: random.Random, voice: Voice) -> dict[str, Any]:
    customer = f"kunde{rng.randint(100, 999)}@example.org"
    if voice.language == "de":
        quote = "Am 20.11.2026 um 10:00 schrieb Service <service@shop.example>:\n> Wie war's?"
    else:
        quote = "On Fri, Nov 20, 2026 at 10:00 AM Service <service@shop.example> wrote:\n> How?"
    subject = "Re: Ihre Bestellung" if voice.language == "de" else "Re: Your order"
    return {
        "from": customer,
        "to": "feedback@shop.example",
        "subject": subject,
        "text": f"{voice.text}\n\n{quote}\n-- \nGesendet von meinem Telefon",
        "html": "",
        "headers": {"Message-ID": f"<{uuid.uuid4()}@mail.example.org>"},
    }


def _call(rng: random.Random, voice: Voice) -> dict[str, Any]:
    return {
        "call_id": f"call-{uuid.uuid4().hex[:10]}",
        "queue": rng.choice(("billing", "delivery", "general")),
        "agent_id": f"agent-{rng.randint(1, 40)}",
        "customer_id": f"crm-{rng.randint(1000, 9999)}",
        "nps": rng.randint(*voice.nps),
        "comment": voice.text,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


DEFAULT_WAIT_S = 60.0
"""How long the demo waits for its events to reach the KPIs and the cases."""
POLL_S = 0.5


class DemoError(Exception):
    """The demo cannot go on; the message says why, for one line on stderr."""


@dataclass
class _Posted:
    """Events the collector accepted, per channel, and what it refused."""

    counts: dict[str, int]
    failures: list[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def run_demo(
    args: argparse.Namespace,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Post the stream, wait until the metrics API counts it and the closed loop has
    processed it, then print KPIs and cases.

    Exit 1 when the collector refused events or the pipeline did not catch up within the
    wait (then nothing stale is printed), 2 when the demo could not start."""
    collector, metrics, closed_loop = _default_urls(args)
    key = _key(args)
    if key is None:
        print(
            "cxloop demo: no API key; pass --key or run `cxloop up` in this folder", file=sys.stderr
        )
        return 2
    # `--wait` may be missing from the namespace (a parser without the option).
    wait_s = float(getattr(args, "wait", None) or DEFAULT_WAIT_S)
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    # Every event the demo posts occurs in this range (natives up to 10 h back); whole hours,
    # so that the metrics API answers the same range on every poll.
    span = (
        (now - timedelta(hours=11)).replace(minute=0, second=0, microsecond=0),
        (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0),
    )
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(headers=headers, timeout=10, transport=transport) as client:
        try:
            _check_collector(client, collector)
            before = (
                _kpi_responses(client, metrics, span),
                _feedback_processed(client, closed_loop),
            )
        except DemoError as exc:
            print(f"cxloop demo: {exc}", file=sys.stderr)
            return 2
        try:
            posted = _post_stream(client, collector, rng, args.events, now)
        except httpx.HTTPError as exc:
            print(f"cxloop demo: the collector at {collector} failed: {exc}", file=sys.stderr)
            return 1
        print(
            f"posted {posted.total} events: "
            + ", ".join(f"{c} {n}" for c, n in posted.counts.items())
        )
        for failure in posted.failures[:5]:
            print(f"  rejected: {failure}")
        print(f"waiting for them to reach the KPIs and the cases (at most {wait_s:g} s)")
        started = clock()
        try:
            _wait_for_pipeline(
                client,
                metrics=metrics,
                closed_loop=closed_loop,
                span=span,
                before=before,
                expected=posted.total,
                deadline=started + wait_s,
                sleep=sleep,
                clock=clock,
            )
        except DemoError as exc:
            print(f"cxloop demo: {exc}", file=sys.stderr)
            return 1
        print(f"all {posted.total} counted and processed after {clock() - started:.1f} s")
        _print_kpis(client, metrics)
        _print_cases(client, closed_loop)
    return 0 if not posted.failures else 1


def _check_collector(client: httpx.Client, collector: str) -> None:
    try:
        client.get(f"{collector}/healthz").raise_for_status()
    except httpx.HTTPError as exc:
        raise DemoError(f"no collector at {collector} ({exc}); start `cxloop up` first") from None


def _post_stream(
    client: httpx.Client, collector: str, rng: random.Random, events: int, now: datetime
) -> _Posted:
    """Post `events` events on the four channels; count what the collector accepted."""
    posted = _Posted({"web": 0, "app": 0, "email": 0, "contact_centre": 0}, [])
    natives = []
    for _ in range(events):
        voice = rng.choice(VOICES)
        channel = rng.choices(("web", "app", "email", "contact_centre"), (5, 3, 1, 1))[0]
        if channel in ("web", "app"):
            natives.append(_native(rng, voice, channel, now))
        elif channel == "email":
            response = client.post(f"{collector}/v1/channels/email", json=_email(rng, voice))
            _tally(response, ["email"], posted)
        else:
            response = client.post(
                f"{collector}/v1/channels/contact-centre", json=[_call(rng, voice)]
            )
            _tally(response, ["contact_centre"], posted)
    for start in range(0, len(natives), 100):
        chunk = natives[start : start + 100]
        response = client.post(f"{collector}/v1/feedback/batch", json={"events": chunk})
        _tally(response, [event["channel"] for event in chunk], posted)
    return posted


def _tally(response: httpx.Response, channels: list[str], posted: _Posted) -> None:
    """Count the events one post added: 202 for one event; for a list, 200 with per-item
    results (`accepted`, `duplicates` and the `rejected` items by index)."""
    if response.status_code == 202:
        posted.counts[channels[0]] += 1
        return
    if response.status_code != 200:
        posted.failures.append(f"{channels[0]}: {response.status_code} {response.text[:200]}")
        return
    body = response.json()
    if "rejected" not in body:
        return  # one event, a duplicate: nothing new
    refused = {int(item["index"]) for item in body["rejected"]}
    for index, channel in enumerate(channels):
        if index not in refused:
            posted.counts[channel] += 1
    for item in body["rejected"]:
        posted.failures.append(f"{channels[int(item['index'])]}: {str(item['errors'])[:200]}")


def _kpi_responses(client: httpx.Client, metrics: str, span: tuple[datetime, datetime]) -> int:
    """Responses the metrics API counts in `span`, all channels together."""
    params = {"from": span[0].isoformat(), "to": span[1].isoformat()}
    try:
        response = client.get(f"{metrics}/v1/kpis", params=params)
    except httpx.HTTPError as exc:
        raise DemoError(f"no metrics API at {metrics} ({exc})") from None
    if response.status_code != 200:
        raise DemoError(
            f"the metrics API at {metrics} answered {response.status_code}: {response.text[:200]}"
        )
    return sum(int(group["responses"]) for group in response.json()["groups"])


def _feedback_processed(client: httpx.Client, closed_loop: str) -> int:
    """Enriched events the closed loop has processed, whatever they did to cases, from its
    `cx_closed_loop_feedback_total`. It counts an event after the transaction that opened or
    updated its case committed, so a counted event's case exists."""
    try:
        response = client.get(f"{closed_loop}/metrics")
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DemoError(f"no closed loop at {closed_loop} ({exc})") from None
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == "cx_closed_loop_feedback_total"
        )
    )


def _wait_for_pipeline(
    client: httpx.Client,
    *,
    metrics: str,
    closed_loop: str,
    span: tuple[datetime, datetime],
    before: tuple[int, int],
    expected: int,
    deadline: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Poll until the metrics API counts `expected` responses more than `before` and the
    closed loop has processed as many events more; else DemoError naming the stage behind."""
    counted_before, processed_before = before
    while True:
        counted = _kpi_responses(client, metrics, span) - counted_before
        processed_now = _feedback_processed(client, closed_loop)
        if processed_now < processed_before:
            processed_before = 0  # the closed loop restarted, and its counter with it
        processed = processed_now - processed_before
        if counted >= expected and processed >= expected:
            return
        if clock() >= deadline:
            raise DemoError(_behind(counted, processed, expected, metrics, closed_loop))
        sleep(POLL_S)


def _behind(counted: int, processed: int, expected: int, metrics: str, closed_loop: str) -> str:
    """Which stage did not catch up, in one line."""
    progress = (
        f"the metrics API counted {max(counted, 0)} of the {expected} events, "
        f"the closed loop processed {max(processed, 0)}"
    )
    if counted < expected and processed < expected:
        stage = "the enricher (or Kafka) is behind or stopped, as neither consumer has them all"
    elif counted < expected:
        stage = f"the metrics service at {metrics} is behind or stopped"
    else:
        stage = f"the closed loop at {closed_loop} is behind or stopped"
    return f"timed out waiting for the pipeline: {progress}; {stage}"


def _print_kpis(client: httpx.Client, metrics: str) -> None:
    response = client.get(f"{metrics}/v1/kpis", params={"window": "24h", "group_by": "channel"})
    if response.status_code != 200:
        print(f"KPIs: {response.status_code} {response.text[:200]}")
        return
    print("\nKPIs, last 24 h, by channel:")
    header = f"  {'channel':<16}{'n':>6}{'NPS':>8}  {'NPS 95% CI':<16}"
    print(header + f"{'CSAT %':>8}{'CES':>6}{'sent.':>7}")
    for group in response.json()["groups"]:
        nps = group.get("nps") or {}
        csat = group.get("csat") or {}
        ces = group.get("ces") or {}
        ci = nps.get("ci95") or [None, None]
        print(
            f"  {group['key'].get('channel', '-'):<16}{group['responses']:>6}"
            f"{_num(nps.get('score')):>8}  [{_num(ci[0])}, {_num(ci[1])}]".ljust(40)
            + f"{_num(csat.get('top2_pct')):>8}{_num(ces.get('mean')):>6}"
            + f"{_num(group.get('sentiment_avg'), 2):>7}"
            + ("  (low sample)" if group.get("low_sample") else "")
        )


def _print_cases(client: httpx.Client, closed_loop: str) -> None:
    response = client.get(f"{closed_loop}/v1/cases", params={"status": "open", "limit": 10})
    if response.status_code != 200:
        print(f"cases: {response.status_code} {response.text[:200]}")
        return
    body = response.json()
    print(f"\nOpen cases: {body.get('total', len(body['items']))} (newest 10)")
    for case in body["items"][:10]:
        customer = (case.get("customer") or {}).get("id", "-")
        reasons = ", ".join(case.get("reasons") or [])
        print(
            f"  {str(case.get('id'))[:8]}  {case.get('severity', '-'):<7}"
            f" {case.get('team', '-'):<14} {case.get('touchpoint', '-'):<24}"
            f" {customer:<10} {reasons}"
        )


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{float(value):.{digits}f}"
