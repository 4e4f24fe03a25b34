"""Label matchers as Alertmanager writes them: `label="v"`, `!=`, `=~` and `!~` (anchored)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

LABELS: Final = frozenset(
    {
        "touchpoint",
        "journey_stage",
        "channel",
        "region",
        "segment",
        "language",
        "severity",
        "owner_team",
        "sentiment",
    }
)
Operator = Literal["=", "!=", "=~", "!~"]
_OPERATORS: Final[dict[str, Operator]] = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}
_SYNTAX = re.compile(r'^\s*([a-z_][a-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')


@dataclass(frozen=True)
class Matcher:
    """One condition on one label; a missing label reads as the empty string."""

    label: str
    op: Operator
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the label satisfies the condition."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@functools.lru_cache(maxsize=4096)
def parse_matcher(text: str) -> Matcher:
    """Parse `label<op>"value"`; raises `ValueError` saying what is wrong."""
    match = _SYNTAX.match(text)
    if match is None:
        raise ValueError(f'matcher {text!r} must look like label="value" (= != =~ !~)')
    label, op = match.group(1), match.group(2)
    if label not in LABELS:
        raise ValueError(f"matcher {text!r}: unknown label {label!r}; known: {sorted(LABELS)}")
    raw = match.group(3) if match.group(3) is not None else match.group(4) or ""
    value = raw.replace('\\"', '"').replace("\\\\", "\\")
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"matcher {text!r}: bad regular expression: {exc}") from exc
    return Matcher(label, _OPERATORS[op], value, regex)
