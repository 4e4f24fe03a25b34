"""routing.yaml loading: the packaged default, ${VAR} interpolation, the default webhook."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cxloop_closed_loop.business_time import add_business_time
from cxloop_closed_loop.config import (
    DEFAULT_WEBHOOK,
    SECRET_FILE,
    WEEKDAYS,
    Team,
    interpolate,
    load_config,
    new_webhook_secret,
)
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxruntime.errors import ConfigurationError
from tests.closed_loop.helpers import SECRET


def test_packaged_default_loads_without_receivers(tmp_path: Path) -> None:
    config = load_config(ClosedLoopSettings(data_dir=tmp_path), environ={})
    assert config.receivers == []
    assert config.triage.team == "cx-triage"
    assert "delivery_delay" in config.root_causes


def test_env_webhook_receives_everything_with_a_generated_secret(tmp_path: Path) -> None:
    settings = ClosedLoopSettings(
        data_dir=tmp_path, closed_loop_webhook_url="http://127.0.0.1:9/hooks"
    )
    config = load_config(settings, environ={})
    assert config.global_receivers == [DEFAULT_WEBHOOK]
    secret = config.receiver(DEFAULT_WEBHOOK).secret
    assert secret is not None
    assert secret.get_secret_value().startswith("whsec_")
    assert (tmp_path / SECRET_FILE).read_text().strip() == secret.get_secret_value()
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o077 == 0
    again = load_config(settings, environ={}).receiver(DEFAULT_WEBHOOK).secret
    assert again == secret


def test_env_webhook_secret_wins(tmp_path: Path) -> None:
    settings = ClosedLoopSettings(
        data_dir=tmp_path,
        closed_loop_webhook_url="http://127.0.0.1:9/hooks",
        closed_loop_webhook_secret=SECRET,  # type: ignore[arg-type]
    )
    secret = load_config(settings, environ={}).receiver(DEFAULT_WEBHOOK).secret
    assert secret is not None
    assert secret.get_secret_value() == SECRET
    assert not (tmp_path / SECRET_FILE).exists()


def test_env_webhook_previous_secrets_sign_too(tmp_path: Path) -> None:
    old = new_webhook_secret()
    settings = ClosedLoopSettings(
        data_dir=tmp_path,
        closed_loop_webhook_url="http://127.0.0.1:9/hooks",
        closed_loop_webhook_secret=SECRET,  # type: ignore[arg-type]
        closed_loop_webhook_previous_secrets=[old],  # type: ignore[list-item]
    )
    receiver = load_config(settings, environ={}).receiver(DEFAULT_WEBHOOK)
    assert receiver.signing_secrets == [SECRET, old]


def test_previous_secrets_are_checked(tmp_path: Path) -> None:
    old = new_webhook_secret()
    receivers = (
        "  - {name: hook, type: webhook, url: 'http://h.test/', secret: '%s',\n"
        "     previous_secrets: ['${OLD:-}', %s]}\n"
    )
    path = tmp_path / "routing.yaml"
    settings = ClosedLoopSettings(config_dir=tmp_path, data_dir=tmp_path)
    base = "teams: [{name: t}]\ntriage: {team: t}\nglobal_receivers: [hook]\nreceivers:\n"
    path.write_text(base + receivers % (SECRET, f"'{old}'"))
    # An unset ${OLD:-} is left out: a file can hold the slot for the next rotation.
    assert load_config(settings, environ={}).receiver("hook").signing_secrets == [SECRET, old]
    assert load_config(settings, environ={"OLD": SECRET}).receiver("hook").signing_secrets == [
        SECRET,
        SECRET,
        old,
    ]
    path.write_text(base + receivers % (SECRET, "'x'"))
    with pytest.raises(ConfigurationError, match=r"hook: previous_secrets\[0\] is not a secret"):
        load_config(settings, environ={})
    path.write_text(
        base.replace("[hook]", "[chat]")
        + f"  - {{name: chat, type: slack, url: 'http://s.test/', previous_secrets: ['{old}']}}\n"
    )
    with pytest.raises(ConfigurationError, match="chat: previous_secrets are for webhooks only"):
        load_config(settings, environ={})


def test_interpolation() -> None:
    tree = {"url": "https://${HOST}/x", "n": 3, "list": ["${A:-fallback}", "${B}"]}
    assert interpolate(tree, {"HOST": "crm.test", "B": "b"}) == {
        "url": "https://crm.test/x",
        "n": 3,
        "list": ["fallback", "b"],
    }
    with pytest.raises(ConfigurationError, match=r"\$\{MISSING\}"):
        interpolate("${MISSING}", {})


def test_config_dir_file_is_used_and_validated(tmp_path: Path) -> None:
    (tmp_path / "routing.yaml").write_text(
        "teams: [{name: t}]\n"
        "triage: {team: t}\n"
        "receivers:\n"
        "  - {name: hook, type: webhook, url: '${HOOK_URL}', secret: '${HOOK_SECRET}'}\n"
        "global_receivers: [hook]\n"
    )
    settings = ClosedLoopSettings(config_dir=tmp_path, data_dir=tmp_path)
    config = load_config(settings, environ={"HOOK_URL": "http://h.test/", "HOOK_SECRET": SECRET})
    assert config.receiver("hook").url == "http://h.test/"
    (tmp_path / "routing.yaml").write_text("teams: [{name: t}]\ntriage: {team: nobody}\n")
    with pytest.raises(ConfigurationError, match="unknown team 'nobody'"):
        load_config(settings, environ={})


def test_teams_without_business_hours_work_monday_to_friday_nine_to_five_in_their_zone(
    tmp_path: Path,
) -> None:
    # As docs/closed_loop.md and the comments of routing.yaml say.
    config = load_config(ClosedLoopSettings(data_dir=tmp_path), environ={})
    without = [team for team in config.teams if team.name in ("returns", "finance", "mobile")]
    assert len(without) == 3
    berlin = ZoneInfo("Europe/Berlin")
    for team in without:
        hours = team.business_hours
        assert (hours.days, hours.start, hours.end, hours.holidays) == (
            ["mon", "tue", "wed", "thu", "fri"],
            time(9),
            time(17),
            [],
        )
        assert team.zone == berlin
        friday = datetime(2026, 11, 27, 16, 30, tzinfo=berlin)
        due = add_business_time(friday, timedelta(hours=1), hours, team.zone)
        assert due == datetime(2026, 11, 30, 9, 30, tzinfo=berlin)
    # Without a time zone either: the same hours in UTC; given hours fill in the rest.
    nowhere = Team.model_validate({"name": "nowhere"})
    early = Team.model_validate({"name": "early", "business_hours": {"start": "07:00"}})
    assert nowhere.zone == ZoneInfo("UTC")
    assert (nowhere.business_hours.start, nowhere.business_hours.end) == (time(9), time(17))
    assert (early.business_hours.start, early.business_hours.end) == (time(7), time(17))
    assert early.business_hours.days == ["mon", "tue", "wed", "thu", "fri"]
    monday_night = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert add_business_time(
        monday_night, timedelta(minutes=30), nowhere.business_hours, nowhere.zone
    ) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_business_hours_may_end_at_midnight_or_run_overnight() -> None:
    team = {"name": "t", "timezone": "Europe/Berlin"}
    always = Team.model_validate(
        team | {"business_hours": {"start": "00:00", "end": "24:00", "days": list(WEEKDAYS)}}
    )
    assert (always.business_hours.start, always.business_hours.end) == (time(0), time(0))
    assert always.business_hours.overnight
    nights = Team.model_validate(team | {"business_hours": {"start": "22:00", "end": "06:00"}})
    assert nights.business_hours.overnight
    late = Team.model_validate(team | {"business_hours": {"start": "09:00", "end": "24:00"}})
    assert late.business_hours.end == time(0)
    assert not Team.model_validate(team).business_hours.overnight
    with pytest.raises(ValueError, match="end"):
        Team.model_validate(team | {"business_hours": {"end": "24:30"}})
