"""`routing.yaml`: receivers, teams, the routing tree, detection, severity, SLAs and codes.

Loaded and validated as a whole: every team and receiver a route names must exist, every
matcher must parse, every time zone must be known. `${VAR}` (or `${VAR:-default}`) in any string
is replaced from the environment, so URLs and secrets stay out of the file. A broken file is a
`ConfigurationError` naming what is wrong; on SIGHUP the service keeps the old configuration.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from base64 import b64encode
from collections.abc import Sequence
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from cxloop_closed_loop.matchers import Matcher, parse_matcher
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxruntime.config import config_path, load_yaml
from cxruntime.errors import ConfigurationError

log = logging.getLogger(__name__)

ROUTING_FILE: Final = "routing.yaml"
DEFAULT_WEBHOOK: Final = "default-webhook"
SECRET_FILE: Final = "closed-loop-webhook-secret"  # noqa: S105 (a file name)

Severity = Literal["high", "normal", "low"]
SEVERITIES: Final[tuple[Severity, ...]] = ("low", "normal", "high")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def parse_duration(value: str | int | float) -> timedelta:
    """`"90m"`, `"4h"` (business time) or a number of minutes."""
    if isinstance(value, int | float):
        return timedelta(minutes=float(value))
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"duration {value!r} must look like 30m or 4h")
    amount = float(match.group(1))
    return timedelta(hours=amount) if match.group(2) == "h" else timedelta(minutes=amount)


def _workweek() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class BusinessHours(_Model):
    """When a team works, in its own time zone; SLA clocks run only then.

    One window a day on each of `days` that is not a holiday. `end` `24:00` is the end of the
    day (`00:00`-`24:00`: around the clock); an `end` at or before `start` makes an overnight
    window, running into the next day. A window belongs to the day it starts on: `days` and
    `holidays` name that day (`22:00`-`06:00` on `fri` runs from Friday 22:00 to Saturday
    06:00, and a holiday on Friday cancels it).
    """

    days: list[Weekday] = Field(default_factory=_workweek)
    start: time = time(9, 0)
    end: time = time(17, 0)
    """Stored as `00:00` for `24:00`: both end the window at the next midnight."""
    holidays: list[date] = Field(default_factory=list)

    @field_validator("end", mode="before")
    @classmethod
    def _end_of_day(cls, end: Any) -> Any:
        if isinstance(end, str) and end.strip() in ("24:00", "24:00:00"):
            return time(0, 0)
        return end

    @property
    def overnight(self) -> bool:
        """Whether each window ends on the day after it starts (`24:00` included)."""
        return self.end <= self.start


class QuietHours(_Model):
    """A daily window in which a receiver's notifications wait (they are delayed, not dropped)."""

    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)


class Receiver(_Model):
    """Where notifications go: a Standard Webhook, a Slack incoming webhook, or e-mail."""

    name: str = Field(min_length=1, max_length=100)
    type: Literal["webhook", "slack", "email"]
    url: str | None = None
    secret: SecretStr | None = None
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    """Secrets a webhook is still signed with next to `secret` while its receiver moves to the
    new one (rotation: one signature per secret in `webhook-signature`). Empty entries, such as
    an unset `${VAR:-}`, are left out."""
    to: list[str] = Field(default_factory=list)
    sender: str = Field("cxloop@localhost", alias="from")
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    quiet_hours: QuietHours | None = None

    @field_validator("previous_secrets", mode="before")
    @classmethod
    def _drop_empty(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in value if item not in ("", None)]
        return value

    @property
    def signing_secrets(self) -> list[str]:
        """The secrets a webhook is signed with: `secret` first, then `previous_secrets`."""
        current = [] if self.secret is None else [self.secret.get_secret_value()]
        return current + [secret.get_secret_value() for secret in self.previous_secrets]


class Team(_Model):
    """A team that owns cases: its time zone, business hours and escalation ladder."""

    name: str = Field(min_length=1, max_length=100)
    timezone: str = "UTC"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    receivers: list[str] = Field(default_factory=list)
    lead: list[str] = Field(default_factory=list)
    owner: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @property
    def zone(self) -> ZoneInfo:
        """The team's time zone."""
        return ZoneInfo(self.timezone)

    def ladder(self, level: int) -> list[str]:
        """Receivers at escalation `level`: 0 the team, 1 its lead, 2 and above its owner."""
        if level <= 0:
            return list(self.receivers)
        if level == 1:
            return list(self.lead or self.owner or self.receivers)
        return list(self.owner or self.lead or self.receivers)


