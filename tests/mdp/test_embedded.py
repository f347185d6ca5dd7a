"""The embedded platform on a real PostgreSQL: replays, a live venue feed with faults, a
writer crash, bad input."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from core import codecs
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.gaps import GapReason
from core.intervals import Interval, parse_intervals
from core.secrets import DatabaseUrl
from core.topics import TICKS
from ingest.files.reader import read_ticks
from ingest.pacing import received_at
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from storage import MarketDataStore, PostgresStore, WriteReport
from storage.writer import StorageWriter
from streams.engine_runner import EngineRunner
from streams.memory import MemoryBus
from tests.ingest.venues.fakes.kraken import SNAPSHOT_DEPTH, SYMBOL, KrakenScript
from tests.ingest.venues.fakes.server import FakeVenue, Faults
from tests.ingest.venues.harness import KRAKEN as KRAKEN_CASE
from tests.ingest.venues.harness import gap_span, trade_frames, trade_ids_per_frame

WAIT = 30.0
KRAKEN = Path("kraken-xbtusdt-2025-11-10")
MINUTE = Interval.parse("1m")
LAST_MINUTE = 1762807740 * 1_000_000_000  # 20:49 UTC, Kraken's last official row
FOREVER = 2**62


def engine_config() -> EngineConfig:
    return EngineConfig(
        intervals=parse_intervals(["1m"]),
        empty_by_venue=MappingProxyType({"KRAKEN": EmptyPolicy.FILL}),
    )


def ahead(seconds: float) -> Callable[[], int]:
    """A wall clock ``seconds`` ahead: replayed instruments look idle, so their candles close."""
    return lambda: time.time_ns() + round(seconds * 1e9)


def official(shared_data: Path) -> dict[int, tuple[Decimal, ...]]:
    rows = json.loads((shared_data / KRAKEN / "ohlc-1m.json").read_text())["result"]["XBTUSDT"]
    return {
        t * 1_000_000_000: (Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v), Decimal(n))
        for t, o, h, lo, c, _, v, n in rows
    }


async def stored_kraken_minutes(store: MarketDataStore) -> dict[int, tuple[Decimal, ...]]:
    candles = await store.candles("KRAKEN:XBTUSDT", MINUTE, 0, FOREVER)
    return {
        c.open_time: (c.open, c.high, c.low, c.close, c.volume, Decimal(c.trades))
        for c in candles
        if c.status != "open"
    }


async def wait_for(
    condition: Callable[[], object],
    timeout: float = WAIT,
    state: Callable[[], str] = lambda: "",
) -> None:
    """Until ``condition`` holds; on a timeout, the failure says ``state()`` (where things
    stood)."""
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[misc]
        assert time.monotonic() < deadline, f"timed out {state()}"
        await asyncio.sleep(0.1)


def tick_rows(url: str) -> tuple[int, int]:
    """All tick rows, and the distinct (instrument, trade id) among them."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (instrument, trade_id)) FROM ticks"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


async def test_replaying_kraken_trades_stores_kraken_official_candles(
    migrated_database: str, shared_data: Path
) -> None:
    settings = PlatformSettings(
        database_url=DatabaseUrl(migrated_database),
        feed=FeedSettings(replay=shared_data / KRAKEN / "trades.json", speed=None),
        engine=engine_config(),
        http_port=0,
        ws_port=0,
        status_every=0.5,
    )
    out = io.StringIO()
    platform = Platform(settings, out, clock=ahead(60))
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    expected = official(shared_data)
    async with PostgresStore.open(migrated_database) as store:

        async def complete() -> bool:
            return LAST_MINUTE in await stored_kraken_minutes(store)

        await wait_for(complete)
        stop.set()
        await asyncio.wait_for(running, WAIT)
        stored = await stored_kraken_minutes(store)
    assert {t: stored[t] for t in expected} == expected
    assert tick_rows(migrated_database) == (471, 471)
    assert "stopped cleanly" in out.getvalue()
    # the storage mode and why, on a line of its own (say, how to enable TimescaleDB)
    assert re.search(r"^storage: (plain|timescale) mode \(.+\)$", out.getvalue(), re.MULTILINE)


