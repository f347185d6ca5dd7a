"""``mdp writer``: ``md.ticks``, ``md.candles`` and ``md.ticks.rejected`` from Kafka into the
database, in batches.

Each batch is written in one transaction together with the group's offsets (kept per Kafka
cluster), and committed on Kafka only after that: a writer killed at any moment and started
again stores every tick once and every candle in its highest revision. Several writers of one
group (``--group``) split the partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import psycopg

from mdp.cluster_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_kafka_options,
    kafka_settings,
    say,
    stop_on_signals,
)
from mdp.common_options import add_database_option, database_failure
from storage import PostgresStore, SchemaNotReadyError
from storage.writer import DEFAULT_GROUP, StorageWriter
from streams.kafka.bus import KafkaBus
from streams.kafka.retry import BrokerUnavailableError
from streams.kafka.settings import KafkaSettings

_NAME = "mdp writer"


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "writer",
        help="store ticks, candles and rejects from Kafka in the database (cluster mode)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_options(parser)
    add_database_option(parser, "the command refuses to start")
    parser.add_argument("--group", default=DEFAULT_GROUP, help=f"group (default {DEFAULT_GROUP})")
    parser.add_argument(
        "--batch", type=int, default=2000, metavar="N", help="most records per write (2000)"
    )
    parser.add_argument("--migrate", action="store_true", help="bring the schema up to date first")
    parser.add_argument(
        "--status-every", type=float, default=10.0, metavar="SECONDS", help="status line period"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tell = say(_NAME)
    try:
        settings = kafka_settings(args, f"mdp-writer-{args.group}")
        if not args.database_url:
            raise ValueError("give --database-url (or set DATABASE_URL)")
        if args.batch < 1:
            raise ValueError("--batch must be positive")
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_write(args, settings))
    except (BrokerUnavailableError, SchemaNotReadyError) as exc:
        tell(f"error: {exc}")
        return EXIT_FAILED
    except psycopg.Error as exc:
        tell(f"error: {database_failure(args.database_url, exc)}")
        return EXIT_FAILED
    return 0


async def _write(args: argparse.Namespace, settings: KafkaSettings) -> None:
    tell = say(_NAME)
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with (
        PostgresStore.open(args.database_url.reveal(), migrate=args.migrate) as store,
        KafkaBus(settings, create_topics=False, say=tell) as bus,
    ):
        writer = StorageWriter(bus, store, group=args.group, max_records=args.batch)
        writing = asyncio.create_task(writer.run())
        stopping = asyncio.create_task(stop.wait())
        tell(f"writing group {args.group} of cluster {bus.cluster_id}")
        while not writing.done():
            await asyncio.wait([writing, stopping], timeout=args.status_every)
            s = writer.stats
            tell(
                f"stored {s.ticks:,} ticks, {s.candles:,} candle updates,"
                f" {s.rejections:,} rejects in {s.writes:,} writes"
            )
            if stopping.done():
                writer.stop()
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        writing.result()