class Route(_Model):
    """A node of the routing tree; a child inherits its parent's team unless it names one."""

    name: str | None = None
    matchers: list[str] = Field(default_factory=list)
    team: str | None = None
    receivers: list[str] = Field(default_factory=list)
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = Field(default_factory=list)

    @field_validator("matchers")
    @classmethod
    def _parse_matchers(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_matcher(value)
        return values

    def parsed_matchers(self) -> list[Matcher]:
        """The matchers, parsed."""
        return [parse_matcher(m) for m in self.matchers]


class Triage(_Model):
    """Where feedback that no route matches goes: it is never dropped."""

    team: str
    receivers: list[str] = Field(default_factory=list)


class Detection(_Model):
    """What makes feedback a case."""

    nps_max: int = Field(6, ge=0, le=10)
    csat_max: int = Field(2, ge=1, le=5)
    ces_max: int = Field(3, ge=1, le=7)
    sentiment_max: float = Field(-0.5, ge=-1.0, le=1.0)
    """Comment-only feedback at or below this sentiment score opens a case."""
    keywords: list[str] = Field(default_factory=list)


class SeverityRule(_Model):
    """A severity and its conditions (all must hold); the first rule that holds wins."""

    severity: Severity
    nps_min: int | None = None
    nps_max: int | None = None
    csat_max: int | None = None
    ces_max: int | None = None
    sentiment_max: float | None = None
    segments: list[str] | None = None
    keyword: bool | None = None


class SeverityPolicy(_Model):
    """Rules deriving a case's severity, and the default."""

    rules: list[SeverityRule] = Field(default_factory=list)
    default: Severity = "normal"


class SlaTargets(_Model):
    """Business time allowed to acknowledge and to resolve a case."""

    acknowledge: timedelta
    resolve: timedelta

    @field_validator("acknowledge", "resolve", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        return parse_duration(value)


def _default_sla() -> dict[Severity, SlaTargets]:
    return {
        "high": SlaTargets(acknowledge=timedelta(hours=1), resolve=timedelta(hours=8)),
        "normal": SlaTargets(acknowledge=timedelta(hours=4), resolve=timedelta(hours=24)),
        "low": SlaTargets(acknowledge=timedelta(hours=8), resolve=timedelta(hours=40)),
    }


class RoutingConfig(_Model):
    """The whole of `routing.yaml`, validated."""

    receivers: list[Receiver] = Field(default_factory=list)
    teams: list[Team]
    routes: list[Route] = Field(default_factory=list)
    triage: Triage
    global_receivers: list[str] = Field(default_factory=list)
    """Receivers that get every case event of every route."""
    detection: Detection = Field(default_factory=Detection)
    severity: SeverityPolicy = Field(default_factory=SeverityPolicy)
    sla: dict[Severity, SlaTargets] = Field(default_factory=_default_sla)
    root_causes: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["other"]
    )
    contact_outcomes: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["reached"]
    )
    reopen_within_days: int = Field(14, ge=0)
    """Feedback that occurred within this many days of a case's resolution reopens it."""
    max_feedback_age_days: int | None = Field(14, ge=1)
    """Feedback that occurred longer ago than this opens, reopens or updates no case (an
    imported history must not page anyone today); null: no limit."""

    def team(self, name: str) -> Team:
        """The team called `name` (validated to exist)."""
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(name)

    def receiver(self, name: str) -> Receiver:
        """The receiver called `name` (validated to exist)."""
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        raise KeyError(name)

    def check_references(self) -> None:
        """Raise `ConfigurationError` unless every named team and receiver exists."""
        problems: list[str] = []
        receiver_names = [r.name for r in self.receivers]
        team_names = [t.name for t in self.teams]
        for kind, names in (("receiver", receiver_names), ("team", team_names)):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                problems.append(f"duplicate {kind} names: {', '.join(duplicates)}")
        known_receivers = set(receiver_names)
        known_teams = set(team_names)

        def need_receivers(where: str, names: list[str]) -> None:
            for name in names:
                if name not in known_receivers:
                    problems.append(f"{where}: unknown receiver {name!r}")

        def need_team(where: str, name: str | None) -> None:
            if name is not None and name not in known_teams:
                problems.append(f"{where}: unknown team {name!r}")

        for team in self.teams:
            for ladder in ("receivers", "lead", "owner"):
                need_receivers(f"team {team.name}.{ladder}", getattr(team, ladder))
        need_team("triage", self.triage.team)
        need_receivers("triage", self.triage.receivers)
        need_receivers("global_receivers", self.global_receivers)

        def walk(routes: list[Route], path: str) -> None:
            for index, route in enumerate(routes):
                where = f"{path}[{index}]" + (f" ({route.name})" if route.name else "")
                need_team(where, route.team)
                need_receivers(where, route.receivers)
                walk(route.routes, f"{where}.routes")

        walk(self.routes, "routes")
        for receiver in self.receivers:
            if receiver.type in ("webhook", "slack") and not receiver.url:
                problems.append(f"receiver {receiver.name}: a {receiver.type} needs a url")
            if receiver.type == "webhook" and not _valid_secret(receiver.secret):
                problems.append(
                    f"receiver {receiver.name}: a webhook needs a secret like whsec_<base64>"
                )
            if receiver.previous_secrets and receiver.type != "webhook":
                problems.append(
                    f"receiver {receiver.name}: previous_secrets are for webhooks only "
                    f"(a {receiver.type} receiver signs nothing)"
                )
            for index, previous in enumerate(receiver.previous_secrets):
                if receiver.type == "webhook" and not _valid_secret(previous):
                    problems.append(
                        f"receiver {receiver.name}: previous_secrets[{index}] is not a secret "
                        "like whsec_<base64>"
                    )
            if receiver.type == "email" and not receiver.to:
                problems.append(f"receiver {receiver.name}: an email receiver needs `to`")
        for severity in SEVERITIES:
            if severity not in self.sla:
                problems.append(f"sla: no targets for severity {severity!r}")
        if problems:
            raise ConfigurationError("routing.yaml: " + "; ".join(problems))


