"""Detection and severity rules."""

from __future__ import annotations

import pytest

from cxloop_closed_loop.config import Detection, SeverityPolicy, SeverityRule
from cxloop_closed_loop.detection import detect, find_keywords, higher
from tests.closed_loop.helpers import enriched

RULES = Detection(keywords=["kündigen", "cancel", "Anwalt", "lawyer"])
POLICY = SeverityPolicy(
    rules=[
        SeverityRule(severity="high", keyword=True),
        SeverityRule(severity="high", nps_max=2, segments=["premium"]),
        SeverityRule(severity="low", nps_min=6, nps_max=6),
    ],
    default="normal",
)


@pytest.mark.parametrize(
    ("kwargs", "reasons"),
    [
        ({"nps": 6}, ["nps=6"]),
        ({"nps": 7}, []),
        ({"nps": None, "csat": 2}, ["csat=2"]),
        ({"nps": None, "csat": 3}, []),
        ({"nps": None, "ces": 3}, ["ces=3"]),
        ({"nps": None, "ces": 4}, []),
        ({"nps": None, "comment": "Furchtbar.", "sentiment": -0.8}, ["sentiment=-0.80"]),
        ({"nps": None, "comment": "Geht so.", "sentiment": -0.2}, []),
        # negative sentiment with a good score is not "comment-only"
        ({"nps": 9, "comment": "Schlecht verpackt.", "sentiment": -0.9}, []),
        ({"nps": 9, "comment": "Ich werde kündigen!"}, ["keyword=kündigen"]),
        ({"nps": 10, "comment": "My LAWYER will call."}, ["keyword=lawyer"]),
    ],
)
def test_detection(kwargs: dict[str, object], reasons: list[str]) -> None:
    finding = detect(enriched(**kwargs), RULES, POLICY)  # type: ignore[arg-type]
    assert (list(finding.reasons) if finding else []) == reasons


def test_keywords_match_word_starts_case_insensitively() -> None:
    assert find_keywords("Ich KÜNDIGEN sofort", ["kündigen"]) == ("kündigen",)
    assert find_keywords("Der Anwaltsbrief kam", ["Anwalt"]) == ("Anwalt",)
    assert find_keywords("uncancelled order", ["cancel"]) == ()


@pytest.mark.parametrize(
    ("kwargs", "severity"),
    [
        ({"nps": 3}, "normal"),
        ({"nps": 6}, "low"),
        ({"nps": 2, "segment": "premium"}, "high"),
        ({"nps": 2, "segment": "basic"}, "normal"),
        ({"nps": 6, "comment": "Ich will kündigen"}, "high"),
    ],
)
def test_severity_rules_first_match_wins(kwargs: dict[str, object], severity: str) -> None:
    finding = detect(enriched(**kwargs), RULES, POLICY)  # type: ignore[arg-type]
    assert finding is not None
    assert finding.severity == severity


def test_severity_only_rises() -> None:
    assert higher("normal", "high") == "high"
    assert higher("high", "low") == "high"
    assert higher("low", "normal") == "normal"
