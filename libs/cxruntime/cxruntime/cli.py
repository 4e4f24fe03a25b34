"""The `cxloop` command line (SPEC.md, "Command line").

Each service package may add its own commands through a `cli` module with
`register(commands)`, where `commands` is the argparse sub-parser collection and each parser
sets `handler=callable(args) -> int`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError
from pydantic_settings import SettingsError

from cxruntime import apikeys
from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.errors import ConfigurationError
from cxruntime.logs import configure_logging
from cxruntime.services import SERVICES
from cxruntime.settings import CommonSettings

if TYPE_CHECKING:
    from cxruntime.deadletters import DeadLetter

EXTENSIONS = ("cxloop_collector", "cxloop_enricher", "cxloop_metrics", "cxloop_closed_loop")


def _up(args: argparse.Namespace) -> int:
    from cxruntime.supervisor import Supervisor

    settings = CommonSettings()
    configure_logging("up", settings.log_level)
    return Supervisor(settings).run()


def _run_service(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"{args.package}.main")
    status = module.run()
    assert isinstance(status, int)
    return status


def _migrate(args: argparse.Namespace) -> int:
    from cxruntime.migrations import migrate

    settings = CommonSettings()
    done = migrate(settings.database_dsn())
    print(f"migrated: {', '.join(done)}")
    return 0


def _topics_create(args: argparse.Namespace) -> int:
    from cxruntime.kafka import ensure_topics

    settings = CommonSettings()
    created = asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap(),
            partitions=args.partitions or settings.topic_partitions,
            replication_factor=args.replication_factor or settings.topic_replication_factor,
        )
    )
    print(f"created: {', '.join(created)}" if created else "all topics exist")
    return 0


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _keys(args: argparse.Namespace) -> int:
    settings = CommonSettings()

    async def act() -> int:
        engine = make_engine(settings.database_dsn(), pool_size=1, max_overflow=0)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session, session.begin():
                if args.keys_command == "create":
                    key, secret = await apikeys.create_key(
                        session,
                        name=args.name,
                        scopes=_split(args.scopes),
                        channels=_split(args.channels),
                        origins=_split(args.origins),
                        team=args.team,
                        publishable=args.publishable,
                    )
                    print(
                        f"created key {key.name!r} (scopes {', '.join(sorted(key.scopes))}; "
                        f"channels {', '.join(sorted(key.channels)) or 'all'}); "
                        "it is shown once and stored hashed:"
                    )
                    print(secret)
                    return 0
                if args.keys_command == "list":
                    print(f"{'NAME':<28} {'SCOPES':<22} {'CHANNELS':<26} {'TEAM':<14} STATUS")
                    for key in await apikeys.list_keys(session):
                        status = "revoked" if key.revoked_at else "active"
                        channels = ",".join(sorted(key.channels)) or "all"
                        print(
                            f"{key.name:<28} {','.join(sorted(key.scopes)):<22} "
                            f"{channels:<26} {key.team or '-':<14} {status}"
                        )
                    return 0
                if await apikeys.revoke_key(session, name=args.name):
                    print(f"revoked key {args.name!r}")
                    return 0
                print(f"no active key named {args.name!r}", file=sys.stderr)
                return 1
        finally:
            await engine.dispose()

    try:
        return asyncio.run(act())
    except apikeys.ApiKeyRequestError as exc:
        print(f"cxloop keys: {exc}", file=sys.stderr)
        return 2


DEAD_LETTER_STAGES: Final = ("enricher", "metrics", "closed_loop")


def _stage(value: str) -> str:
    """An argparse `type`: a consuming stage ("closed-loop", as the command is spelled, too)."""
    stage = value.strip().lower().replace("-", "_")
    if stage not in DEAD_LETTER_STAGES:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a stage; one of {', '.join(DEAD_LETTER_STAGES)}"
        )
    return stage


def _letters(n: int) -> str:
    return f"{n} dead letter" + ("" if n == 1 else "s")


def port_number(value: str) -> int:
    """An argparse `type`: a TCP port, 1 to 65535."""
    number = int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {number}")
    return number


port_number.__name__ = "integer"  # argparse names the type in its "invalid integer value" error


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type`: an integer of at least `minimum`, else a clear usage error."""

    def parse(value: str) -> int:
        number = int(value)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {number}")
        return number

    parse.__name__ = "integer"  # argparse names the type in its "invalid integer value" error
    return parse


