"""Routing a table of events against a routing tree."""

from __future__ import annotations

import pytest

from cxloop_closed_loop.config import parse_config
from cxloop_closed_loop.matchers import parse_matcher
from cxloop_closed_loop.routing import route
from cxruntime.errors import ConfigurationError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

TREE = {
    "receivers": [
        {"name": "logistics-slack", "type": "slack", "url": "https://hooks.slack.test/a"},
        {"name": "crm", "type": "webhook", "url": "https://crm.test/h", "secret": SECRET},
        {"name": "vip-desk", "type": "email", "to": ["vip@example.com"]},
        {"name": "audit", "type": "webhook", "url": "https://audit.test/h", "secret": SECRET},
    ],
    "teams": [
        {"name": "triage"},
        {"name": "logistics", "receivers": ["logistics-slack"]},
        {"name": "logistics-de"},
        {"name": "vip"},
        {"name": "billing", "receivers": ["crm"]},
    ],
    "routes": [
        {
            "name": "vip",
            "matchers": ['segment="vip"'],
            "team": "vip",
            "receivers": ["vip-desk"],
            "continue": True,
        },
        {
            "name": "delivery",
            "matchers": ['touchpoint=~"delivery|returns"'],
            "team": "logistics",
            "routes": [
                {"name": "germany", "matchers": ['region=~"DE-.*"'], "team": "logistics-de"},
                {"name": "not-english", "matchers": ['language!="en"']},
            ],
        },
        {
            "name": "billing",
            "matchers": ['touchpoint="billing"', 'channel!~"email|contact_centre"'],
            "team": "billing",
        },
    ],
    "triage": {"team": "triage", "receivers": ["audit"]},
    "global_receivers": ["audit"],
}


def labels(**values: str) -> dict[str, str]:
    base = {
        "touchpoint": "other",
        "channel": "web",
        "region": "",
        "segment": "",
        "language": "de",
        "severity": "normal",
    }
    return base | values


CASES = [
    # (labels, expected owner path, team, every matched path, triaged)
    (
        labels(touchpoint="delivery", region="DE-BY"),
        "delivery/germany",
        "logistics-de",
        ["delivery/germany"],
        False,
    ),
    (
        labels(touchpoint="returns", region="AT-9", language="fr"),
        "delivery/not-english",
        "logistics",
        ["delivery/not-english"],
        False,
    ),
    (
        labels(touchpoint="delivery", region="US-CA", language="en"),
        "delivery",
        "logistics",
        ["delivery"],
        False,
    ),
    (labels(touchpoint="delivery-time", region="DE-BY"), "triage", "triage", ["triage"], True),
    (labels(touchpoint="billing", channel="web"), "billing", "billing", ["billing"], False),
    (labels(touchpoint="billing", channel="email"), "triage", "triage", ["triage"], True),
    (labels(touchpoint="billing", segment="vip"), "vip", "vip", ["vip", "billing"], False),
    (
        labels(touchpoint="delivery", segment="vip", region="DE-HH"),
        "vip",
        "vip",
        ["vip", "delivery/germany"],
        False,
    ),
    (labels(segment="vip"), "vip", "vip", ["vip"], False),
    (labels(), "triage", "triage", ["triage"], True),
]


@pytest.mark.parametrize(("event_labels", "path", "team", "paths", "triaged"), CASES)
def test_routing_table(
    event_labels: dict[str, str], path: str, team: str, paths: list[str], triaged: bool
) -> None:
    config = parse_config(TREE)
    decision = route(config, event_labels)
    assert decision.path == path
    assert decision.team == team
    assert ["/".join(m.path) for m in decision.matches] == paths
    assert decision.triaged is triaged


def test_receivers_gather_every_match_team_route_and_global() -> None:
    config = parse_config(TREE)
    decision = route(config, labels(touchpoint="delivery", segment="vip", region="DE-HH"))
    assert decision.receivers(config) == ["vip-desk", "audit"]
    decision = route(config, labels(touchpoint="returns", region="FR-1", language="en"))
    assert decision.receivers(config) == ["logistics-slack", "audit"]
    triaged = route(config, labels())
    assert triaged.receivers(config) == ["audit"]


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ('region="DE-BY"', "DE-BY", True),
        ('region!="DE-BY"', "DE-BY", False),
        ('region=~"DE-.*"', "DE-BY", True),
        ('region=~"DE"', "DE-BY", False),  # anchored, as in Alertmanager
        ('region!~"DE-.*"', "AT-1", True),
        ("region=DE-BY", "DE-BY", True),
        ('region=""', "", True),
    ],
)
def test_matchers(text: str, value: str, expected: bool) -> None:
    assert parse_matcher(text).matches({"region": value}) is expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"triage": {"team": "nobody"}}, "triage: unknown team 'nobody'"),
        ({"global_receivers": ["pager"]}, "global_receivers: unknown receiver 'pager'"),
        (
            {"routes": [{"matchers": ['touchpoint="x"'], "team": "ghosts"}]},
            "routes[0]: unknown team 'ghosts'",
        ),
        ({"routes": [{"matchers": ['colour="red"']}]}, "unknown label 'colour'"),
        ({"routes": [{"matchers": ['region=~"("']}]}, "bad regular expression"),
        ({"teams": [{"name": "triage", "timezone": "Mars/Olympus"}]}, "unknown time zone"),
        (
            {"receivers": [{"name": "x", "type": "webhook", "url": "http://x"}]},
            "a webhook needs a secret",
        ),
    ],
)
def test_invalid_trees_are_refused_with_a_clear_message(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_config(TREE | change)
