"""`cxloop` commands of the collector: `cxloop rating-link`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cxloop_collector.rating import RatingError, RatingSigner, expiry, link_base, load_secret
from cxloop_collector.settings import CollectorSettings


def _rating_link(args: argparse.Namespace) -> int:
    settings = CollectorSettings()
    secret = settings.collector_rating_secret
    signer = RatingSigner(
        load_secret(secret.get_secret_value() if secret else None, settings.data_dir)
    )
    try:
        token = signer.issue(
            customer=args.customer, survey=args.survey, expires_at=expiry(args.days)
        )
    except RatingError as exc:
        print(f"cxloop rating-link: {exc}", file=sys.stderr)
        return 2
    print(
        f"rating link for {args.customer!r} ({args.survey}, valid {args.days:g} days); "
        "append the score:",
        file=sys.stderr,
    )
    print(link_base(args.base_url or settings.collector_public_url, token))
    return 0


def register(commands: Any) -> None:
    """Add the collector's sub-commands to the `cxloop` parser."""
    parser = commands.add_parser(
        "rating-link",
        help="print a signed one-click rating link (without its score) for a survey e-mail",
    )
    parser.add_argument("--customer", required=True, help="the customer's CRM id or address")
    parser.add_argument("--survey", choices=("nps", "csat", "ces"), default="nps")
    parser.add_argument("--days", type=float, default=14.0, help="how long the link is valid")
    parser.add_argument(
        "--base-url", default=None, help="collector URL (default CX_COLLECTOR_PUBLIC_URL)"
    )
    parser.set_defaults(handler=_rating_link)