def utf8_text(data: bytes) -> str:
    """`data` as text: UTF-8, with or without a byte-order mark; a `ValueError` saying where
    it is not, for the services' commands that read a user's file."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def field_errors(exc: ValidationError) -> list[str]:
    """Each failing field of an event as one line, for the services' commands:
    `scores.nps: <message> (got 12)`."""
    lines = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(event)"
        if error["type"] == "model_type":
            kind = type(error["input"]).__name__
            lines.append(f"{field}: expected a JSON object, not {_JSON_TYPES.get(kind, kind)}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = repr(value)
        if error["type"] != "missing" and _is_scalar(value) and len(shown) <= 60:
            message += f" (got {shown})"
        lines.append(f"{field}: {message}")
    return lines


_JSON_TYPES = {
    "list": "a list",
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
    "NoneType": "null",
}


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _dead_letters(args: argparse.Namespace) -> int:
    from cxruntime import deadletters

    settings = CommonSettings()
    bootstrap = settings.kafka_bootstrap()
    try:
        since = _parse_since(args.since)
    except ValueError as exc:
        print(f"cxloop dead-letters: {exc}", file=sys.stderr)
        return 2
    selection = deadletters.Selection(
        stage=args.stage, reason=args.reason, topic=args.topic, since=since
    )
    try:
        letters, total = asyncio.run(deadletters.read_dead_letters(bootstrap, selection))
    except deadletters.DeadLetterReadError as exc:
        print(f"cxloop dead-letters: {exc}", file=sys.stderr)
        return 1
    if args.dead_letters_command == "list":
        shown = letters[-args.limit :] if args.limit else letters
        for letter in shown:
            if args.json:
                print(json.dumps(_dead_letter_json(letter), ensure_ascii=False))
            else:
                reason = letter.reason.splitlines()[0] if letter.reason else "-"
                print(
                    f"{letter.time:%Y-%m-%dT%H:%M:%SZ}  {letter.partition}@{letter.offset:<6} "
                    f"{letter.stage or '-':<12} {letter.source:<30} {reason}"
                )
        print(
            f"{len(letters)} of {_letters(total)} selected"
            + (f", the last {len(shown)} shown" if len(shown) < len(letters) else ""),
            file=sys.stderr,
        )
        return 0
    if not args.yes:
        if not letters:
            print(f"nothing to replay: none of the {_letters(total)} matches the selection")
            return 0
        targets = sorted({letter.source_topic or "(no source topic)" for letter in letters})
        print(
            f"would replay {len(letters)} of {_letters(total)} to {', '.join(targets)}; "
            "run again with --yes to do it"
        )
        return 0
    replayed, skipped = asyncio.run(deadletters.replay(bootstrap, letters))
    print(
        f"replayed {_letters(replayed)} to their source topics"
        + (f"; skipped {skipped} without a source topic" if skipped else "")
    )
    return 0


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "partition": letter.partition,
        "offset": letter.offset,
        "time": letter.time.isoformat().replace("+00:00", "Z"),
        "stage": letter.stage,
        "reason": letter.reason,
        "source": letter.source,
        "key": None if letter.key is None else letter.key.decode("utf-8", "replace"),
        "value": letter.value.decode("utf-8", "replace"),
    }


def _demo(args: argparse.Namespace) -> int:
    from cxruntime.demo import run_demo

    return run_demo(args)


def build_parser(*, extensions: bool = True) -> argparse.ArgumentParser:
    """The whole `cxloop` argument parser; without the services' own commands (`routes`,
    `sentiment`, ...) if not `extensions`."""
    parser = argparse.ArgumentParser(
        prog="cxloop", description="cxloop: a self-hosted Voice-of-the-Customer pipeline."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the embedded servers and all four services")
    up.set_defaults(handler=_up)

    for service in SERVICES:
        sub = commands.add_parser(service.name, help=f"run the {service.name} service alone")
        sub.set_defaults(handler=_run_service, package=service.package)

    mig = commands.add_parser("migrate", help="apply the database migrations")
    mig.set_defaults(handler=_migrate)

    topics = commands.add_parser("topics", help="Kafka topics")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    create = topics_sub.add_parser("create", help="create the cxloop topics that are missing")
    create.add_argument("--partitions", type=at_least(1), default=None)
    create.add_argument("--replication-factor", type=at_least(1), default=None)
    create.set_defaults(handler=_topics_create)

    keys = commands.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    kc = keys_sub.add_parser("create", help="create a key; prints it as the last line")
    kc.add_argument("--name", required=True)
    kc.add_argument("--scopes", required=True, help="comma-separated: ingest,read,cases,admin")
    kc.add_argument("--channels", default="", help="comma-separated channels (default: all)")
    kc.add_argument("--team", default=None, help="limit a cases key to one team's cases")
    kc.add_argument("--origins", default="", help="allowed browser origins (publishable keys)")
    kc.add_argument(
        "--publishable", action="store_true", help="a browser key: ingest on web from --origins"
    )
    kc.set_defaults(handler=_keys)
    kl = keys_sub.add_parser("list", help="list keys")
    kl.set_defaults(handler=_keys)
    kr = keys_sub.add_parser("revoke", help="revoke a key by name")
    kr.add_argument("name")
    kr.set_defaults(handler=_keys)

    dead = commands.add_parser(
        "dead-letters", help="records consumers gave up on (cx.feedback.invalid.v1)"
    )
    dead_sub = dead.add_subparsers(dest="dead_letters_command", required=True)
    dead_list = dead_sub.add_parser("list", help="the dead letters, oldest first, with reasons")
    dead_replay = dead_sub.add_parser(
        "replay",
        help="write the selected dead letters to their source topics again (after a fix)",
    )
    for sub_parser in (dead_list, dead_replay):
        sub_parser.add_argument(
            "--stage",
            type=_stage,
            default=None,
            help="the consumer that dead-lettered: enricher, metrics, closed_loop",
        )
        sub_parser.add_argument("--reason", default=None, help="a part of the reason, any case")
        sub_parser.add_argument("--topic", default=None, help="the source topic")
        sub_parser.add_argument(
            "--since", default=None, help="dead-lettered at or after this ISO 8601 time (UTC)"
        )
        sub_parser.set_defaults(handler=_dead_letters)
    dead_list.add_argument("--limit", type=at_least(0), default=50, help="the newest N (0: all)")
    dead_list.add_argument("--json", action="store_true", help="one JSON line each, with value")
    dead_replay.add_argument("--yes", action="store_true", help="replay (else: say what would)")

    demo = commands.add_parser("demo", help="post a realistic stream to a running collector")
    demo.add_argument("--collector", default=None, help="collector URL (default: local)")
    demo.add_argument("--metrics", default=None, help="metrics URL (default: local)")
    demo.add_argument("--closed-loop", default=None, help="closed-loop URL (default: local)")
    demo.add_argument("--key", default=None, help="API key (default: the dev key of cxloop up)")
    demo.add_argument("--events", type=int, default=120, help="how many events to post")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait for the events to reach the KPIs and the cases",
    )
    demo.set_defaults(handler=_demo)

    for package in EXTENSIONS if extensions else ():
        try:
            module = importlib.import_module(f"{package}.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in (package, f"{package}.cli"):
                raise
            continue
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cxloop` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A service process loads no other service's commands: importing them would register
    # their Prometheus metrics in its registry, and its /metrics would show them (as zeros).
    service = bool(argv) and argv[0] in {service.name for service in SERVICES}
    args = build_parser(extensions=not service).parse_args(argv)
    try:
        status = args.handler(args)
    except ConfigurationError as exc:
        print(f"cxloop: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        if not exc.title.endswith("Settings"):
            raise  # a bug, not a setting: keep the traceback
        print(f"cxloop: invalid CX_* setting in the environment: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        # A list or mapping variable that is not JSON, e.g. CX_ENRICHER_PII_KEEP=name.
        print(f"cxloop: {exc} (lists and mappings are written as JSON)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`cxloop sentiment score < big.txt | head`): stop quietly, and
        # point stdout at /dev/null so that flushing it at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    assert isinstance(status, int)
    return status


if __name__ == "__main__":
    sys.exit(main())
