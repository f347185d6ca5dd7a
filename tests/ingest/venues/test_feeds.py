"""Every venue end to end: real trades through its fake venue, with faults, into candles.

Disconnects, repeats, reorders and malformed frames must not change the candles: they equal
those of a clean replay of the same file (and, for Kraken, Kraken's official candles). A
skipped message or a dropped connection is a feed gap spanning the trades around it, and
the candles over it are flagged; malformed frames are rejected while the feed goes on.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from core.candles import Candle
from core.gaps import FeedGap, GapReason
from ingest.venues.coinbase import CoinbaseExchange
from ingest.venues.runtime import VenueEvent, VenueFeed
from tests.ingest.venues.fakes.binance import file_ticks
from tests.ingest.venues.fakes.coinbase import CoinbaseScript, coinbase_frames
from tests.ingest.venues.fakes.server import FakeVenue, Faults, malformed
from tests.ingest.venues.harness import (
    CASES,
    KRAKEN,
    WAIT,
    VenueCase,
    all_values,
    final_candles,
    gap_span,
    reference_candles,
    run_feed,
    settings,
    trade_frames,
    trade_ids_per_frame,
)

OFFICIAL = Path("kraken-xbtusdt-2025-11-10") / "ohlc-1m.json"


def assert_flags_follow_the_gaps(candles: dict[int, Candle], gaps: list[FeedGap]) -> None:
    flagged = {t for t, c in candles.items() if c.gap}
    overlapping = {t for t, c in candles.items() if any(g.overlaps(t, c.close_time) for g in gaps)}
    assert flagged == overlapping
    assert flagged, "the gap must cover at least one candle"


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> VenueCase:
    result: VenueCase = request.param
    return result


async def test_faults_other_than_lost_trades_leave_the_candles_of_a_clean_replay(
    case: VenueCase, shared_data: Path
) -> None:
    script = case.script(shared_data)
    frames = script.frames()
    ids = trade_ids_per_frame(case, frames)
    usable = trade_frames(case, frames)
    drop, repeat, swap, bad = (usable[len(usable) * k // 5] for k in (1, 2, 3, 4))
    faults = Faults(drop_after={drop}, repeat={repeat}, swap={swap}, malformed_before={bad})

    run = await run_feed(case, script, faults)

    reference = case.reference(shared_data)
    assert sorted(t.trade_id for t in run.ticks()) == sorted(t.trade_id for t in reference)
    candles = final_candles(run.events)
    assert all_values(candles) == all_values(reference_candles(reference))
    (reject,) = run.rejects
    assert reject.venue == case.name
    assert reject.bad.reason == "not_json"
    assert reject.bad.payload == malformed(frames[bad])
    (gap,) = run.gaps
    assert gap.reason is GapReason.DISCONNECTED
    before = [i for frame in ids[: drop + 1] for i in frame]
    after = [i for frame in ids[drop + 1 :] for i in frame]
    assert (gap.start_ns, gap.end_ns) == gap_span(reference, before, after)
    assert_flags_follow_the_gaps(candles, run.gaps)
    assert run.connections == 2
    assert run.counters.reconnects == 1
    assert run.counters.duplicates >= len(ids[repeat])
    assert run.counters.bad_frames == 1


async def test_a_skipped_message_is_a_sequence_gap_over_the_trades_around_it(
    case: VenueCase, shared_data: Path
) -> None:
    script = case.script(shared_data)
    frames = script.frames()
    ids = trade_ids_per_frame(case, frames)
    usable = trade_frames(case, frames)
    skip = usable[len(usable) // 3]

    run = await run_feed(case, script, Faults(skip={skip}))

    reference = case.reference(shared_data)
    missing = set(ids[skip])
    assert {t.trade_id for t in reference} - {t.trade_id for t in run.ticks()} == missing
    (gap,) = run.gaps
    assert gap.reason is GapReason.SEQUENCE
    seen = [t.trade_id for t in reference if t.trade_id not in missing]
    before = [i for i in seen if i < min(missing)]
    after = [i for i in seen if i > max(missing)]
    assert (gap.start_ns, gap.end_ns) == gap_span(reference, [max(before)], after)
    assert str(min(missing)) in gap.detail
    assert_flags_follow_the_gaps(final_candles(run.events), run.gaps)
    kept = [t for t in reference if t.trade_id not in missing]
    assert all_values(final_candles(run.events)) == all_values(reference_candles(kept))


def official(shared_data: Path) -> dict[int, tuple[Decimal, ...]]:
    rows = json.loads((shared_data / OFFICIAL).read_text())["result"]["XBTUSDT"]
    return {
        t * 1_000_000_000: (Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v), Decimal(n))
        for t, o, h, lo, c, _, v, n in rows
    }


async def test_kraken_candles_through_every_fault_but_a_skip_equal_krakens_own(
    shared_data: Path,
) -> None:
    script = KRAKEN.script(shared_data)
    usable = trade_frames(KRAKEN, script.frames())
    picks = [usable[len(usable) * k // 12] for k in range(1, 12)]
    faults = Faults(
        drop_after=set(picks[0:3]),
        repeat=set(picks[3:5]),
        swap=set(picks[5:8]),
        malformed_before=set(picks[8:11]),
    )

    run = await run_feed(KRAKEN, script, faults)

    candles = final_candles(run.events)
    expected = official(shared_data)
    got = {
        t: (c.open, c.high, c.low, c.close, c.volume, Decimal(c.trades))
        for t, c in candles.items()
        if t in expected
    }
    assert got == expected
    assert len(run.rejects) == 3
    assert [g.reason for g in run.gaps] == [GapReason.DISCONNECTED] * 3
    assert run.connections == 4


async def test_a_coinbase_heartbeat_naming_a_lost_match_is_a_gap_while_the_product_is_quiet(
    shared_data: Path,
) -> None:
    """The last match before a quiet spell is lost: no later trade shows the hole, but the
    next heartbeat's ``last_trade_id`` does, and the gap goes out within the grace."""
    ticks = file_ticks(shared_data)[:100]
    frames = coinbase_frames(ticks, heartbeat_every=50)  # 50 matches, a heartbeat, 50, one
    lost = len(frames) - 2
    assert json.loads(frames[lost])["trade_id"] == ticks[-1].trade_id
    events: list[VenueEvent] = []
    async with FakeVenue(CoinbaseScript(frames), Faults(skip={lost})) as venue:
        feed = VenueFeed(CoinbaseExchange(), ["BTC-USD"], settings(venue.url))

        async def collect() -> None:
            async for event in feed.events():
                events.append(event)

        collecting = asyncio.create_task(collect())
        async with asyncio.timeout(WAIT):
            while not any(isinstance(e, FeedGap) for e in events):
                await asyncio.sleep(0.01)
        feed.stop()
        await asyncio.wait_for(collecting, WAIT)
    (gap,) = (e for e in events if isinstance(e, FeedGap))
    assert gap.instrument == "COINBASE:BTC-USD"
    assert gap.reason is GapReason.SEQUENCE
    assert (gap.start_ns, gap.end_ns) == (ticks[-2].ts_event, ticks[-1].ts_event + 1)
    trade_id = ticks[-1].trade_id
    assert gap.detail == (
        f"trade id {trade_id} missing (the venue named trade id {trade_id} as its latest)"
    )
    assert venue.connections == 1
    assert feed.counters.ticks == 99
