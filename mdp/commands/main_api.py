"""``mdp main-api``: the main API (cluster mode): profiles, watchlists, price alerts and
notifications under ``/api/v1`` on ``--host``/``--port`` (``docs/main-api.md``).

Every request's token is checked against the auth service's key set at ``--jwks-url``
(required: the main API serves accounts only). Its tables are made at start, in the schema
``--schema`` of ``--database-url`` (default: ``DATABASE_URL``), the platform's database, whose
``instruments`` table says which instruments exist. With ``--bus kafka``, revocations and plan
changes on ``auth.events`` apply at once. It sends the accounts' webhooks too (several
processes share that work), unless ``--no-webhook-worker``; endpoints must name public hosts
unless ``--webhook-private-hosts``. Delivered deliveries are kept ``--webhook-keep-delivered``
days (7), dead letters ``--webhook-keep-dead`` days (30). It stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine import settle_heap
from mdp.admin_options import add_admin_options
from mdp.cluster_options import kafka_bus, say, stop_on_signals
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_issuer_options,
    add_log_options,
    add_token_options,
    add_wait_option,
    configure_logging,
    schema_name,
    start_refused,
    token_settings,
)
from mdp.tls_options import add_tls_options, tls_of

if TYPE_CHECKING:
    from main_api.webhooks.settings import WebhookSettings

DEFAULT_PORT = 8040
DEFAULT_SCHEMA = "main_api"
DAY_S = 86_400
MAX_KEEP_DAYS = 3650


def keep_days(value: str) -> float:
    """A retention in days: above 0, at most ten years."""
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value[:32]!r}") from None
    if not 0 < days <= MAX_KEEP_DAYS:
        raise argparse.ArgumentTypeError(f"days are above 0 and at most {MAX_KEEP_DAYS}")
    return days


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "main-api",
        help="run the main API: profiles, watchlists, alerts, notifications (/api/v1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_database_option(parser, "the command refuses to start")
    add_wait_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT})"
    )
    parser.add_argument(
        "--schema", type=schema_name, default=DEFAULT_SCHEMA,
        help=f"the main API's schema (default {DEFAULT_SCHEMA})",
    )  # fmt: skip
    parser.add_argument(
        "--bus", choices=("none", "kafka"), default="none",
        help="where revocations (auth.events) come from: kafka ($KAFKA_BOOTSTRAP), or none",
    )  # fmt: skip
    parser.add_argument(
        "--no-webhook-worker", dest="webhook_worker", action="store_false",
        help="do not send webhooks from this process (another one does)",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-private-hosts", action="store_true",
        help="let webhook endpoints name loopback and private hosts (off: public hosts only)",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-keep-delivered", type=keep_days, default=7.0, metavar="DAYS",
        help="how long delivered webhook deliveries are kept, then deleted (7)",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-keep-dead", type=keep_days, default=30.0, metavar="DAYS",
        help="how long webhook dead letters are kept (listed, replayable), then deleted (30)",
    )  # fmt: skip
    parser.add_argument(
        "--plan-limits", type=Path, metavar="FILE",
        help="the plans' limits, a TOML file (docs/main-api.md, \"Limits\"; default: the"
        " built-in table)",
    )  # fmt: skip
    add_token_options(parser, "required", "request", anonymous=False)
    add_issuer_options(parser)
    add_admin_options(parser)
    add_tls_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from main_api.plan_limits import PlanLimitsBook, PlanLimitsError, load_plan_limits
    from main_api.process import running
    from main_api.settings import MainApiSettings

    tell = say("mdp main-api")
    try:  # a bad file is refused before anything starts
        limits = load_plan_limits(args.plan_limits) if args.plan_limits else PlanLimitsBook()
    except PlanLimitsError as exc:
        tell(f"error: --plan-limits: {exc}")
        return EXIT_BAD_INPUT
    try:
        tls = tls_of(args)
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    refused = start_refused(args, tell, "the main API")
    if refused:
        return refused
    settings = MainApiSettings(
        args.database_url.reveal(), token_settings(args), host=args.host,
        port=args.port, schema=args.schema, plan_limits=limits.plans,
        fallback_limits=limits.fallback,
        webhooks=webhook_settings(args), tls=tls,
    )  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        async with contextlib.AsyncExitStack() as stack:
            bus = await stack.enter_async_context(kafka_bus(args)) if args.bus == "kafka" else None
            server = await stack.enter_async_context(running(settings, bus))
            tell(f"serving the main API on {server.url}/api/v1")
            await stop.wait()

    try:
        settle_heap()  # the modules out of every later collection: short pauses
        asyncio.run(main())
    except OSError as exc:
        tell(f"error: {exc}")
        return EXIT_FAILED
    return 0


def webhook_settings(args: argparse.Namespace) -> WebhookSettings:
    """The webhooks' settings the options give."""
    from main_api.webhooks.settings import WebhookSettings

    return WebhookSettings(
        worker=args.webhook_worker, allow_private_hosts=args.webhook_private_hosts,
        keep_delivered_s=args.webhook_keep_delivered * DAY_S,
        keep_dead_s=args.webhook_keep_dead * DAY_S,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m mdp.commands.main_api``: the same command without the ``mdp`` entry
    point."""
    parser = argparse.ArgumentParser(prog="mdp")
    add_parser(parser.add_subparsers(dest="command"))
    add_log_options(parser)
    args = parser.parse_args(["main-api", *(argv or sys.argv[1:])])
    configure_logging(args)
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
