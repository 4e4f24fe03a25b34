"""Post-call survey records from a contact centre, as JSON or as a spreadsheet CSV export.

CSV exports come comma- or semicolon-separated, UTF-8 with or without BOM (or Windows-1252 from
older spreadsheet software), with German decimal commas ("4,0") and German dates
("23.11.2026 14:05"). Column names are matched case-insensitively against English and German
aliases. Every row is answered on its own.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from cxschema import PLAIN_SUBMISSION, Plain

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "call_id": (
        "call_id",
        "callid",
        "call",
        "anruf_id",
        "anrufid",
        "gespraechs_id",
        "interaction_id",
    ),
    "queue": ("queue", "ivr_queue", "warteschlange", "skill"),
    "agent_id": ("agent_id", "agent", "agent_name", "mitarbeiter", "bearbeiter"),
    "customer_id": ("customer_id", "customer", "kunde", "kundennummer", "kunden_id"),
    "nps": ("nps", "nps_score", "weiterempfehlung"),
    "csat": ("csat", "csat_score", "zufriedenheit"),
    "ces": ("ces", "ces_score", "aufwand"),
    "comment": ("transcript", "transcript_snippet", "comment", "kommentar", "transkript", "notiz"),
    "occurred_at": (
        "occurred_at",
        "call_ended_at",
        "ended_at",
        "call_end",
        "timestamp",
        "datum",
        "zeitpunkt",
        "date",
    ),
    "language": ("language", "sprache"),
    "segment": ("segment",),
    "region": ("region",),
}
_LOOKUP: Final = {alias: field for field, aliases in ALIASES.items() for alias in aliases}
_SCORES: Final = ("nps", "csat", "ces")
_LOCAL_FORMATS: Final = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
)
MAX_ROWS: Final = 2000

Errors = list[dict[str, str]]


@dataclass(frozen=True)
class Row:
    """One survey record: its position and either a submission or the reasons it failed."""

    index: int
    line: int | None
    result: Plain | Errors


def normalise(name: str) -> str:
    """A column name as matched against the aliases."""
    name = name.strip().lstrip("\ufeff").lower()
    name = name.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    return re.sub(r"[\s\-./]+", "_", name).strip("_")


def parse_score(value: Any) -> int | None:
    """A score cell: blank is None; "4", 4, 4.0 and "4,0" are 4; anything else raises."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not number.is_integer():
        raise ValueError(f"{text!r} must be a whole number")
    return int(number)


def parse_time(value: Any, zone: ZoneInfo) -> datetime | str | None:
    """ISO 8601 passes through (the model validates it); local German or ISO-like times
    without an offset are read in `zone`."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def to_submission(record: Mapping[str, Any], zone: ZoneInfo) -> Plain | Errors:
    """A survey record (any known column names) as a native contact-centre event."""
    values: dict[str, Any] = {}
    column: dict[str, str] = {}
    errors: Errors = []
    for name, value in record.items():
        field = _LOOKUP.get(normalise(str(name)))
        if field is None or field in values:
            continue
        values[field] = value
        column[field] = str(name).lstrip("\ufeff").strip()
    if isinstance(record.get("scores"), dict):
        for score, value in record["scores"].items():
            values.setdefault(str(score), value)
            column.setdefault(str(score), f"scores.{score}")
    call_id = str(values.get("call_id") or "").strip()
    if not call_id:
        errors.append(
            {"field": column.get("call_id", "call_id"), "message": "a call id is required"}
        )
    scores: dict[str, int] = {}
    for score in _SCORES:
        try:
            parsed = parse_score(values.get(score))
        except ValueError as exc:
            errors.append({"field": column[score], "message": str(exc)})
            continue
        if parsed is not None:
            scores[score] = parsed
    if errors:
        return errors

    def text(field: str) -> str | None:
        value = values.get(field)
        return None if value is None or str(value).strip() == "" else str(value).strip()

    customer = text("customer_id")
    fields: dict[str, Any] = {
        "id": call_id,
        "channel": "contact_centre",
        "scores": scores,
        "comment": text("comment"),
        "language": text("language"),
        "context": {
            "call_id": call_id,
            "ivr_queue": text("queue") or "",
            "agent_id": text("agent_id") or "",
        },
    }
    if customer:
        fields["customer"] = {
            "id": customer,
            "segment": text("segment"),
            "region": text("region"),
        }
    occurred_at = parse_time(values.get("occurred_at"), zone)
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    try:
        return PLAIN_SUBMISSION.validate_python(fields)
    except ValidationError as exc:
        return [_named(item, column) for item in exc.errors(include_url=False, include_input=False)]


_NATIVE_TO_FIELD: Final = {
    "id": "call_id",
    "scores.nps": "nps",
    "scores.csat": "csat",
    "scores.ces": "ces",
    "comment": "comment",
    "language": "language",
    "occurred_at": "occurred_at",
    "context.call_id": "call_id",
    "context.ivr_queue": "queue",
    "context.agent_id": "agent_id",
    "customer.id": "customer_id",
    "customer.segment": "segment",
    "customer.region": "region",
}


def _named(item: Any, column: Mapping[str, str]) -> dict[str, str]:
    loc = ".".join(str(part) for part in item["loc"])
    field = _NATIVE_TO_FIELD.get(loc)
    name = column.get(field, field) if field else None
    return {"field": name or loc or "(record)", "message": item["msg"], "type": item["type"]}


def decode_csv(body: bytes) -> str:
    """CSV bytes as text: UTF-8 (BOM dropped), else Windows-1252."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def csv_records(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV export with the line each starts on; blank rows are skipped."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    while True:
        start = reader.line_num + 1
        cells = next(reader, None)
        if cells is None:
            return
        if any(cell.strip() for cell in cells):
            yield start, dict(zip(names, cells, strict=False))


def parse_csv(body: bytes, zone: ZoneInfo) -> list[Row]:
    """Every row of a CSV export, converted or with its errors."""
    rows = []
    for index, (line, record) in enumerate(csv_records(decode_csv(body))):
        if index >= MAX_ROWS:
            raise ValueError(f"a CSV export holds at most {MAX_ROWS} rows")
        rows.append(Row(index=index, line=line, result=to_submission(record, zone)))
    return rows


def parse_json(document: Any, zone: ZoneInfo) -> list[Row]:
    """One record or a list of records."""
    items = document if isinstance(document, list) else [document]
    if len(items) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} records per request")
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            result: Plain | Errors = [
                {"field": "(record)", "message": "a record must be a JSON object"}
            ]
        else:
            result = to_submission(item, zone)
        rows.append(Row(index=index, line=None, result=result))
    return rows
