"""`cxloop demo`: a realistic mixed stream of German and English feedback on all four channels,
posted to a running collector; then the KPIs and cases it caused."""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

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


def run_demo(args: argparse.Namespace) -> int:
    """Post the stream, wait for it to flow through, print KPIs and cases."""
    collector, metrics, closed_loop = _default_urls(args)
    key = _key(args)
    if key is None:
        print(
            "cxloop demo: no API key; pass --key or run `cxloop up` in this folder", file=sys.stderr
        )
        return 2
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    headers = {"Authorization": f"Bearer {key}"}
    counts = {"web": 0, "app": 0, "email": 0, "contact_centre": 0}
    failures: list[str] = []
    with httpx.Client(headers=headers, timeout=10) as client:
        try:
            client.get(f"{collector}/healthz").raise_for_status()
        except httpx.HTTPError as exc:
            print(
                f"cxloop demo: no collector at {collector} ({exc}); start `cxloop up` first",
                file=sys.stderr,
            )
            return 2
        natives = []
        for _ in range(args.events):
            voice = rng.choice(VOICES)
            channel = rng.choices(("web", "app", "email", "contact_centre"), (5, 3, 1, 1))[0]
            if channel in ("web", "app"):
                natives.append(_native(rng, voice, channel, now))
                counts[channel] += 1
            elif channel == "email":
                response = client.post(f"{collector}/v1/channels/email", json=_email(rng, voice))
                _tally(response, "email", counts, failures)
            else:
                response = client.post(
                    f"{collector}/v1/channels/contact-centre", json=[_call(rng, voice)]
                )
                _tally(response, "contact_centre", counts, failures)
        for start in range(0, len(natives), 100):
            response = client.post(
                f"{collector}/v1/feedback/batch", json={"events": natives[start : start + 100]}
            )
            if response.status_code >= 300:
                failures.append(f"batch: {response.status_code} {response.text[:200]}")
        print(
            f"posted {sum(counts.values())} events: "
            + ", ".join(f"{c} {n}" for c, n in counts.items())
        )
        for failure in failures[:5]:
            print(f"  rejected: {failure}")
        time.sleep(3)
        _print_kpis(client, metrics)
        _print_cases(client, closed_loop)
    return 0 if not failures else 1


def _tally(
    response: httpx.Response, channel: str, counts: dict[str, int], failures: list[str]
) -> None:
    if response.status_code < 300:
        counts[channel] += 1
    else:
        failures.append(f"{channel}: {response.status_code} {response.text[:200]}")


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
