"""Post-call survey records from a contact centre, as JSON or as a spreadsheet CSV export.

CSV exports come comma-, semicolon- or tab-separated, UTF-8 with or without BOM, UTF-16 with
BOM (Excel's "Unicode text") or Windows-1252 from older spreadsheet software, with German
decimal commas ("4,0") and German dates ("23.11.2026 14:05"). Column names are matched
case-insensitively against English and German aliases. Every row is answered on its own; what
concerns the whole upload (no known column, too many rows) refuses it as a whole.

A JSON record is strict, as the native event is: a field it does not know is an error (a typo
such as `transcrpt` would otherwise lose the comment), and so is a field given twice with
different values (`nps` and `scores.nps`). A CSV export is not: spreadsheets carry columns of
their own, so unknown columns are left out and listed in the answer.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from cxloop_collector.intake import (
    BodyError,
    Errors,
    field_error,
    field_errors,
    moment_error,
    too_many,
)
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
_DATE_SHAPES: Final = re.compile(r"^\s*(\d{1,2}\.\d{1,2}\.\d{2,4}|\d{4}-\d{1,2}-\d{1,2})")
"""What a date looks like, so that 31.02.2026 is called an invalid date, not gibberish."""
_TIME_EXAMPLES: Final = "such as 23.11.2026 14:05 or 2026-11-23T14:05:00+01:00"
MAX_ROWS: Final = 2000
KNOWN_FIELDS: Final = (*ALIASES, "scores")
"""The field names a JSON record may use (each also under its aliases)."""


@dataclass(frozen=True)
class Row:
    """One survey record: its position and either a submission or the reasons it failed."""

    index: int
    line: int | None
    result: Plain | Errors


@dataclass(frozen=True)
class Upload:
    """The records of one request, and the CSV columns that were left out."""

    rows: list[Row]
    ignored_columns: list[str] = field(default_factory=list)


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


def parse_time(value: Any, zone: ZoneInfo) -> datetime | None:
    """A time cell: blank is None; ISO 8601, and German or ISO-like local times without an
    offset, read in `zone`; anything else raises `ValueError` saying why."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a date and time written as text, {_TIME_EXAMPLES}")
    text = value.strip()
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
        if _DATE_SHAPES.match(text):
            raise ValueError(f"{text!r} is not a valid date and time") from None
        raise ValueError(f"{text!r} is not a date and time; write one {_TIME_EXAMPLES}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def to_submission(
    record: Mapping[str, Any], zone: ZoneInfo, *, received_at: datetime
) -> Plain | Errors:
    """A JSON survey record (known field names or their aliases, scores flat or in `scores`)
    as a native contact-centre event, or its errors."""
    values: dict[str, Any] = {}
    column: dict[str, str] = {}
    errors: Errors = []
    given: dict[str, list[tuple[str, Any]]] = {}
    for raw_name, value in record.items():
        name = str(raw_name)
        if normalise(name) == "scores":
            errors += _nested_scores(value, given)
            continue
        known = _LOOKUP.get(normalise(name))
        if known is None:
            errors.append(
                field_error(
                    name,
                    f"unknown field; known are {', '.join(KNOWN_FIELDS)} (or their aliases)",
                    "extra_forbidden",
                )
            )
        elif isinstance(value, (dict, list, bool)):
            errors.append(field_error(name, "must be a string or a number", "string_type"))
        else:
            given.setdefault(known, []).append((name, value))
    for known, occurrences in given.items():
        (first, value), *others = occurrences
        conflicts = [(name, other) for name, other in others if not _same(other, value)]
        if conflicts:
            written = ", ".join(f"{name} is {other!r}" for name, other in conflicts)
            errors.append(
                field_error(
                    first,
                    f"given twice with different values: {first} is {value!r}, {written}",
                    "conflict",
                )
            )
        values[known] = value
        column[known] = first
    return _convert(values, column, zone, received_at, errors)


def _nested_scores(value: Any, given: dict[str, list[tuple[str, Any]]]) -> Errors:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [field_error("scores", "must be an object of nps, csat and ces", "dict_type")]
    errors: Errors = []
    for score, score_value in value.items():
        if score in _SCORES:
            given.setdefault(score, []).append((f"scores.{score}", score_value))
        else:
            errors.append(
                field_error(f"scores.{score}", "unknown score; nps, csat or ces", "extra_forbidden")
            )
    return errors


def _same(one: Any, other: Any) -> bool:
    return bool(one == other) or str(one).strip() == str(other).strip()


