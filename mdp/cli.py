"""``mdp``: argument parsing and dispatch to the sub-commands."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

from mdp.admin_options import serving_admin
from mdp.commands import (
    alerts,
    api,
    auth,
    candles,
    certs,
    db,
    edge,
    gateway,
    ingest,
    kafka,
    main_api,
    trading,
    up,
    worker,
    writer,
)
from mdp.common_options import EXIT_FAILED, add_log_options, configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mdp",
        description="Ganntec market data platform: ticks in, exact OHLCV candles out.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    up.add_parser(commands)
    candles.add_parser(commands)
    db.add_parser(commands)
    kafka.add_parser(commands)
    ingest.add_parser(commands)
    worker.add_parser(commands)
    writer.add_parser(commands)
    gateway.add_parser(commands)
    api.add_parser(commands)
    auth.add_parser(commands)
    edge.add_parser(commands)
    trading.add_parser(commands)
    main_api.add_parser(commands)
    alerts.add_parser(commands)
    certs.add_parser(commands)
    add_log_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args)
    # The pool logs each failed reconnect; our own lines tell a database outage once, then
    # at a bounded rate (streams.outage.OutageLog).
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    with contextlib.ExitStack() as admin:
        try:
            admin.enter_context(serving_admin(args))  # --admin-port: the metrics meanwhile
        except (OSError, ValueError) as exc:
            print(f"mdp {args.command}: error: --admin-port: {exc}", file=sys.stderr)
            return EXIT_FAILED
        try:
            code: int = args.run(args)
        except KeyboardInterrupt:
            print("mdp: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # e.g. `mdp candles ... | head`
            sys.stderr.close()
            return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
