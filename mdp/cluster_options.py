"""What the cluster-mode commands (``mdp kafka``, ``ingest``, ``worker``, ``writer``) share:
the Kafka options, read once from the command line and the environment, and a stop signal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

from streams.bus import Bus
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import DEFAULT_BOOTSTRAP, KafkaSettings


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kafka")
    group.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        default=os.environ.get("KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP,
        help=f"the brokers (default: $KAFKA_BOOTSTRAP, else {DEFAULT_BOOTSTRAP})",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait this long for an unreachable broker, retrying with backoff (default 60;"
        " 0: for ever)",
    )


def kafka_settings(args: argparse.Namespace, client_id: str) -> KafkaSettings:
    """The Kafka settings from the parsed options (raises ValueError when bad)."""
    if args.connect_timeout < 0:
        raise ValueError("--connect-timeout must not be negative")
    return KafkaSettings(
        bootstrap=args.bootstrap,
        client_id=client_id,
        connect_timeout=args.connect_timeout or None,
    )


def say(command: str) -> Callable[[str], None]:
    """A printer of one-line messages to stderr, prefixed with the command's name."""

    def tell(text: str) -> None:
        print(f"{command}: {text}", file=sys.stderr, flush=True)

    return tell


@contextlib.asynccontextmanager
async def kafka_bus(args: argparse.Namespace) -> AsyncIterator[Bus]:
    """The Kafka bus for services without Kafka options of their own (``mdp gateway --bus
    kafka``): ``$KAFKA_BOOTSTRAP``, waiting for the broker with backoff."""
    bootstrap = getattr(args, "bootstrap", None) or os.environ.get("KAFKA_BOOTSTRAP")
    settings = KafkaSettings(bootstrap or DEFAULT_BOOTSTRAP, client_id=f"mdp-{args.command}")
    async with KafkaBus(settings, create_topics=False, say=say(f"mdp {args.command}")) as bus:
        yield bus


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on Ctrl-C and SIGTERM (call inside the running loop)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
