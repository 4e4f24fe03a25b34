"""The enricher's `cxloop` commands: `touchpoints test`, `pii redact` and the `sentiment`
family."""

from __future__ import annotations

import argparse
import collections
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cxloop_enricher.enrich import redact_event
from cxloop_enricher.pii import configured_redactor
from cxloop_enricher.sentiment.cli import register_sentiment
from cxloop_enricher.settings import load_settings
from cxloop_enricher.taxonomy import Taxonomy, load_taxonomy
from cxloop_enricher.touchpoints import Tagging, TouchpointTagger
from cxruntime.cli import at_least, field_errors, utf8_text
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
        help="a JSON file with one native feedback event, a list of them, or JSON lines of "
        "them, such as an export of a topic ('-' for stdin)",
    )
    test.add_argument("--json", action="store_true", help="one JSON line per event")
    test.add_argument(
        "--summary",
        action="store_true",
        help="instead of each event: events per touchpoint and rule, the rules that decided "
        "none, and examples of what stayed unclassified (to tune a taxonomy on a sample)",
    )
    test.add_argument(
        "--examples",
        type=at_least(0),
        default=10,
        help="unclassified comments shown with --summary (default 10; redacted)",
    )
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


def _read_text(source: str) -> str:
    """The file's (or stdin's) text: UTF-8, with or without a byte-order mark."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        return utf8_text(data)
    except ValueError as exc:
        raise _NotAnEventError(str(exc)) from None


def _read_events(source: str) -> list[FeedbackSubmission]:
    """The events of a JSON file (one event or a list) or of JSON lines (one event each)."""
    text = _read_text(source)
    places: list[str]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise _NotAnEventError(f"not JSON: {exc}") from None
        items, places = _json_lines(text)
    except RecursionError:
        raise _NotAnEventError("not JSON: nested too deeply") from None
    else:
        items = data if isinstance(data, list) else [data]
        places = [f" (item {i} of the list, counted from 0)" for i in range(len(items))]
        if items is not data:
            places = [""]
    if not items:
        raise _NotAnEventError("an empty list, no event to test")
    events: list[FeedbackSubmission] = []
    for item, place in zip(items, places, strict=True):
        try:
            events.append(FeedbackReceived.model_validate(item))
        except ValidationError as received:
            try:
                events.append(FeedbackSubmission.model_validate(item))
            except ValidationError as submitted:
                # Report against the schema the item comes closer to: a native event's mistake
                # is not buried under the fields only a received event has, and vice versa.
                closest = min(submitted, received, key=lambda exc: exc.error_count())
                raise _NotAnEventError(
                    "\n".join(
                        f"not a feedback event{place}: {line}" for line in field_errors(closest)
                    )
                ) from None
    return events


def _json_lines(text: str) -> tuple[list[Any], list[str]]:
    """The values of JSON lines (blank lines skipped) and where each stood."""
    items: list[Any] = []
    places: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise _NotAnEventError(f"line {number}: not JSON: {reason}") from exc
        places.append(f" (line {number})")
    return items, places


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
    except OSError as exc:
        reason = exc.strerror or exc
        print(f"cxloop touchpoints test: cannot read {args.event}: {reason}", file=sys.stderr)
        return 2
    except _NotAnEventError as exc:
        for line in str(exc).splitlines():
            print(f"cxloop touchpoints test: {args.event}: {line}", file=sys.stderr)
        return 2
    tagger = TouchpointTagger(taxonomy)
    redactor = configured_redactor(taxonomy, settings)
    summary = _Summary(taxonomy, args.examples)
    blocks = []
    for event in events:
        redacted_comment, _, _, comment, context = redact_event(redactor, event)
        tagging = tagger.tag(event, comment=comment, context=context)
        if args.summary:
            summary.add(tagging, redacted_comment)
        elif args.json:
            print(json.dumps(_as_json(tagging), ensure_ascii=False))
        else:
            blocks.append(_as_text(tagging))
    if args.summary:
        print(json.dumps(summary.as_json(), ensure_ascii=False) if args.json else summary.text())
    elif blocks:
        print(f"taxonomy:       {taxonomy.source}")
        print("\n\n".join(blocks))
    return 0


class _Summary:
    """How a sample of events spreads over the touchpoints, for `touchpoints test --summary`."""

    def __init__(self, taxonomy: Taxonomy, examples: int) -> None:
        self._taxonomy = taxonomy
        self._examples = examples
        self.events = 0
        self.touchpoints: collections.Counter[str] = collections.Counter()
        self.deciders: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.unclassified: list[str] = []

    def add(self, tagging: Tagging, comment: str | None) -> None:
        """Count one tagged event; keep its (redacted) comment if nothing classified it."""
        tp = tagging.touchpoint.id
        self.events += 1
        self.touchpoints[tp] += 1
        self.deciders[tp][f"rule {tagging.rule}" if tagging.rule else tagging.via] += 1
        if tagging.via == "default" and comment and len(self.unclassified) < self._examples:
            self.unclassified.append(comment)

    def unused_rules(self) -> list[str]:
        """Rules that decided no event of the sample, in file order."""
        used = {name for deciders in self.deciders.values() for name in deciders}
        return [r.name for r in self._taxonomy.rules if f"rule {r.name}" not in used]

    def as_json(self) -> dict[str, Any]:
        """The summary as one JSON object."""
        return {
            "taxonomy": str(self._taxonomy.source),
            "events": self.events,
            "touchpoints": [
                {
                    "touchpoint": tp,
                    "events": n,
                    "share": round(n / self.events, 4),
                    "decided_by": dict(self.deciders[tp].most_common()),
                }
                for tp, n in self.touchpoints.most_common()
            ],
            "unused_rules": self.unused_rules(),
            "unclassified_examples": self.unclassified,
        }

    def text(self) -> str:
        """The summary as a table."""
        width = max(len("touchpoint"), *map(len, self.touchpoints))
        lines = [
            f"taxonomy:  {self._taxonomy.source}",
            f"events:    {self.events:,}",
            "",
            f"{'touchpoint':<{width}}  {'events':>7}  {'share':>6}  decided by",
        ]
        for tp, n in self.touchpoints.most_common():
            deciders = ", ".join(f"{name} {k:,}" for name, k in self.deciders[tp].most_common())
            lines.append(f"{tp:<{width}}  {n:>7,}  {n / self.events:>6.1%}  {deciders}")
        unused = self.unused_rules()
        lines += ["", f"rules that decided no event ({len(unused)}):"]
        lines += textwrap.wrap(
            ", ".join(unused) or "-",
            96,
            initial_indent="  ",
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
        if self.unclassified:
            lines += ["", f"unclassified comments (first {len(self.unclassified)}, redacted):"]
            lines += [f"  {json.dumps(c, ensure_ascii=False)}" for c in self.unclassified]
        return "\n".join(lines)
