"""``mdp ingest``: ticks onto Kafka's ``md.ticks``, as micro-batches keyed by instrument.

The feed is a tick file (``--replay FILE``, at ``--speed`` times its event time, 0 as fast as
Kafka takes it), a live venue (``--venue binance --symbols BTCUSDT,ETHUSDT``; ``--venue-url``
points it elsewhere, e.g. at a test server), or else the synthetic market in real time
(``--duration`` seconds, or until Ctrl-C). Batches hold one instrument's ticks (at most
``--batch-ticks``); bad file rows and venue frames go to ``md.ticks.rejected``, and the spans
a venue feed may have missed (disconnects, skipped trade ids) go to ``md.ticks`` as feed gaps
(docs/venues.md). The producer is idempotent with ``acks=all``: a batch counts as sent once
every replica has it. While Kafka is away the feed is held back and each batch tried again
(a batch the producer held ``--request-timeout`` seconds is given up and sent anew), told on
stderr when the outage begins, every 30 s, and when it ends. Clean stop on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterable, Iterator
from typing import Any

from core.ticks import TickBatch
from ingest.files import ReadReport, TickFileError
from ingest.files.reader import read_ticks
from ingest.pacing import paced
from ingest.publisher import FeedEvent, FeedPublisher
from ingest.sources import feed_state, stop_feeding, venue
from ingest.synthetic import SyntheticFeed
from mdp.admin_options import (
    add_admin_options,
    add_readiness_options,
    check_readiness_options,
    ready_when,
)
from mdp.cluster_options import (
    add_kafka_options,
    kafka_settings,
    say,
    stop_on_signals,
)
from mdp.common_options import EXIT_BAD_INPUT, EXIT_FAILED
from mdp.feed_options import (
    add_feed_options,
    check_feed_options,
    instruments_of,
    symbols_of,
    venue_settings,
)
from streams.bus import BusError
from streams.kafka.bus import KafkaBus
from streams.kafka.log_limits import limit_client_logs
from streams.kafka.retry import BrokerUnavailableError
from streams.kafka.settings import DEFAULT_REQUEST_TIMEOUT, KafkaSettings

_NAME = "mdp ingest"
_TEN_YEARS = 10 * 365 * 86400.0


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "ingest",
        help="publish a tick file, a live venue or the synthetic market to Kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_options(parser)
    parser.add_argument(
        "--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="a batch Kafka has not taken within this is given up and sent again (default"
        f" {DEFAULT_REQUEST_TIMEOUT:g})",
    )  # fmt: skip
    feed = add_feed_options(parser)
    feed.add_argument(
        "--duration", type=float, help="synthetic: seconds of ticks (default: until stopped)"
    )
    feed.add_argument(
        "--batch-ticks",
        type=int,
        default=5000,
        metavar="N",
        help="the most ticks in one md.ticks message (default 5000, ~285 kB)",
    )
    add_admin_options(parser)
    add_readiness_options(parser, lag=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tell = say(_NAME)
    try:
        if args.request_timeout <= 0:
            raise ValueError("--request-timeout must be positive")
        settings = dataclasses.replace(
            kafka_settings(args, "mdp-ingest"), request_timeout=args.request_timeout
        )
        check_feed_options(args)
        if not 1 <= args.batch_ticks <= 15_000:
            raise ValueError("--batch-ticks must be within 1..15000 (a message holds ~1 MiB)")
        if args.duration is not None and args.duration <= 0:
            raise ValueError("--duration must be positive")
        check_readiness_options(args)
        return asyncio.run(_ingest(args, settings))
    except (ValueError, TickFileError) as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    except (BrokerUnavailableError, BusError) as exc:  # BusError: a closed bus, a record too large
        tell(f"error: {exc}")
        return EXIT_FAILED


async def _ingest(args: argparse.Namespace, settings: KafkaSettings) -> int:
    tell = say(_NAME)
    stop = asyncio.Event()
    stop_on_signals(stop)
    publisher: FeedPublisher | None = None
    source: AsyncIterable[FeedEvent] | None = None

    def bus_check() -> str | None:
        return "starting" if publisher is None else publisher.bus_state(args.ready_stale)

    def feed_check() -> str | None:
        if source is None:
            return "starting"
        return feed_state(source)

    ready = ready_when({"bus": bus_check, "feed": feed_check})
    limit_client_logs()  # a broker outage: the clients' errors once, then every 30 s
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(ready)
        bus = await stack.enter_async_context(KafkaBus(settings, create_topics=False, say=tell))
        publisher = FeedPublisher(bus, say=tell)
        source = _source(args, publisher)
        started = time.monotonic()
        feeding = asyncio.create_task(publisher.run(source))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([feeding, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await stop_feeding(feeding, source)
        stats = publisher.stats
        seconds = max(time.monotonic() - started, 1e-9)
        tell(
            f"{stats.ticks:,} ticks in {stats.batches:,} batches in {seconds:.1f}s"
            f" ({stats.ticks / seconds:,.0f} ticks/s); {stats.bad_rows:,} bad rows or frames"
            f" rejected; {stats.gaps:,} feed gaps" + ("" if stats.finished else " (stopped)")
        )
    return 0


def _source(args: argparse.Namespace, publisher: FeedPublisher) -> AsyncIterable[FeedEvent]:
    if args.venue is not None:
        settings = dataclasses.replace(venue_settings(args), batch_max=args.batch_ticks)
        return venue(args.venue, symbols_of(args), settings, publisher.reject)
    speed = args.speed or None
    if args.replay is not None:
        report = ReadReport(on_bad=publisher.bad_row)
        batches = read_ticks(
            args.replay, args.format, args.instrument, report, chunk_rows=args.batch_ticks
        )
        return paced(batches, speed)
    instruments = instruments_of(args)
    now = time.time_ns()
    feed = SyntheticFeed(
        instruments=instruments,
        rate=args.rate,
        duration=args.duration or _TEN_YEARS,
        start_ns=now,
        seed=args.seed,
        batch_size=args.batch_ticks
        if speed is None
        else max(1, min(args.batch_ticks, round(args.rate / 10) or 1)),
        first_trade_id=now // 1000,
    )
    return paced(_bounded(feed.batches(), args.batch_ticks), speed)


def _bounded(batches: Iterator[TickBatch], most: int) -> Iterator[TickBatch]:
    for batch in batches:
        for start in range(0, len(batch), most):
            yield batch if len(batch) <= most else batch.take(slice(start, start + most))
