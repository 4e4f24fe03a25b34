"""Touchpoint rules of the default taxonomy on a table of events, precedence and validation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cxloop_enricher.taxonomy import UNCLASSIFIED, Taxonomy, build_taxonomy, load_taxonomy
from cxloop_enricher.touchpoints import TouchpointTagger, fold, keyword_regex
from cxruntime.errors import ConfigurationError
from cxschema import JOURNEY_STAGES, FeedbackSubmission


@pytest.fixture(scope="module")
def tagger() -> TouchpointTagger:
    return TouchpointTagger(load_taxonomy(None))


def submission(**values: Any) -> FeedbackSubmission:
    values.setdefault("channel", "web")
    values.setdefault("scores", {"nps": 5})
    return FeedbackSubmission.model_validate(values)


# (event, expected touchpoint, expected rule or None for hint/default)
TABLE: list[tuple[dict[str, Any], str, str | None]] = [
    # Hints naming an id or an alias win over everything else.
    ({"touchpoint": "delivery", "comment": "Die App stürzt ab"}, "delivery", None),
    ({"touchpoint": "Checkout"}, "online.checkout", None),
    ({"touchpoint": "service.contact_centre.billing"}, "service.contact_centre.billing", None),
    ({"touchpoint": "contact-centre"}, "service.contact_centre", None),
    # Where the feedback was given.
    (
        {"channel": "contact_centre", "context": {"ivr_queue": "DE_Billing_2"}},
        "service.contact_centre.billing",
        "ivr-billing",
    ),
    (
        {"channel": "contact_centre", "context": {"ivr_queue": "Bestellungen"}},
        "service.contact_centre.orders",
        "ivr-orders",
    ),
    (
        {"channel": "contact_centre", "context": {"ivr_queue": "general"}},
        "service.contact_centre",
        "ivr-any",
    ),
    (
        {"channel": "contact_centre", "context": {"ivr_queue": "DE_App_Hilfe"}},
        "service.contact_centre.technical",
        "ivr-technical",
    ),
    (
        {"channel": "contact_centre", "context": {"ivr_queue": "DE_Appointments"}},
        "service.contact_centre",
        "ivr-any",
    ),
    ({"channel": "app", "context": {"app_screen": "OrderTracking"}}, "delivery.tracking", None),
    ({"channel": "app", "context": {"app_screen": "CartScreen"}}, "app.checkout", "app-checkout"),
    ({"channel": "app", "context": {"app_screen": "home"}}, "app", "app-any"),
    # A place that says nothing specific gives way to what the words are about.
    (
        {"context": {"url": "https://shop.example/"}, "comment": "Das Paket kam nie an."},
        "delivery.delay",
        "delivery-delay",
    ),
    # Words that are late or waiting about something other than a parcel are no delay, and
    # "Lieferzeit" alone is no complaint.
    (
        {"channel": "app", "comment": "Die App funktioniert immer noch nicht nach dem Update"},
        "app",
        "app",
    ),
    ({"comment": "Lieferzeit super, schon am nächsten Tag da!"}, "delivery", "delivery"),
    ({"comment": "Ich warte immer noch auf mein Paket"}, "delivery", "delivery"),
    ({"comment": "Ich möchte die Jacke zurückgeben"}, "returns", "returns"),
    ({"comment": "I want to return this jacket"}, "returns", "returns"),
    (
        {"channel": "app", "context": {"app_screen": "Home"}, "comment": "Die App stürzt ab"},
        "app.performance",
        "app-crash",
    ),
    (
        {
            "channel": "contact_centre",
            "context": {"ivr_queue": "general"},
            "comment": "Rechnung doppelt abgebucht",
        },
        "billing.payment",
        "billing-payment",
    ),
    # A specific place still wins over the words.
    (
        {"context": {"url": "https://shop.example/checkout"}, "comment": "Paket kam nie an"},
        "online.checkout",
        "url-checkout",
    ),
    (
        {"context": {"url": "https://shop.example/checkout?step=2"}, "comment": "zu teuer"},
        "online.checkout",
        "url-checkout",
    ),
    ({"context": {"url": "https://shop.example/de/warenkorb"}}, "online.checkout", None),
    ({"context": {"url": "https://shop.example/search?q=schuhe"}}, "online.search", None),
    ({"context": {"url": "https://shop.example/p/12345-sneaker"}}, "online.product_page", None),
    ({"context": {"url": "https://shop.example/mein-konto/daten"}}, "account", "url-account"),
    ({"context": {"url": "https://shop.example/"}}, "online", "url-any"),
    # What the e-mail subject or comment talks about (German and English).
    (
        {"channel": "email", "context": {"subject": "Rechnung 2026-0042 falsch"}},
        "billing.invoice",
        "billing-invoice",
    ),
    ({"comment": "Die Lieferung kam drei Tage zu spät."}, "delivery.delay", "delivery-delay"),
    ({"comment": "The parcel still hasn't arrived"}, "delivery.delay", "delivery-delay"),
    ({"comment": "Paket kam beschädigt an."}, "delivery.damage", "delivery-damage"),
    ({"comment": "Paket kam beschaedigt an."}, "delivery.damage", "delivery-damage"),
    ({"comment": "Box arrived damaged"}, "delivery.damage", "delivery-damage"),
    ({"comment": "Sendungsverfolgung zeigt nichts an"}, "delivery.tracking", None),
    ({"comment": "Die Paketlieferung war schnell"}, "delivery", "delivery"),
    ({"comment": "Fast shipping, thanks"}, "delivery", "delivery"),
    ({"comment": "Rücksendung war kompliziert"}, "returns", "returns"),
    (
        {"comment": "I returned the shoes and I am still waiting for my refund"},
        "returns.refund",
        None,
    ),
    ({"comment": "Wann bekomme ich meine Erstattung?"}, "returns.refund", "refund"),
    ({"comment": "Mir wurde doppelt abgebucht"}, "billing.payment", "billing-payment"),
    ({"comment": "I was charged twice"}, "billing.payment", "billing-payment"),
    ({"comment": "Die Rechnung ist falsch"}, "billing.invoice", "billing-invoice"),
    ({"comment": "Die App stürzt ständig ab"}, "app.performance", "app-crash"),
    ({"comment": "The app keeps crashing"}, "app.performance", "app-crash"),
    ({"comment": "Ich habe mein Passwort vergessen und komme nicht rein"}, "account.login", None),
    ({"comment": "Zu viele Newsletter"}, "account.newsletter", "newsletter"),
    ({"comment": "Ich möchte mein Abo kündigen"}, "cancellation.contract", "cancel-contract"),
    ({"comment": "Please cancel my subscription"}, "cancellation.contract", "cancel-contract"),
    ({"comment": "Meine Bestellung wurde einfach storniert"}, "cancellation.order", None),
    ({"comment": "Lange Warteschleife an der Hotline"}, "service.contact_centre", None),
    ({"comment": "Sehr freundlicher Kundenservice"}, "service", "service"),
    ({"comment": "Leider ausverkauft"}, "product.availability", "availability"),
    ({"comment": "Viel zu teuer"}, "product.price", "price"),
    ({"comment": "Poor quality, fell apart after a week"}, "product.quality", "quality"),
    ({"comment": "Gutscheincode wurde nicht akzeptiert"}, "loyalty", "loyalty"),
    ({"comment": "Die Webseite ist unübersichtlich"}, "online", "website"),
    # Only the channel.
    ({"channel": "contact_centre", "comment": "ok"}, "service.contact_centre", None),
    ({"channel": "app", "scores": {"nps": 9}}, "app", "channel-app"),
    # Nothing to go on: nothing is dropped.
    ({"comment": "Alles gut"}, UNCLASSIFIED, None),
    ({"scores": {"csat": 4}}, UNCLASSIFIED, None),
    ({"touchpoint": "no.such.touchpoint", "comment": "hm"}, UNCLASSIFIED, None),
]


@pytest.mark.parametrize(
    ("values", "expected", "rule"), TABLE, ids=[f"{i}-{t[1]}" for i, t in enumerate(TABLE)]
)
def test_default_taxonomy_table(
    tagger: TouchpointTagger, values: dict[str, Any], expected: str, rule: str | None
) -> None:
    tagging = tagger.tag(submission(**values))
    assert tagging.touchpoint.id == expected, tagging.explain()
    if rule is not None:
        assert tagging.rule == rule


def test_hint_wins_and_says_so(tagger: TouchpointTagger) -> None:
    tagging = tagger.tag(submission(touchpoint="delivery", comment="Rechnung falsch"))
    assert (tagging.via, tagging.rule) == ("hint", None)
    assert "delivery" in tagging.explain()


def test_hints_with_umlauts_name_their_aliases(tagger: TouchpointTagger) -> None:
    for hint, expected in (("Kündigung", "cancellation"), ("Rücksendung", "returns")):
        tagging = tagger.tag(submission(touchpoint=hint, comment="Alles gut"))
        assert (tagging.touchpoint.id, tagging.via) == (expected, "hint"), hint


def test_unknown_hint_falls_through_to_rules(tagger: TouchpointTagger) -> None:
    tagging = tagger.tag(submission(touchpoint="marketing-2026", comment="Rechnung falsch"))
    assert (tagging.touchpoint.id, tagging.via) == ("billing.invoice", "rule")


def test_unclassified_explains_itself(tagger: TouchpointTagger) -> None:
    tagging = tagger.tag(submission(touchpoint="nonsense", comment="Alles gut"))
    assert tagging.via == "default"
    assert "nonsense" in tagging.reasons[0]
    assert "no rule matched" in tagging.explain()


def test_context_beats_comment(tagger: TouchpointTagger) -> None:
    event = submission(
        channel="contact_centre",
        context={"ivr_queue": "billing"},
        comment="Die Lieferung war zu spät",
    )
    assert tagger.tag(event).touchpoint.id == "service.contact_centre.billing"


def test_explanation_names_rule_and_keyword(tagger: TouchpointTagger) -> None:
    tagging = tagger.tag(submission(comment="Lieferung kam zu spät"))
    assert tagging.explain() == "rule 'delivery-delay': text keyword 'zu spaet' matches 'zu spaet'"


def test_stage_and_team_are_inherited(tagger: TouchpointTagger) -> None:
    tp = tagger.taxonomy.touchpoints["service.contact_centre.billing"]
    assert (tp.stage, tp.team) == ("service", "contact_centre")
    assert tagger.taxonomy.touchpoints["online.checkout"].team == "ecommerce"


def test_default_taxonomy_has_every_issue_area() -> None:
    ids = set(load_taxonomy(None).touchpoints)
    for area in (
        "online",
        "app",
        "delivery",
        "returns",
        "billing",
        "service.contact_centre",
        "product",
        "account",
        "cancellation",
        "unclassified",
    ):
        assert area in ids
    stages = {tp.stage for tp in load_taxonomy(None).touchpoints.values()}
    assert stages == set(JOURNEY_STAGES)  # the default taxonomy uses every stage


def test_keywords_match_whole_words_with_wildcards() -> None:
    rx = keyword_regex(["liefer*", "*paket", "zu spät", "app"])
    assert rx.search(fold("Die Lieferung"))
    assert rx.search(fold("Das Großpaket"))
    assert rx.search(fold("viel zu   spät"))
    assert rx.search(fold("Die App")) is not None
    assert rx.search(fold("happy")) is None
    assert rx.search(fold("Auslieferung")) is None


MINIMAL: dict[str, Any] = {
    "touchpoints": [
        {"id": "shop", "name": "Shop", "stage": "purchase", "team": "web"},
        {"id": "shop.cart", "name": "Cart"},
        {"id": "unclassified", "name": "Other", "stage": "unknown"},
    ],
    "rules": [{"name": "cart", "touchpoint": "shop.cart", "comment": ["warenkorb"]}],
}


def _invalid(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as info:
        build_taxonomy(data, source="test.yaml")
    return str(info.value)


def test_a_minimal_taxonomy_loads() -> None:
    taxonomy = build_taxonomy(MINIMAL, source="test.yaml")
    assert taxonomy.touchpoints["shop.cart"].team == "web"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"touchpoints": MINIMAL["touchpoints"][:2]}, "must define 'unclassified'"),
        (
            {"touchpoints": [*MINIMAL["touchpoints"], {"id": "x.y", "name": "Y"}]},
            "its parent 'x' is not defined",
        ),
        (
            {"touchpoints": [*MINIMAL["touchpoints"], {"id": "z", "name": "Z", "stage": "fun"}]},
            "unknown journey stage 'fun'",
        ),
        (
            {"touchpoints": [*MINIMAL["touchpoints"], {"id": "Bad Id", "name": "B"}]},
            "is not a touchpoint id",
        ),
        (
            {"touchpoints": [*MINIMAL["touchpoints"], {"id": "z", "name": "Z"}]},
            "'z' has no stage",
        ),
        ({"rules": [{"name": "r", "touchpoint": "nope", "comment": ["a"]}]}, "unknown touchpoint"),
        ({"rules": [{"name": "r", "touchpoint": "shop"}]}, "has no condition"),
        ({"rules": [{"name": "r", "touchpoint": "shop", "url": ["("]}]}, "invalid regular"),
        ({"rules": [{"name": "r", "touchpoint": "shop", "channel": ["fax"]}]}, "unknown channel"),
        ({"rules": [{"name": "r", "touchpoint": "shop", "colour": ["x"]}]}, "rules[0] ('r')"),
        (
            {"rules": [MINIMAL["rules"][0], MINIMAL["rules"][0]]},
            "the name is used twice",
        ),
    ],
)
def test_invalid_taxonomies_are_refused_with_a_clear_message(
    change: dict[str, Any], message: str
) -> None:
    assert message in _invalid({**MINIMAL, **change})


def test_config_dir_overrides_the_packaged_taxonomy(tmp_path: Path) -> None:
    (tmp_path / "touchpoints.yaml").write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    taxonomy = load_taxonomy(tmp_path)
    assert taxonomy.source == str(tmp_path / "touchpoints.yaml")
    tagging = TouchpointTagger(taxonomy).tag(submission(comment="Warenkorb leer"))
    assert tagging.touchpoint.id == "shop.cart"


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "touchpoints.yaml").write_text("touchpoints: [\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"touchpoints\.yaml: invalid YAML"):
        load_taxonomy(tmp_path)


def _reference(taxonomy: Taxonomy, event: FeedbackSubmission) -> str:
    """The rules' meaning, evaluated the slow and obvious way: one regex per condition."""
    hinted = taxonomy.resolve_hint(event.touchpoint)
    if hinted is not None:
        return hinted.id
    subject, comment = fold(event.context.subject), fold(event.comment or "")
    values = {
        "url": event.context.url,
        "app_screen": event.context.app_screen,
        "ivr_queue": event.context.ivr_queue,
        "subject": subject,
        "comment": comment,
        "text": f"{subject}\n{comment}",
    }
    for rule in taxonomy.rules:
        ok = rule.channel is None or event.channel in rule.channel
        for field, patterns in rule.conditions().items():
            if field in ("url", "app_screen", "ivr_queue"):
                rx = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
                ok = ok and bool(values[field]) and rx.search(values[field]) is not None
            elif field != "channel":
                ok = ok and keyword_regex(patterns).search(values[field]) is not None
        if ok:
            return rule.touchpoint
    return UNCLASSIFIED


_VOCABULARY = sorted(
    {
        word
        for rule in load_taxonomy(None).rules
        for keywords in (rule.text or [], rule.comment or [], rule.subject or [])
        for keyword in keywords
        for word in re.split(r"[\s*]+", keyword)
        if word
    }
    | {"Paketlieferung", "Rückgabe", "nicht", "sehr", "gut", "the", "was", "x", "zu", "spät"}
)


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.sampled_from(_VOCABULARY), max_size=8),
    suffix=st.sampled_from(["", "en", "ung", "s", "e"]),
    channel=st.sampled_from(["web", "app", "email", "contact_centre"]),
    subject=st.lists(st.sampled_from(_VOCABULARY), max_size=3),
)
def test_fast_matching_agrees_with_one_regex_per_condition(
    tagger: TouchpointTagger, words: list[str], suffix: str, channel: str, subject: list[str]
) -> None:
    comment = " ".join(words) + suffix
    event = submission(
        channel=channel, comment=comment or None, context={"subject": " ".join(subject)}
    )
    assert tagger.tag(event).touchpoint.id == _reference(tagger.taxonomy, event)
