"""``mdp api``: the history API and the chart page, on their own (cluster mode).

It serves ``/v1/candles``, ``/v1/ticks``, ``/v1/instruments``, TradingView UDF under ``/udf``,
the OpenAPI document at ``/openapi.json`` and the chart page at ``/``, reading the database
at ``--database-url`` (default: ``DATABASE_URL``). The chart page gets its live candles from
the WebSocket gateway at ``--ws-url``. With ``--jwks-url`` it checks every request's access
token against the auth service's keys, and serves requests without one on the ``--anonymous``
plan, if any; with ``--bus kafka`` (``$KAFKA_BOOTSTRAP``), revoked keys, sessions and accounts
and plan changes on ``auth.events`` apply at once, not only when the token expires. See
``docs/history-api.md``, ``docs/auth.md`` and ``docs/chart.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Sequence
from typing import Any

from mdp.admin_options import add_admin_options
from mdp.cluster_options import kafka_bus, say
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_interval_option,
    add_issuer_options,
    add_log_options,
    add_token_options,
    add_wait_option,
    anonymous_plan,
    check_wait,
    configure_logging,
    database_refused,
    intervals_of,
    token_settings,
)
from mdp.tls_options import add_tls_options, tls_of


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "api",
        help="serve the history API and the chart page",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(parser)
    add_admin_options(parser)
    parser.set_defaults(run=run)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(log_level="info")  # uvicorn's start and access lines are told
    add_database_option(parser, "the command refuses to start")
    add_wait_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--ws-url",
        metavar="URL",
        help="the WebSocket gateway the chart page connects to (e.g. ws://127.0.0.1:8765/ws)",
    )
    add_interval_option(parser, "an interval the database stores", "; others are rolled up on read")
    parser.add_argument(
        "--max-limit", type=int, default=10_000, help="most rows per request (10000)"
    )
    parser.add_argument(
        "--head-timeout",
        type=float,
        metavar="SECONDS",
        help="a request's line and headers must arrive within this (default 10; 408 after)",
    )
    parser.add_argument(
        "--bus", choices=("none", "kafka"), default="none",
        help="where revocations (auth.events) come from: kafka ($KAFKA_BOOTSTRAP), or none",
    )  # fmt: skip
    parser.set_defaults(command="api")  # the bus's client id, also as python -m
    add_token_options(parser, "no checks, everything is readable", "request")
    add_issuer_options(parser)
    add_tls_options(parser)


def run(args: argparse.Namespace) -> int:
    from charting import ApiSettings, create_app_for_url
    from machine import settle_heap
    from web.guard import HttpLimits
    from web.server import run_until_stopped

    if not args.database_url:
        return _fail("no database: give --database-url or set DATABASE_URL")
    try:
        intervals = intervals_of(args)
        settings = ApiSettings(
            intervals=intervals,
            max_limit=args.max_limit,
            default_limit=min(1_000, args.max_limit),
            ws_url=args.ws_url,
            tokens=token_settings(args, anonymous=anonymous_plan(args)),
        )
        tls = tls_of(args)
        check_wait(args)
        limits = HttpLimits()
        if args.head_timeout is not None:
            limits = dataclasses.replace(limits, head_timeout=args.head_timeout)
    except ValueError as exc:
        return _fail(str(exc))
    if args.bus == "kafka" and not settings.tokens.checks_tokens:
        return _fail("--bus kafka reads revocations: give --jwks-url too")
    refused = database_refused(args, say("mdp api"))
    if refused:
        return refused
    open_bus = functools.partial(kafka_bus, args) if args.bus == "kafka" else None
    app = create_app_for_url(args.database_url.reveal(), settings, open_bus=open_bus)
    settle_heap()  # the modules out of every later collection: short pauses
    started = run_until_stopped(
        app, args.host, args.port, log_level=args.log_level, limits=limits, tls=tls
    )
    return 0 if started else EXIT_FAILED


def _fail(message: str) -> int:
    print(f"mdp api: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mdp.commands.api``: the same command without the ``mdp`` entry point."""
    parser = argparse.ArgumentParser(prog="mdp api", description=__doc__)
    _arguments(parser)
    add_log_options(parser)
    args = parser.parse_args(argv)
    configure_logging(args, "api")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
