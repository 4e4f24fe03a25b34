"""The touchpoint taxonomy file (`touchpoints.yaml`): its schema, loading and validation.

The file has three sections:

- `touchpoints`: hierarchical ids (`online.checkout`, `service.contact_centre.billing`), each
  with a journey stage and an owning team; a child without `stage` or `team` inherits its
  parent's. `unclassified` must be defined: it is what an event no rule matches gets.
- `rules`: ordered; the first rule whose conditions all hold decides the touchpoint.
- `pii`: extra personal-data patterns the redactor replaces, and which of the kinds found by
  their form alone (`name`, `address`) to keep (see `pii.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cxloop_enricher.settings import KeptKind, PiiPatternSetting
from cxruntime.config import config_path, load_yaml
from cxruntime.errors import ConfigurationError
from cxschema import CHANNELS, JOURNEY_STAGES

FILE_NAME: Final = "touchpoints.yaml"
UNCLASSIFIED: Final = "unclassified"
_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_Strings = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TouchpointSpec(_Strict):
    """One node of the taxonomy as written in the file."""

    id: str = Field(max_length=200)
    name: str = Field(min_length=1)
    stage: str | None = None
    team: str | None = Field(default=None, min_length=1, max_length=100)
    aliases: list[str] = Field(default_factory=list)
    description: str = ""

    @field_validator("id")
    @classmethod
    def _dotted_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                f"{value!r} is not a touchpoint id: lower-case words of [a-z0-9_] joined by dots"
            )
        return value

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str | None) -> str | None:
        if value is not None and value not in JOURNEY_STAGES:
            raise ValueError(f"unknown journey stage {value!r}; one of {', '.join(JOURNEY_STAGES)}")
        return value


class RuleSpec(_Strict):
    """One rule as written in the file: every condition given must hold.

    `url`, `app_screen` and `ivr_queue` are regular expressions searched case-insensitively;
    `subject`, `comment` and `text` (subject or comment) are keywords matched as whole words,
    case- and umlaut-insensitively, where `*` stands for any letters (`liefer*`, `*lieferung`).
    """

    name: str = Field(min_length=1)
    touchpoint: str
    channel: list[str] | None = None
    url: _Strings | None = None
    app_screen: _Strings | None = None
    ivr_queue: _Strings | None = None
    subject: _Strings | None = None
    comment: _Strings | None = None
    text: _Strings | None = None

    @field_validator("channel")
    @classmethod
    def _known_channels(cls, value: list[str] | None) -> list[str] | None:
        for channel in value or ():
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
        return value

    @field_validator("url", "app_screen", "ivr_queue")
    @classmethod
    def _regexes(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or ():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return value

    def conditions(self) -> dict[str, list[str]]:
        """The conditions this rule sets, by field."""
        fields = ("channel", "url", "app_screen", "ivr_queue", "subject", "comment", "text")
        return {f: list(getattr(self, f)) for f in fields if getattr(self, f) is not None}


class PiiSpec(_Strict):
    """The `pii` section: extra patterns, and the kinds found by form alone to keep."""

    patterns: list[PiiPatternSetting] = Field(default_factory=list)
    keep: list[KeptKind] = Field(default_factory=list)


class TaxonomySpec(_Strict):
    """The whole file."""

    version: int = 1
    touchpoints: list[TouchpointSpec] = Field(min_length=1)
    rules: list[RuleSpec] = Field(default_factory=list)
    pii: PiiSpec = Field(default_factory=PiiSpec)


@dataclass(frozen=True, slots=True)
class Touchpoint:
    """A taxonomy node with its inherited stage and team resolved."""

    id: str
    name: str
    stage: str
    team: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """A validated taxonomy: touchpoints by id, the ordered rules and extra PII patterns."""

    touchpoints: Mapping[str, Touchpoint]
    rules: tuple[RuleSpec, ...]
    pii_patterns: tuple[PiiPatternSetting, ...]
    pii_keep: tuple[str, ...]
    source: str
    aliases: Mapping[str, Touchpoint]

    def resolve_hint(self, hint: str | None) -> Touchpoint | None:
        """The touchpoint a hint names (its id or an alias, case-insensitive), or None."""
        if not hint:
            return None
        key = _alias_key(hint)
        found = self.touchpoints.get(key)
        if found is not None:
            return found
        return self.aliases.get(key)


def build_taxonomy(data: Any, *, source: str) -> Taxonomy:
    """Validate a parsed taxonomy document; every problem raises `ConfigurationError`."""
    try:
        spec = TaxonomySpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(
            f"{source}: invalid touchpoint taxonomy:\n{_explain(exc, data)}"
        ) from None
    problems: list[str] = []
    specs: dict[str, TouchpointSpec] = {}
    for tp in spec.touchpoints:
        if tp.id in specs:
            problems.append(f"touchpoint {tp.id!r} is defined twice")
        specs[tp.id] = tp
    resolved: dict[str, Touchpoint] = {}
    for tp in spec.touchpoints:
        parent_id = tp.id.rpartition(".")[0]
        if parent_id and parent_id not in specs:
            problems.append(f"touchpoint {tp.id!r}: its parent {parent_id!r} is not defined")
        stage, team = _inherit(tp, specs)
        if stage is None:
            problems.append(f"touchpoint {tp.id!r} has no stage and no parent with one")
            continue
        resolved[tp.id] = Touchpoint(tp.id, tp.name, stage, team, tuple(tp.aliases))
    if UNCLASSIFIED not in specs:
        problems.append(f"the taxonomy must define {UNCLASSIFIED!r} (for events no rule matches)")
    seen_alias: dict[str, str] = {}
    for tp in spec.touchpoints:
        for alias in tp.aliases:
            key = _alias_key(alias)
            owner = seen_alias.setdefault(key, tp.id)
            if owner != tp.id:
                problems.append(f"alias {alias!r} names both {owner!r} and {tp.id!r}")
            if key in specs and key != tp.id:
                problems.append(f"alias {alias!r} of {tp.id!r} is another touchpoint's id")
    names: set[str] = set()
    for index, rule in enumerate(spec.rules):
        where = f"rule {index + 1} ({rule.name!r})"
        if rule.name in names:
            problems.append(f"{where}: the name is used twice")
        names.add(rule.name)
        if rule.touchpoint not in specs:
            problems.append(f"{where}: unknown touchpoint {rule.touchpoint!r}")
        if not rule.conditions():
            problems.append(f"{where}: has no condition (it would match everything)")
    if problems:
        raise ConfigurationError(
            f"{source}: invalid touchpoint taxonomy:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return Taxonomy(
        touchpoints=resolved,
        rules=tuple(spec.rules),
        pii_patterns=tuple(spec.pii.patterns),
        pii_keep=tuple(spec.pii.keep),
        source=source,
        aliases={_alias_key(alias): tp for tp in resolved.values() for alias in tp.aliases},
    )


def load_taxonomy(config_dir: Path | None) -> Taxonomy:
    """Read `touchpoints.yaml` from `CX_CONFIG_DIR`, else the packaged default, and validate it."""
    path = config_path(FILE_NAME, config_dir=config_dir, default_package="cxloop_enricher")
    return build_taxonomy(load_yaml(path), source=str(path))


def _inherit(
    tp: TouchpointSpec, specs: Mapping[str, TouchpointSpec]
) -> tuple[str | None, str | None]:
    stage, team = tp.stage, tp.team
    parent_id = tp.id.rpartition(".")[0]
    while parent_id and (stage is None or team is None):
        parent = specs.get(parent_id)
        if parent is None:
            break
        stage = stage or parent.stage
        team = team or parent.team
        parent_id = parent_id.rpartition(".")[0]
    return stage, team


def _explain(exc: ValidationError, data: Any) -> str:
    lines = []
    for error in exc.errors():
        location = _location(error["loc"], data)
        lines.append(f"  - {location}: {error['msg']}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """`rules[3] ('late-delivery').url` rather than pydantic's bare tuple."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int):
            label = f"[{step}]"
            if isinstance(node, list) and step < len(node):
                node = node[step]
                if isinstance(node, dict):
                    name = node.get("id") or node.get("name")
                    if name:
                        label += f" ({name!r})"
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + step)
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


_FOLD: Final = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"))


def fold(text: str) -> str:
    """Lower-case with German umlauts spelled out, so `Rückgabe` and `Rueckgabe` match alike."""
    text = text.lower()
    # Four `replace` calls in C cost less than one `translate` with a mapping, which looks up
    # every character in a Python dict.
    for letter, spelled in _FOLD:
        if letter in text:
            text = text.replace(letter, spelled)
    return text


def _alias_key(name: str) -> str:
    # Folded like keywords: a hint "Kündigung" names the alias "kuendigung".
    return fold(name.strip()).replace("-", "_").replace(" ", "_")
