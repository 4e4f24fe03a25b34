"""The enricher's `cxloop` commands: `touchpoints test`, `pii redact` and the `sentiment`
family."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cxloop_enricher.enrich import redact_event
from cxloop_enricher.pii import configured_redactor
from cxloop_enricher.sentiment.cli import register_sentiment
from cxloop_enricher.settings import load_settings
from cxloop_enricher.taxonomy import load_taxonomy
from cxloop_enricher.touchpoints import Tagging, TouchpointTagger
from cxschema import FeedbackReceived, FeedbackSubmission


def register(commands: Any) -> None:
    """Add `touchpoints`, `pii` and `sentiment` to the `cxloop` sub-parser collection."""
    parser = commands.add_parser("touchpoints", help="the touchpoint taxonomy and its rules")
    sub = parser.add_subparsers(dest="touchpoints_command", required=True, metavar="COMMAND")
    test = sub.add_parser(
        "test", help="print the touchpoint an event would be tagged with, and which rule decided"
    )
    test.add_argument(
        "--event",
        required=True,
        help="a JSON file with one native feedback event or a list of them ('-' for stdin)",
    )
    test.add_argument("--json", action="store_true", help="one JSON line per event")
    test.set_defaults(handler=_test)

    pii = commands.add_parser("pii", help="personal data redaction")
    pii_sub = pii.add_subparsers(dest="pii_command", required=True, metavar="COMMAND")
    redact = pii_sub.add_parser(
        "redact",
        help="stdin: one text per line; stdout: each as the enricher would pass it on (with the "
        "taxonomy's pii section and CX_ENRICHER_PII_*)",
    )
    redact.add_argument(
        "--json", action="store_true", help='one JSON line each: {"text", "redactions"}'
    )
    redact.set_defaults(handler=_redact)
    register_sentiment(commands)


class _NotAnEventError(ValueError):
    """The file holds something other than feedback events; the message says which item."""


def _read_events(source: str) -> list[FeedbackSubmission]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise _NotAnEventError("an empty list, no event to test")
    events: list[FeedbackSubmission] = []
    for index, item in enumerate(items):
        try:
            events.append(FeedbackReceived.model_validate(item))
        except ValidationError:
            try:
                events.append(FeedbackSubmission.model_validate(item))
            except ValidationError as exc:
                where = f" (item {index} of the list, counted from 0)" if items is data else ""
                raise _NotAnEventError(f"not a feedback event{where}:\n{exc}") from exc
    return events


def _redact(args: argparse.Namespace) -> int:
    settings = load_settings()
    redactor = configured_redactor(load_taxonomy(settings.config_dir), settings)
    out = sys.stdout
    for line in sys.stdin:
        redacted = redactor.redact(line.rstrip("\r\n"))
        if args.json:
            record = {"text": redacted.text, "redactions": redacted.counts}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write(redacted.text + "\n")
    out.flush()
    return 0


def _as_json(tagging: Tagging) -> dict[str, Any]:
    tp = tagging.touchpoint
    return {
        "touchpoint": tp.id,
        "name": tp.name,
        "journey_stage": tp.stage,
        "owner_team": tp.team,
        "via": tagging.via,
        "rule": tagging.rule,
        "reasons": list(tagging.reasons),
    }


def _as_text(tagging: Tagging) -> str:
    tp = tagging.touchpoint
    return "\n".join(
        [
            f"touchpoint:     {tp.id} ({tp.name})",
            f"journey stage:  {tp.stage}",
            f"owner team:     {tp.team or '-'}",
            f"decided by:     {tagging.explain()}",
        ]
    )


def _test(args: argparse.Namespace) -> int:
    settings = load_settings()
    taxonomy = load_taxonomy(settings.config_dir)
    try:
        events = _read_events(args.event)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cxloop touchpoints test: cannot read {args.event}: {exc}", file=sys.stderr)
        return 2
    except _NotAnEventError as exc:
        print(f"cxloop touchpoints test: {args.event}: {exc}", file=sys.stderr)
        return 2
    tagger = TouchpointTagger(taxonomy)
    redactor = configured_redactor(taxonomy, settings)
    blocks = []
    for event in events:
        *_, comment, context = redact_event(redactor, event)
        tagging = tagger.tag(event, comment=comment, context=context)
        if args.json:
            print(json.dumps(_as_json(tagging), ensure_ascii=False))
        else:
            blocks.append(_as_text(tagging))
    if blocks:
        print(f"taxonomy:       {taxonomy.source}")
        print("\n\n".join(blocks))
    return 0
