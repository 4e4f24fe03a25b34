"""The small HTML pages a customer sees after clicking a rating link."""

from __future__ import annotations

from html import escape

_PAGE = """<!doctype html>
<html lang="de">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#222}}h1{{font-size:1.5rem}}p{{line-height:1.5}}</style></head>
<body><h1>{title}</h1><p>{german}</p><p lang="en">{english}</p></body>
</html>
"""


def page(title: str, german: str, english: str) -> str:
    """A minimal bilingual page."""
    return _PAGE.format(title=escape(title), german=escape(german), english=escape(english))


def thank_you(score: int) -> str:
    """Shown once a score is recorded."""
    return page(
        "Danke! Thank you!",
        f"Ihre Bewertung ({score}) ist angekommen. Vielen Dank für Ihr Feedback.",
        f"Your rating ({score}) has been recorded. Thank you for your feedback.",
    )


def already_recorded(score: int) -> str:
    """Shown when the link recorded a score before."""
    return page(
        "Danke! Thank you!",
        f"Ihre Bewertung ({score}) haben wir bereits erhalten; sie zählt einmal.",
        f"We already have your rating ({score}); it counts once.",
    )


def link_problem(message: str) -> str:
    """Shown for a forged, expired or incomplete link or a score out of range."""
    return page(
        "Link ungültig / Link not valid",
        "Dieser Bewertungslink ist ungültig oder abgelaufen.",
        message[:1].upper() + message[1:] + ".",
    )


def try_later() -> str:
    """Shown when the rating could not be stored right now."""
    return page(
        "Bitte später erneut versuchen / Please try again later",
        "Ihre Bewertung konnte gerade nicht gespeichert werden. Bitte klicken Sie den Link "
        "in ein paar Minuten erneut.",
        "Your rating could not be stored just now. Please click the link again in a few minutes.",
    )
