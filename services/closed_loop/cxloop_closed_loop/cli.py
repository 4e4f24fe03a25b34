"""`cxloop routes test`, `cxloop deliveries list|resend`, `cxloop webhooks listen`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cxloop_closed_loop import repository
from cxloop_closed_loop.config import (
    SECRET_FILE,
    RoutingConfig,
    default_webhook_secret,
    load_config,
)
from cxloop_closed_loop.detection import detect, labels_of
from cxloop_closed_loop.listen import listen
from cxloop_closed_loop.relay import ResendConflict, resend
from cxloop_closed_loop.routing import route
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxruntime.cli import at_least, field_errors, port_number, utf8_text
from cxruntime.db import make_engine, make_sessionmaker
from cxschema import FeedbackEnriched, FeedbackSubmission


def register(commands: Any) -> None:
    """Add the closed loop's commands to the `cxloop` parser."""
    routes = commands.add_parser("routes", help="the closed loop's routing tree")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True)
    test = routes_sub.add_parser("test", help="show the route, team and receivers of an event")
    test.add_argument("--event", required=True, type=Path, help="a JSON event (native/enriched)")
    test.set_defaults(handler=_routes_test)

    deliveries = commands.add_parser("deliveries", help="closed-loop notifications")
    deliveries_sub = deliveries.add_subparsers(dest="deliveries_command", required=True)
    listing = deliveries_sub.add_parser("list", help="list notifications (default: dead)")
    listing.add_argument(
        "--status", default="dead", choices=["pending", "delivered", "dead", "all"]
    )
    listing.add_argument("--limit", type=at_least(1), default=50)
    listing.set_defaults(handler=_deliveries)
    again = deliveries_sub.add_parser("resend", help="re-send a notification (same webhook-id)")
    again.add_argument("id")
    again.set_defaults(handler=_deliveries)

    webhooks = commands.add_parser("webhooks", help="Standard Webhooks tools")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    lis = webhooks_sub.add_parser("listen", help="a development receiver printing webhooks")
    lis.add_argument("--port", type=port_number, default=9000)
    lis.add_argument("--host", default="127.0.0.1")
    lis.add_argument(
        "--secret",
        default=None,
        help="whsec_... (default: CX_CLOSED_LOOP_WEBHOOK_SECRET or the one under CX_DATA_DIR)",
    )
    lis.set_defaults(handler=_webhooks_listen)


class NotAnEventError(ValueError):
    """The file holds no event `routes test` can use; each line of the message says why."""


def as_enriched(raw: Any) -> FeedbackEnriched:
    """An enriched event from a file holding an enriched or a native event."""
    try:
        return FeedbackEnriched.model_validate(raw)
    except ValidationError as enriched:
        try:
            submission = FeedbackSubmission.model_validate(raw)
        except ValidationError as native:
            # Report against the schema the file comes closer to: a native event's mistake is
            # not buried under the fields only an enriched event has, and vice versa.
            closest = min(native, enriched, key=lambda exc: exc.error_count())
            raise NotAnEventError(_not_an_event(closest)) from None
    now = datetime.now(UTC)
    data = submission.model_dump(exclude_none=True)
    data.update(
        id=submission.id or "routes-test",
        occurred_at=submission.occurred_at or now,
        received_at=now,
        source="cxloop-routes-test",
        touchpoint=submission.touchpoint or "unknown",
        journey_stage=raw.get("journey_stage", "unknown"),
        language=submission.language or "und",
        sentiment=raw.get("sentiment") or {"label": "neutral", "score": 0.0},
    )
    try:
        return FeedbackEnriched.model_validate(data)
    except ValidationError as exc:
        raise NotAnEventError(_not_an_event(exc)) from None


def _not_an_event(exc: ValidationError) -> str:
    return "\n".join(f"not a feedback event: {line}" for line in field_errors(exc))


def read_event(path: Path) -> FeedbackEnriched:
    """The event of a JSON file (UTF-8, with or without a byte-order mark)."""
    try:
        text = utf8_text(path.read_bytes())
    except ValueError as exc:
        raise NotAnEventError(str(exc)) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotAnEventError(f"not JSON: {exc}") from None
    except RecursionError:
        raise NotAnEventError("not JSON: nested too deeply") from None
    return as_enriched(raw)


def explain(config: RoutingConfig, event: FeedbackEnriched) -> list[str]:
    """Lines saying whether the event opens a case and where it goes."""
    finding = detect(event, config.detection, config.severity)
    lines = []
    if finding is None:
        lines.append("case: no (not a detractor, no negative comment, no keyword)")
        severity = config.severity.default
    else:
        severity = finding.severity
        lines.append(f"case: yes ({', '.join(finding.reasons)}), severity {severity}")
    decision = route(config, labels_of(event, severity))
    for index, match in enumerate(decision.matches):
        role = "owner" if index == 0 else "also"
        lines.append(f"route: {'/'.join(match.path)} ({role}) -> team {match.team}")
    receivers = decision.receivers(config)
    lines.append(f"team: {decision.team}")
    lines.append(f"receivers: {', '.join(receivers) if receivers else '(none)'}")
    return lines


def _routes_test(args: argparse.Namespace) -> int:
    settings = ClosedLoopSettings()
    config = load_config(settings)
    try:
        event = read_event(args.event)
    except OSError as exc:
        reason = exc.strerror or exc
        print(f"cxloop routes test: cannot read {args.event}: {reason}", file=sys.stderr)
        return 2
    except NotAnEventError as exc:
        for line in str(exc).splitlines():
            print(f"cxloop routes test: {args.event}: {line}", file=sys.stderr)
        return 2
    for line in explain(config, event):
        print(line)
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    settings = ClosedLoopSettings()

    async def act() -> int:
        engine = make_engine(settings.database_dsn(), pool_size=1, max_overflow=0)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session, session.begin():
                if args.deliveries_command == "resend":
                    try:
                        row = await resend(session, delivery_id=args.id, now=datetime.now(UTC))
                    except ResendConflict as exc:
                        print(f"cxloop deliveries: {exc}", file=sys.stderr)
                        return 1
                    if row is None:
                        print(f"no delivery {args.id}", file=sys.stderr)
                        return 1
                    print(f"re-queued {row.id} ({row.event_type} to {row.receiver})")
                    return 0
                status = None if args.status == "all" else args.status
                rows, total = await repository.list_deliveries(
                    session, status=status, limit=args.limit, offset=0
                )
                print(f"{'ID':<37} {'STATUS':<10} {'TYPE':<15} {'RECEIVER':<20} ATTEMPTS  ERROR")
                for row in rows:
                    print(
                        f"{row.id:<37} {row.status:<10} {row.event_type:<15} "
                        f"{row.receiver:<20} {row.attempts:<9} {(row.last_error or '')[:60]}"
                    )
                print(f"{total} in all")
                return 0
        finally:
            await engine.dispose()

    return asyncio.run(act())


def _webhooks_listen(args: argparse.Namespace) -> int:
    settings = ClosedLoopSettings()
    if args.secret:
        secret, source = args.secret, "--secret"
    else:
        secret = default_webhook_secret(settings)
        source = (
            "CX_CLOSED_LOOP_WEBHOOK_SECRET"
            if settings.closed_loop_webhook_secret is not None
            and settings.closed_loop_webhook_secret.get_secret_value()
            else str((settings.data_dir / SECRET_FILE).resolve())
        )
    print(f"verifying signatures with the secret from {source}", flush=True)
    try:
        return listen(args.host, args.port, secret)
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        print(
            f"cxloop: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