class Clock:
    """The wall clock, moved ahead on demand: once a live replay is over, a jump makes its
    instrument look idle, so that its last candles close."""

    def __init__(self) -> None:
        self.ahead_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.ahead_ns


async def test_a_live_kraken_feed_through_a_drop_and_repeats_stores_krakens_official_candles(
    migrated_database: str, shared_data: Path
) -> None:
    """``mdp up --venue kraken`` against a fake Kraken that drops the connection once and sends
    frames twice: the stored minutes are Kraken's own, every trade is stored once, the status
    reports the one feed gap, and the candles over it are flagged."""
    script = KrakenScript.from_file(shared_data)
    frames = script.frames()
    usable = trade_frames(KRAKEN_CASE, frames)
    drop = usable[len(usable) // 2]
    repeats = {usable[len(usable) // 4], usable[len(usable) * 3 // 4]}
    instrument = f"KRAKEN:{SYMBOL}"
    clock = Clock()
    out = io.StringIO()
    stop = asyncio.Event()
    faults = Faults(drop_after={drop}, repeat=repeats)
    async with FakeVenue(script, faults, keepalive='{"channel":"heartbeat"}') as venue:
        feed = FeedSettings(venue="kraken", symbols=(SYMBOL,), venue_url=venue.url)
        settings = PlatformSettings(
            database_url=DatabaseUrl(migrated_database),
            feed=feed,
            engine=engine_config(),
            http_port=0,
            ws_port=0,
            status_every=0.2,
        )
        platform = Platform(settings, out, clock=clock)
        running = asyncio.create_task(platform.run(stop))
        async with PostgresStore.open(migrated_database) as store:

            async def replayed() -> bool:
                engine = platform.engine
                return venue.finished.is_set() and engine is not None and engine.stats.ticks >= 471

            async def complete() -> bool:
                return LAST_MINUTE in await stored_minutes(store, instrument)

            await wait_for(replayed)
            clock.ahead_ns = 120 * 1_000_000_000
            await wait_for(complete)
            await asyncio.sleep(0.5)  # a status line after the last candles
            stop.set()
            await asyncio.wait_for(running, WAIT)
            stored = await stored_minutes(store, instrument)
            candles = await store.candles(instrument, MINUTE, 0, FOREVER)
            gaps = await store.gaps(instrument, 0, FOREVER)
    expected = official(shared_data)
    assert {t: stored[t] for t in expected} == expected
    assert tick_rows(migrated_database) == (471, 471)
    assert venue.connections == 2
    assert platform.feed is not None
    assert platform.engine is not None
    assert (platform.feed.stats.gaps, platform.engine.stats.gaps) == (1, 1)
    assert (platform.feed.stats.ticks, platform.engine.stats.ticks) == (471, 471)  # repeats
    assert platform.engine.stats.duplicates == 0  # ... dropped by the feed, before the bus
    assert "| feed gaps 1" in out.getvalue().splitlines()[-2]
    ids = trade_ids_per_frame(KRAKEN_CASE, frames)
    before = [i for frame in ids[: drop + 1] for i in frame]
    after = [i for frame in ids[drop + 1 :] for i in frame]
    (reference,) = read_ticks(shared_data / KRAKEN / "trades.json")
    start, end = gap_span(reference.ticks(), before, after)
    (gap,) = gaps
    assert (gap.start_ns, gap.end_ns, gap.reason) == (start, end, GapReason.DISCONNECTED)
    flagged = {c.open_time for c in candles if c.gap}
    assert flagged == {c.open_time for c in candles if c.open_time < end and start < c.close_time}
    assert flagged


class FirstPart:
    """The fake Kraken's script cut after frame ``end - 1``: the platform's first run."""

    def __init__(self, script: KrakenScript, end: int) -> None:
        self.script = script
        self.end = end

    def frames(self) -> list[str]:
        return self.script.frames()[: self.end]

    def replies(self, client_frame: str) -> list[str]:
        return self.script.replies(client_frame)

    def snapshot(self, sent: int) -> list[str]:
        return self.script.snapshot(sent)


async def run_kraken_until_replayed(
    database: str, venue: FakeVenue, clock: Clock, new_trades: int, *, close: bool
) -> Platform:
    """``mdp up --venue kraken`` on ``venue`` until it has replayed and the engine has taken
    ``new_trades``; with ``close``, the clock then jumps so that the last minute closes."""
    feed = FeedSettings(venue="kraken", symbols=(SYMBOL,), venue_url=venue.url)
    settings = PlatformSettings(
        database_url=DatabaseUrl(database),
        feed=feed,
        engine=engine_config(),
        http_port=0,
        ws_port=0,
        status_every=0.2,
    )
    platform = Platform(settings, io.StringIO(), clock=clock)
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    async with PostgresStore.open(database) as store:

        async def replayed() -> bool:
            engine = platform.engine
            return (
                venue.finished.is_set() and engine is not None and engine.stats.ticks >= new_trades
            )

        async def complete() -> bool:
            return LAST_MINUTE in await stored_minutes(store, f"KRAKEN:{SYMBOL}")

        def state() -> str:
            engine, feed = platform.engine, platform.feed
            return (
                f"(venue: {venue.connections} connections, finished {venue.finished.is_set()},"
                f" at frame {venue.position}; feed: {feed.stats if feed else None}; engine:"
                f" {engine.stats.ticks if engine else None} of {new_trades} ticks)"
            )

        await wait_for(replayed, state=state)
        if close:
            clock.ahead_ns = 120 * 1_000_000_000
            await wait_for(complete, state=state)
    stop.set()
    await asyncio.wait_for(running, WAIT)
    return platform


@pytest.mark.parametrize("lost", [False, True], ids=["snapshot-bridges", "trades-lost"])
async def test_a_live_kraken_feed_stopped_and_started_again_resumes_from_the_stored_trades(
    migrated_database: str, shared_data: Path, lost: bool
) -> None:
    """``mdp up --venue kraken`` runs for a third of the trades and is stopped; started again,
    the venue resumes later (its snapshot repeats stored trades, or trades were made in
    between that its snapshot no longer reaches). The restart is one stored DISCONNECTED gap
    from the last stored trade to the first new one, with its candles flagged; no trade is
    stored or counted twice, and the candles away from lost trades are Kraken's own."""
    script = KrakenScript.from_file(shared_data)
    frames = script.frames()
    ids = trade_ids_per_frame(KRAKEN_CASE, frames)
    stop_at = trade_frames(KRAKEN_CASE, frames)[len(frames) // 3] + 1
    resume_at = stop_at
    while lost and sum(len(i) for i in ids[stop_at:resume_at]) < SNAPSHOT_DEPTH + 20:
        resume_at += 1
    stored_before = [i for frame in ids[:stop_at] for i in frame]
    snapshot = [i for frame in ids[:resume_at] for i in frame][-SNAPSHOT_DEPTH:]
    sent_after = snapshot + [i for frame in ids[resume_at:] for i in frame]
    new = [i for i in sent_after if i > max(stored_before)]
    missing = sorted(set().union(*map(set, ids)) - set(stored_before) - set(new))
    assert bool(missing) == lost
    assert lost or len([i for i in snapshot if i in stored_before]) == SNAPSHOT_DEPTH
    clock = Clock()
    keepalive = '{"channel":"heartbeat"}'
    async with FakeVenue(FirstPart(script, stop_at), keepalive=keepalive) as venue:
        first = await run_kraken_until_replayed(
            migrated_database, venue, clock, len(stored_before), close=False
        )
    assert first.feed is not None
    assert (first.feed.stats.ticks, first.feed.stats.gaps) == (len(stored_before), 0)
    async with FakeVenue(script, keepalive=keepalive) as venue:
        venue.position = resume_at  # the venue went on while the platform was stopped
        second = await run_kraken_until_replayed(
            migrated_database, venue, clock, len(new), close=True
        )
    assert venue.connections == 1
    assert second.feed is not None
    assert second.engine is not None
    assert (second.feed.stats.ticks, second.feed.stats.gaps) == (len(new), 1)
    assert (second.engine.stats.ticks, second.engine.stats.duplicates) == (len(new), 0)
    assert tick_rows(migrated_database) == (471 - len(missing), 471 - len(missing))

    instrument = f"KRAKEN:{SYMBOL}"
    async with PostgresStore.open(migrated_database) as store:
        stored = await stored_minutes(store, instrument)
        candles = await store.candles(instrument, MINUTE, 0, FOREVER)
        (gap,) = await store.gaps(instrument, 0, FOREVER)
    (reference,) = read_ticks(shared_data / KRAKEN / "trades.json")
    start, end = gap_span(reference.ticks(), stored_before, new)
    assert (gap.start_ns, gap.end_ns, gap.reason) == (start, end, GapReason.DISCONNECTED)
    assert gap.detail.startswith(
        f"the platform was stopped after the stored trade id {max(stored_before)}; "
    )
    if missing:
        assert gap.detail.endswith(f"trade ids {missing[0]}..{missing[-1]} missing")
        assert missing == list(range(missing[0], missing[-1] + 1))
    else:
        assert gap.detail.endswith(
            f"trade ids continue across it ({max(stored_before)}, {min(new)})"
        )
    flagged = {c.open_time for c in candles if c.gap}
    assert flagged == {c.open_time for c in candles if c.open_time < end and start < c.close_time}
    assert flagged
    expected = official(shared_data)
    kept = {t for t in expected if not (missing and t in flagged)}
    assert {t: stored[t] for t in kept} == {t: expected[t] for t in kept}
    assert len(kept) > len(expected) // 2


async def stored_minutes(store: MarketDataStore, instrument: str) -> dict[int, tuple[Decimal, ...]]:
    candles = await store.candles(instrument, MINUTE, 0, FOREVER)
    return {
        c.open_time: (c.open, c.high, c.low, c.close, c.volume, Decimal(c.trades))
        for c in candles
        if c.status != "open"
    }


class CrashAfterWrite:
    """A store whose writer process 'dies' right after its n-th write is committed."""

    def __init__(self, store: MarketDataStore, writes: int) -> None:
        self.store = store
        self.left = writes

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def write(self, *args: object, **kwargs: object) -> WriteReport:
        report = await self.store.write(*args, **kwargs)  # type: ignore[arg-type]
        self.left -= 1
        if self.left == 0:
            raise ConnectionAbortedError("the writer died after storing, before committing")
        return report


async def test_a_writer_killed_between_storing_and_committing_loses_and_doubles_nothing(
    migrated_database: str, shared_data: Path
) -> None:
    (whole,) = list(read_ticks(shared_data / KRAKEN / "trades.json"))
    now = time.time_ns()
    async with MemoryBus(partitions=2) as bus, PostgresStore.open(migrated_database) as store:
        engine = EngineRunner(bus, CandleEngine(engine_config()), clock=ahead(60))
        crashing = StorageWriter(bus, CrashAfterWrite(store, 3), max_records=5)  # type: ignore[arg-type]
        engine_task = asyncio.create_task(engine.run())
        crashing_task = asyncio.create_task(crashing.run())
        await asyncio.sleep(0)
        ticks = bus.topic(TICKS)
        for start in range(0, len(whole), 10):
            batch = received_at(whole.take(slice(start, start + 10)), now)
            await ticks.publish(b"KRAKEN:XBTUSDT", codecs.encode_tick_batch(batch))
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(crashing_task, WAIT)

        restarted = StorageWriter(bus, store, max_records=5)
        restarted_task = asyncio.create_task(restarted.run())

        async def complete() -> bool:
            return LAST_MINUTE in await stored_kraken_minutes(store)

        await wait_for(complete)
        engine.stop()
        await asyncio.wait_for(engine_task, WAIT)
        restarted.drain()
        await asyncio.wait_for(restarted_task, WAIT)
        stored = await stored_kraken_minutes(store)
    assert restarted.stats.skipped > 0  # it did meet records the crashed writer had stored
    expected = official(shared_data)
    assert {t: stored[t] for t in expected} == expected
    assert tick_rows(migrated_database) == (471, 471)


async def test_bad_rows_of_a_replay_end_in_the_rejected_table_and_the_rest_flows(
    migrated_database: str, tmp_path: Path
) -> None:
    """A NUL byte (which PostgreSQL refuses in text) and a field of 3 MB (a reject over the
    bus's 1 MiB, uncut) among them: the writer, and the platform, go on."""
    path = tmp_path / "ticks.csv"
    path.write_text(
        "instrument,trade_id,price,size,side,ts_event\n"
        "TEST:ABC,1,100.5,2,buy,1767225600000000000\n"
        "TEST:ABC,2,-3,2,buy,1767225601000000000\n"
        "TEST:ABC,3,101,1,sideways,1767225602000000000\n"
        "TEST:ABC,4,102,1,sell,1767225603000000000\n"
        "TEST:ABC,5,9\x0042.5,1,sell,1767225604000000000\n"
        f"TEST:ABC,6,{'9' * 3_000_000}x,1,sell,1767225605000000000\n"
    )
    settings = PlatformSettings(
        database_url=DatabaseUrl(migrated_database),
        feed=FeedSettings(replay=path, speed=None),
        engine=engine_config(),
        http_port=0,
        ws_port=0,
    )
    platform = Platform(settings, io.StringIO(), clock=ahead(120))
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    async with PostgresStore.open(migrated_database) as store:

        async def complete() -> bool:
            closed = await store.candles("TEST:ABC", MINUTE, 0, FOREVER)
            return len(await store.rejections()) == 4 and any(c.status != "open" for c in closed)

        await wait_for(complete)
        stop.set()
        await asyncio.wait_for(running, WAIT)
        rejections = {r.detail[-13:]: r for r in await store.rejections()}
        (candle,) = await store.candles("TEST:ABC", MINUTE, 0, FOREVER)
    assert sorted(rejections) == [f"[ticks.csv:{line}]" for line in (3, 4, 6, 7)]
    assert {r.reason for r in rejections.values()} == {"bad_row"}
    assert "price" in rejections["[ticks.csv:3]"].detail
    assert "side" in rejections["[ticks.csv:4]"].detail
    assert r"price '9\x0042.5' is not a decimal number" in rejections["[ticks.csv:6]"].detail
    assert "... [cut from 3,000,033 characters]" in rejections["[ticks.csv:7]"].detail
    assert (candle.trades, candle.open, candle.close) == (2, Decimal("100.5"), Decimal(102))


async def test_the_gateway_admits_the_charts_own_origin_and_refuses_others(
    migrated_database: str,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        http_port = int(probe.getsockname()[1])
    settings = PlatformSettings(
        database_url=DatabaseUrl(migrated_database),
        http_port=http_port,
        ws_port=0,
        allowed_origins=("https://charts.example.com",),
    )
    platform = Platform(settings, io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    try:

        async def serving() -> bool:
            return platform.chart_url is not None

        await wait_for(serving)
        assert platform.gateway_url is not None
        for origin in (
            f"http://127.0.0.1:{http_port}",
            f"http://localhost:{http_port}",
            "https://charts.example.com",
            None,  # a bot
        ):
            opened = connect(platform.gateway_url, origin=Origin(origin) if origin else None)
            ws = await asyncio.wait_for(opened, WAIT)
            await ws.close()
        for origin in (f"http://localhost:{http_port + 1}", "https://evil.example"):
            with pytest.raises(InvalidStatus) as refused:
                await asyncio.wait_for(connect(platform.gateway_url, origin=Origin(origin)), WAIT)
            assert refused.value.response.status_code == 403
        # the private channels read the trading read models and the main API's firings:
        # wired, and refused to a client that is no account (not unavailable)
        assert platform.gateway is not None
        assert platform.gateway.reads is not None
        assert platform.gateway.alert_reads is not None
        async with connect(platform.gateway_url) as ws:
            for rid, channel in enumerate(("fills", "alerts")):
                await ws.send(json.dumps({"op": "subscribe", "id": rid, "channel": channel}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                assert (answer["code"], answer["field"], answer["id"]) == (
                    "not_entitled", "channel", rid
                )  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
