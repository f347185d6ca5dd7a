"""Running a venue feed against a fake venue, and building candles from what it yields.

One :class:`VenueCase` per venue says how to build its protocol, its fake venue and the ticks
a clean replay must give; the end-to-end tests run the same checks over every case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import msgspec

from core.candles import Candle
from core.engine import CandleEngine, EmptyPolicy, EngineConfig, EngineOutput
from core.gaps import FeedGap
from core.intervals import parse_intervals
from core.ticks import Tick, TickBatch
from ingest.files.reader import read_ticks
from ingest.venues.base import VenueProtocol
from ingest.venues.binance import BinanceSpot
from ingest.venues.coinbase import CoinbaseExchange
from ingest.venues.kraken import KrakenSpot
from ingest.venues.runtime import FeedCounters, VenueEvent, VenueFeed, VenueReject, VenueSettings
from tests.ingest.venues.fakes.binance import BinanceScript
from tests.ingest.venues.fakes.binance import file_ticks as binance_file_ticks
from tests.ingest.venues.fakes.coinbase import CoinbaseScript
from tests.ingest.venues.fakes.kraken import KRAKEN_TRADES, KrakenScript
from tests.ingest.venues.fakes.server import FakeVenue, Faults, VenueScript

WAIT = 30.0
"""The most a whole replay may take (seconds); a hang fails instead of blocking the suite."""
QUIET = 0.4
"""A feed that received no frame for this long after the replay ended has had everything."""
DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class VenueCase:
    """How to run one venue end to end."""

    name: str
    protocol: Callable[[], VenueProtocol]
    symbols: tuple[str, ...]
    script: Callable[[Path], VenueScript]
    reference: Callable[[Path], list[Tick]]
    """The ticks a clean replay must give (``ts_recv`` aside), read from the file directly."""
    subscribe_first: bool = True
    keepalive: str | None = None
    """The venue's heartbeat frame, sent by the fake while the replay is over."""

    def __str__(self) -> str:
        return self.name


def _kraken_reference(shared_data: Path) -> list[Tick]:
    (batch,) = read_ticks(shared_data / KRAKEN_TRADES, instrument="KRAKEN:BTC/USDT")
    return batch.ticks()


def _binance_reference(shared_data: Path) -> list[Tick]:
    """The Binance sample as the live stream sends it: trade times in whole milliseconds."""
    return [
        msgspec.structs.replace(tick, ts_event=tick.ts_event - tick.ts_event % 1_000_000)
        for tick in binance_file_ticks(shared_data)
    ]


def _coinbase_reference(shared_data: Path) -> list[Tick]:
    """The Binance sample as Coinbase matches: one trade per match, product BTC-USD."""
    return [
        msgspec.structs.replace(tick, instrument="COINBASE:BTC-USD", trades=1)
        for tick in binance_file_ticks(shared_data)
    ]


KRAKEN = VenueCase(
    "kraken",
    KrakenSpot,
    ("BTC/USDT",),
    KrakenScript.from_file,
    _kraken_reference,
    keepalive='{"channel":"heartbeat"}',
)
BINANCE = VenueCase(
    "binance",
    BinanceSpot,
    ("BTCUSDT",),
    BinanceScript.from_file,
    _binance_reference,
    subscribe_first=False,
)
COINBASE = VenueCase(
    "coinbase", CoinbaseExchange, ("BTC-USD",), CoinbaseScript.from_file, _coinbase_reference
)
CASES = (KRAKEN, BINANCE, COINBASE)


def settings(url: str, **changes: float) -> VenueSettings:
    """Settings for tests: quick reconnects, a short grace, small batches (and each venue's
    own stale-feed timeout)."""
    options: dict[str, float] = {
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "gap_grace": 0.2,
        "batch_wait": 0.01,
        "close_timeout": 0.2,
    }
    options.update(changes)
    return VenueSettings(url=url, **options)  # type: ignore[arg-type]


@dataclass(slots=True)
class Run:
    """Everything one feed yielded, in order, and its counters at the end."""

    events: list[VenueEvent] = field(default_factory=list)
    counters: FeedCounters = field(default_factory=FeedCounters)
    connections: int = 0

    @property
    def batches(self) -> list[TickBatch]:
        return [e for e in self.events if isinstance(e, TickBatch)]

    @property
    def gaps(self) -> list[FeedGap]:
        return [e for e in self.events if isinstance(e, FeedGap)]

    @property
    def rejects(self) -> list[VenueReject]:
        return [e for e in self.events if isinstance(e, VenueReject)]

    def ticks(self) -> list[Tick]:
        return [tick for batch in self.batches for tick in batch.ticks()]