def _valid_secret(secret: SecretStr | None) -> bool:
    if secret is None or not secret.get_secret_value():
        return False
    try:
        Webhook(secret.get_secret_value())
    except (ValueError, EmptyWebhookSecretError):
        return False
    return True


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def interpolate(value: Any, environ: dict[str, str] | os._Environ[str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ and environ[name] != "":
                return environ[name]
            if default is not None:
                return default
            raise ConfigurationError(f"routing.yaml uses ${{{name}}}, which is not set")

        return _VAR.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    return value


def parse_config(raw: Any, *, source: str = ROUTING_FILE) -> RoutingConfig:
    """Validate a parsed (and interpolated) routing tree."""
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{source}: expected a mapping at the top level")
    try:
        config = RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"{source}: {details}") from exc
    config.check_references()
    return config


def with_default_webhook(
    config: RoutingConfig, *, url: str, secret: str, previous: Sequence[SecretStr] = ()
) -> RoutingConfig:
    """Add the environment's default webhook as a receiver of every case event."""
    receiver = Receiver(
        name=DEFAULT_WEBHOOK,
        type="webhook",
        url=url,
        secret=SecretStr(secret),
        previous_secrets=list(previous),
    )
    receivers = [r for r in config.receivers if r.name != DEFAULT_WEBHOOK] + [receiver]
    global_receivers = [*dict.fromkeys([*config.global_receivers, DEFAULT_WEBHOOK])]
    return config.model_copy(update={"receivers": receivers, "global_receivers": global_receivers})


def new_webhook_secret() -> str:
    """A fresh `whsec_` secret: 24 random bytes, base64."""
    return "whsec_" + b64encode(secrets.token_bytes(24)).decode()


def default_webhook_secret(settings: ClosedLoopSettings) -> str:
    """CX_CLOSED_LOOP_WEBHOOK_SECRET, else the one kept under CX_DATA_DIR (made once)."""
    if settings.closed_loop_webhook_secret is not None:
        value = settings.closed_loop_webhook_secret.get_secret_value()
        if value:
            return value
    path = settings.data_dir / SECRET_FILE
    if not path.is_file():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: a concurrent `cxloop webhooks listen` either
        # wins the link or reads the complete file, never a half-written one.
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_webhook_secret() + "\n")
        try:
            os.link(tmp, path)
            log.info("generated the default webhook secret in %s", path.resolve())
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text().strip()
    log.info("default webhook secret: %s (CX_CLOSED_LOOP_WEBHOOK_SECRET unset)", path.resolve())
    return secret


def routing_file(settings: ClosedLoopSettings) -> Path:
    """Where routing.yaml is read from."""
    return config_path(
        ROUTING_FILE, config_dir=settings.config_dir, default_package="cxloop_closed_loop"
    )


def load_config(
    settings: ClosedLoopSettings, *, environ: dict[str, str] | None = None
) -> RoutingConfig:
    """Read, interpolate and validate routing.yaml, plus the default webhook when configured."""
    path = routing_file(settings)
    raw = interpolate(load_yaml(path), environ if environ is not None else os.environ)
    config = parse_config(raw, source=str(path))
    if settings.closed_loop_webhook_url:
        secret = default_webhook_secret(settings)
        config = with_default_webhook(
            config,
            url=settings.closed_loop_webhook_url,
            secret=secret,
            previous=settings.closed_loop_webhook_previous_secrets,
        )
    return config