def _convert(
    values: Mapping[str, Any],
    column: Mapping[str, str],
    zone: ZoneInfo,
    received_at: datetime,
    errors: Errors,
) -> Plain | Errors:
    """The submission of a record's values by field (`column` names the field's column), or
    `errors` with every failing field added."""
    call_id = str(values.get("call_id") or "").strip()
    if not call_id:
        errors.append(
            field_error(column.get("call_id", "call_id"), "a call id is required", "missing")
        )
    scores: dict[str, int] = {}
    for score in _SCORES:
        try:
            parsed = parse_score(values.get(score))
        except ValueError as exc:
            errors.append(field_error(column[score], str(exc), "int_parsing"))
            continue
        if parsed is not None:
            scores[score] = parsed

    def text(field: str) -> str | None:
        value = values.get(field)
        return None if value is None or str(value).strip() == "" else str(value).strip()

    customer = text("customer_id")
    fields: dict[str, Any] = {
        "id": call_id or "-",
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
    try:
        occurred_at = parse_time(values.get("occurred_at"), zone)
    except ValueError as exc:
        errors.append(field_error(column["occurred_at"], str(exc), "datetime_parsing"))
    else:
        problem = None if occurred_at is None else moment_error(occurred_at, received_at)
        if problem:
            errors.append(field_error(column["occurred_at"], problem, "out_of_range"))
        elif occurred_at is not None:
            fields["occurred_at"] = occurred_at
    try:
        submission = PLAIN_SUBMISSION.validate_python(fields)
    except ValidationError as exc:
        # The score-or-comment rule is moot when a score could not be read.
        moot = bool(errors)
        errors += [
            named
            for named in (_named(error, column) for error in field_errors(exc))
            if not (moot and named["field"] == "(record)")
        ]
    if errors:
        # One error per field: the first says it (`call_id` is both `id` and `context.call_id`).
        first: dict[str, dict[str, str]] = {}
        for error in errors:
            first.setdefault(error["field"], error)
        return list(first.values())
    return submission


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


def _named(error: dict[str, str], column: Mapping[str, str]) -> dict[str, str]:
    """A submission's error named by the record's own column."""
    loc = error["field"]
    known = _NATIVE_TO_FIELD.get(loc)
    name = column.get(known, known) if known else None
    return {**error, "field": name or ("(record)" if loc == "(body)" else loc)}


def decode_csv(body: bytes) -> str:
    """CSV bytes as text: UTF-16 with a BOM, UTF-8 (BOM dropped), else Windows-1252."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _header_error(names: Sequence[str], message: str) -> BodyError:
    hint = (
        " The header holds NUL characters: is the file UTF-16 without a byte-order mark? "
        "Export it as CSV (UTF-8)."
        if any("\x00" in name for name in names)
        else ""
    )
    return BodyError(
        422,
        f"The CSV header cannot be used.{hint}",
        [field_error("(header)", message, "csv_header")],
    )


def csv_records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header of a CSV export and its non-blank rows, each with the line it starts on;
    `BodyError` when there is no header or the text is not CSV the reader can take."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    records: list[tuple[int, list[str]]] = []
    try:
        header = next(reader, None)
        while header is not None:
            start = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                break
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
    except csv.Error as exc:  # a cell over the csv module's 128 KiB, for one
        raise BodyError(
            422,
            "The CSV cannot be read.",
            [field_error("(body)", f"line {reader.line_num}: {exc}", "csv_invalid")],
        ) from None
    if header is None:
        raise BodyError(
            422,
            "The CSV is empty.",
            [field_error("(header)", "a header line is required", "missing")],
        )
    return [name.strip().lstrip("\ufeff").strip() for name in header], records


def parse_csv(body: bytes, zone: ZoneInfo, *, received_at: datetime) -> Upload:
    """Every row of a CSV export, converted or with its errors; `BodyError` when the export as
    a whole cannot be read (no header, no known column, no call id column, too many rows)."""
    names, records = csv_records(decode_csv(body))
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for position, name in enumerate(names):
        known = _LOOKUP.get(normalise(name))
        if known is None or known in positions:
            if name:
                ignored.append(name)
            continue
        positions[known] = position
    if not positions:
        raise _header_error(
            names,
            f"no known column among {names[:20]}; known are {', '.join(ALIASES)} "
            "(or their aliases), and a call id column is required",
        )
    if "call_id" not in positions:
        raise _header_error(
            names, f"no call id column; name it one of {', '.join(ALIASES['call_id'])}"
        )
    column = {known: names[position] for known, position in positions.items()}
    if len(records) > MAX_ROWS:
        raise too_many(len(records), MAX_ROWS, field="(body)", what="rows")
    rows = []
    for index, (line, cells) in enumerate(records):
        result: Plain | Errors
        if any(cell.strip() for cell in cells[len(names) :]):
            result = [
                field_error(
                    "(row)",
                    f"{len(cells)} cells but {len(names)} columns in the header: is a "
                    "delimiter inside a cell not quoted?",
                    "csv_row",
                )
            ]
        else:
            values = {known: cells[at] for known, at in positions.items() if at < len(cells)}
            result = _convert(values, column, zone, received_at, [])
        rows.append(Row(index=index, line=line, result=result))
    return Upload(rows=rows, ignored_columns=ignored)


def parse_json(document: Any, zone: ZoneInfo, *, received_at: datetime) -> Upload:
    """One record or a list of records; `BodyError` (413) beyond `MAX_ROWS`."""
    items = document if isinstance(document, list) else [document]
    if len(items) > MAX_ROWS:
        raise too_many(len(items), MAX_ROWS, field="(body)", what="records")
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            result: Plain | Errors = [
                field_error("(record)", "a record must be a JSON object", "model_type")
            ]
        else:
            result = to_submission(item, zone, received_at=received_at)
        rows.append(Row(index=index, line=None, result=result))
    return Upload(rows=rows)