async def run_feed(
    case: VenueCase, script: VenueScript, faults: Faults | None = None, **changes: float
) -> Run:
    """Serve ``script`` with ``faults`` and feed from it until the replay is over, its last
    trade has come through and the feed has yielded nothing for :data:`QUIET` (gaps wait for
    their grace); then stop the feed and return what it yielded."""
    run = Run()
    frames = script.frames()
    last_trade = max(trade_ids_per_frame(case, frames)[-_last_trade_frame(case, frames)])
    venue = FakeVenue(
        script, faults, subscribe_first=case.subscribe_first, keepalive=case.keepalive
    )
    async with venue:
        feed = VenueFeed(case.protocol(), case.symbols, settings(venue.url, **changes))
        arrived = asyncio.Event()

        async def collect() -> None:
            async for event in feed.events():
                run.events.append(event)
                if isinstance(event, TickBatch) and last_trade in event.trade_id:
                    arrived.set()

        collecting = asyncio.create_task(collect())
        try:
            await asyncio.wait_for(_replayed(venue, arrived, run), WAIT)
        finally:
            feed.stop()
            await asyncio.wait_for(collecting, WAIT)
        run.counters = feed.counters
        run.connections = venue.connections
    return run


def _last_trade_frame(case: VenueCase, frames: Sequence[str]) -> int:
    """How far from the end (1: the last frame) the last frame carrying trades is."""
    ids = trade_ids_per_frame(case, frames)
    return next(k for k in range(1, len(ids) + 1) if ids[-k])


async def _replayed(venue: FakeVenue, arrived: asyncio.Event, run: Run) -> None:
    await venue.finished.wait()
    await arrived.wait()
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < QUIET:
        await asyncio.sleep(0.05)
        if len(run.events) != seen:
            seen, quiet_since = len(run.events), time.monotonic()


def trade_ids_per_frame(case: VenueCase, frames: Sequence[str]) -> list[list[int]]:
    """The trade ids each frame carries (none for heartbeats and the like)."""
    protocol = case.protocol()
    protocol.connect_url("ws://127.0.0.1:9", case.symbols)
    return [[tick.trade_id for tick in protocol.parse(frame, 1).ticks] for frame in frames]


def trade_frames(case: VenueCase, frames: Sequence[str]) -> list[int]:
    """Indexes of frames carrying trades, whose next frame carries trades too (so that a
    fault placed there touches trades)."""
    ids = trade_ids_per_frame(case, frames)
    return [i for i in range(len(frames) - 1) if ids[i] and ids[i + 1]]


def gap_span(reference: Sequence[Tick], before: list[int], after: list[int]) -> tuple[int, int]:
    """The span a gap must have: from the latest trade seen before it (``before``: trade
    ids) to the first trade after it (``after``), plus one nanosecond."""
    by_id = {tick.trade_id: tick for tick in reference}
    start = max(by_id[trade_id].ts_event for trade_id in before)
    return start, by_id[min(after)].ts_event + 1


# -- candles ----------------------------------------------------------------------------------


def engine_config() -> EngineConfig:
    """One-minute candles, Kraken's ``fill`` rule for Kraken, a long revision horizon (a
    replay arrives much faster than its event time, so gaps come late in event time)."""
    return EngineConfig(
        intervals=parse_intervals(["1m"]),
        empty_by_venue=MappingProxyType({"KRAKEN": EmptyPolicy.FILL}),
        emit_open=False,
        horizon_ns=7 * DAY_NS,
    )


def final_candles(events: Sequence[VenueEvent | TickBatch]) -> dict[int, Candle]:
    """The last version of every candle the engine makes from ``events`` (gaps included)."""
    engine = CandleEngine(engine_config())
    final: dict[int, Candle] = {}

    def keep(output: EngineOutput) -> None:
        for candle in output.candles:
            final[candle.open_time] = candle

    for event in events:
        if isinstance(event, TickBatch):
            keep(engine.feed(event))
        elif isinstance(event, FeedGap):
            keep(engine.mark_gap(event))
    keep(engine.flush())
    return final


def reference_candles(ticks: list[Tick]) -> dict[int, Candle]:
    return final_candles([TickBatch.from_ticks(ticks)])


CandleValues = tuple[object, ...]


def values(candle: Candle) -> CandleValues:
    """What a candle says about the trades (not its revision, status or gap flag)."""
    return (
        candle.open, candle.high, candle.low, candle.close, candle.volume, candle.quote_volume,
        candle.taker_buy_volume, candle.trades, candle.first_trade_id, candle.last_trade_id,
    )  # fmt: skip


def all_values(candles: dict[int, Candle]) -> dict[int, CandleValues]:
    return {open_time: values(candle) for open_time, candle in sorted(candles.items())}
