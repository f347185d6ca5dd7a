"""The venue runtime: stale feeds, refused subscriptions, unreachable venues, slow consumers,
clean stops and the checks made when a feed is built."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from core.gaps import FeedGap, GapReason
from core.ticks import TickBatch
from ingest.venues.base import VenueProtocol
from ingest.venues.binance import BinanceSpot
from ingest.venues.coinbase import CoinbaseExchange
from ingest.venues.kraken import KrakenSpot
from ingest.venues.runtime import VenueEvent, VenueFeed, VenueSettings
from machine import free_port
from tests.ingest.venues.fakes.binance import BinanceScript
from tests.ingest.venues.fakes.kraken import KrakenScript
from tests.ingest.venues.fakes.server import FakeVenue, Faults
from tests.ingest.venues.harness import KRAKEN, run_feed, settings, trade_ids_per_frame

WAIT = 10.0
QUIET = 1.2
"""How long (seconds) a test venue stays silent while WebSocket pings go every 0.1 s."""


async def collect(feed: VenueFeed, into: list[VenueEvent]) -> None:
    async for event in feed.events():
        into.append(event)


async def test_a_venue_gone_silent_is_dropped_as_stale_and_the_feed_reconnects(
    shared_data: Path,
) -> None:
    script = KrakenScript.from_file(shared_data)
    stall = script.trade_frames()[40]
    run = await run_feed(KRAKEN, script, Faults(stall_after={stall}), stale_after=0.3)
    assert run.connections == 2
    assert "stale feed" in (run.counters.last_error or "")
    (gap,) = run.gaps
    assert gap.reason is GapReason.DISCONNECTED
    ids = trade_ids_per_frame(KRAKEN, script.frames())
    last_before = max(i for frame in ids[: stall + 1] for i in frame)
    assert f"continue across it ({last_before}, {last_before + 1})" in gap.detail
    assert len({t.trade_id for t in run.ticks()}) == len(run.ticks()) == 471


@pytest.mark.parametrize(
    ("protocol", "symbol", "stale_after", "expected"),
    [
        (BinanceSpot, "BTCUSDT", None, None),  # no heartbeats: silence proves nothing
        (CoinbaseExchange, "BTC-USD", None, 5.0),
        (KrakenSpot, "BTC/USD", None, 5.0),
        (BinanceSpot, "BTCUSDT", 30.0, 30.0),  # e.g. a symbol known to trade every second
        (KrakenSpot, "BTC/USD", 0.0, None),  # off: only the WebSocket pings decide
    ],
)
def test_each_venue_has_its_own_stale_feed_default_which_the_settings_override(
    protocol: Callable[[], VenueProtocol],
    symbol: str,
    stale_after: float | None,
    expected: float | None,
) -> None:
    feed = VenueFeed(protocol(), [symbol], VenueSettings(stale_after=stale_after))
    assert feed.stale_after == expected


async def test_a_quiet_binance_symbol_is_not_taken_for_a_dead_feed(shared_data: Path) -> None:
    """Binance sends nothing while a symbol does not trade, and no heartbeat: the feed keeps
    the connection as long as it answers WebSocket pings, instead of dropping it as stale."""
    events: list[VenueEvent] = []
    script = BinanceScript.from_file(shared_data)
    async with FakeVenue(script, Faults(stall_after={10}), subscribe_first=False) as venue:
        pings = settings(venue.url, ping_interval=0.1, ping_timeout=0.5)
        feed = VenueFeed(BinanceSpot(), ["BTCUSDT"], pings)
        task = asyncio.create_task(collect(feed, events))
        await asyncio.sleep(QUIET)  # many ping rounds, not a frame
        feed.stop()
        await asyncio.wait_for(task, WAIT)
    assert (venue.connections, feed.counters.reconnects) == (1, 0)
    assert not any(isinstance(e, FeedGap) for e in events)
    assert feed.counters.ticks == 11


async def test_a_stale_feed_timeout_set_for_binance_drops_a_silent_connection(
    shared_data: Path,
) -> None:
    events: list[VenueEvent] = []
    script = BinanceScript.from_file(shared_data)
    async with FakeVenue(script, Faults(stall_after={10}), subscribe_first=False) as venue:
        feed = VenueFeed(BinanceSpot(), ["BTCUSDT"], settings(venue.url, stale_after=0.3))
        task = asyncio.create_task(collect(feed, events))
        while feed.counters.reconnects < 1:
            await asyncio.sleep(0.01)
        feed.stop()
        await asyncio.wait_for(task, WAIT)
    assert "no frame for 0.3 s (stale feed)" in (feed.counters.last_error or "")


async def test_a_refused_subscription_is_retried_with_backoff_and_counted(
    shared_data: Path,
) -> None:
    events: list[VenueEvent] = []
    async with FakeVenue(KrakenScript.from_file(shared_data)) as venue:
        feed = VenueFeed(KrakenSpot(), ["ETH/USD"], settings(venue.url))
        task = asyncio.create_task(collect(feed, events))
        while feed.counters.reconnects < 3:
            await asyncio.sleep(0.01)
        feed.stop()
        await asyncio.wait_for(task, WAIT)
    assert feed.counters.venue_errors >= 3
    assert "refused to subscribe ETH/USD" in (feed.counters.last_error or "")
    assert not any(isinstance(e, TickBatch) for e in events)
    (gap,) = events  # the feed was never up: one outage, closed by the stop
    assert isinstance(gap, FeedGap)
    assert gap.instrument == "KRAKEN:ETH/USD"
    assert gap.reason is GapReason.DISCONNECTED


async def test_an_unreachable_venue_is_retried_until_the_feed_is_stopped() -> None:
    draws: list[float] = []

    def rng() -> float:
        draws.append(1.0)
        return 1.0

    url = f"ws://127.0.0.1:{free_port()}"
    feed = VenueFeed(KrakenSpot(), ["BTC/USD"], settings(url, backoff_max=0.04), rng=rng)
    events: list[VenueEvent] = []
    task = asyncio.create_task(collect(feed, events))
    while feed.counters.reconnects < 4:
        await asyncio.sleep(0.01)
    feed.stop()
    await asyncio.wait_for(task, WAIT)
    assert events == []  # never connected: nothing could be missed, so no gap
    assert feed.counters.connects == 0
    assert "ConnectionRefusedError" in (feed.counters.last_error or "")
    assert len(draws) == feed.counters.reconnects


async def test_a_slow_consumer_holds_the_feed_back_instead_of_queueing_without_bound(
    shared_data: Path,
) -> None:
    async with FakeVenue(KrakenScript.from_file(shared_data)) as venue:
        feed = VenueFeed(
            KrakenSpot(), ["BTC/USDT"], settings(venue.url, queue_bound=2, batch_max=1)
        )
        events = feed.events()
        first = await asyncio.wait_for(anext(events), WAIT)
        assert isinstance(first, TickBatch)
        await asyncio.sleep(0.3)  # the consumer dawdles; the venue has sent everything
        assert feed.counters.frames < 10  # a queue of 2 and one frame's events, not 280 frames
        feed.stop()
        rest = [event async for event in events]
    assert len(rest) >= 2
    assert feed.counters.frames < 280


async def test_stop_before_iterating_ends_the_feed_without_connecting() -> None:
    feed = VenueFeed(KrakenSpot(), ["BTC/USD"], settings(f"ws://127.0.0.1:{free_port()}"))
    feed.stop()
    assert [event async for event in feed.events()] == []
    assert feed.counters.connects == 0
    assert feed.counters.reconnects == 0


async def test_the_events_of_a_feed_can_be_iterated_only_once() -> None:
    feed = VenueFeed(KrakenSpot(), ["BTC/USD"], settings(f"ws://127.0.0.1:{free_port()}"))
    feed.stop()
    assert [event async for event in feed.events()] == []
    with pytest.raises(RuntimeError, match="only once"):
        await anext(feed.events())


def test_a_feed_is_refused_at_once_for_a_bad_symbol_url_or_no_symbols() -> None:
    with pytest.raises(ValueError, match="BTC/USD"):
        VenueFeed(KrakenSpot(), ["BTCUSD"])
    with pytest.raises(ValueError, match="at least one symbol"):
        VenueFeed(KrakenSpot(), [])
    with pytest.raises(ValueError, match="url"):
        VenueFeed(KrakenSpot(), ["BTC/USD"], VenueSettings(url="ws://"))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"stale_after": -1.0}, "stale_after must be a number >= 0"),
        ({"ping_interval": -1.0}, "ping_interval"),
        ({"gap_grace": -0.1}, "gap_grace must be a number >= 0"),
        ({"batch_max": 0}, "batch_max"),
        ({"batch_max": 2.5}, "batch_max must be an integer"),
        ({"queue_bound": float("inf")}, "queue_bound"),
        ({"backoff_initial": 5.0, "backoff_max": 1.0}, "backoff_max must be at least"),
        ({"url": "http://example.invalid"}, "url must start with ws:// or wss://"),
    ],
)
def test_settings_refuse_nonsense_naming_the_setting(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        VenueSettings(**changes)  # type: ignore[arg-type]
