"""A backlog read late gives the candles of a live run (docs/candles.md, "Idle instruments").

A live shell feeds each batch as it comes in and moves the engine on by the wall clock, which
then is the batch's receipt time. A shell that starts late (a worker restarted after an
outage, or started after the ticks were ingested) reads the same batches, cut into other
batches and polls, with the wall clock far ahead of their receipt times: until it has read
everything, it moves the engine on with ``caught_up=False``. Each candle must then be
published closed once, with the values of the live run, and none revised or rejected, also
when the backlog is older than the horizon.

A restart of the whole platform is the other way round: the engine comes back from its
checkpoint with receipt times from before the stop, and the feeds, stopped with it, then send
what they missed, stamped as received at the restart. ``CandleEngine.restarted`` makes the
time stopped no idle time, so those ticks too give the candles of the live run.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig, EngineOutput
from core.intervals import parse_intervals
from core.ticks import Side, Tick, TickBatch
from tests.core.factories import SECOND, T0

INSTRUMENTS = ("TEST:BUSY", "TEST:QUIET", "KRAKEN:FILLED")  # KRAKEN fills empty intervals
CONFIG = EngineConfig(
    intervals=parse_intervals(["10s", "1m", "5m"]),
    empty_by_venue=MappingProxyType({"KRAKEN": EmptyPolicy.FILL}),
)
LATES = (60 * SECOND, 2 * 3600 * SECOND)  # how long after it came in the backlog is read

Key = tuple[str, str, int]


@st.composite
def live_feeds(draw: st.DrawFn) -> list[TickBatch]:
    """Batches of one instrument each, in the order a live feed sends them: event and receipt
    times rising, instruments interleaved, with bursts and quiet spells longer than the
    lateness (so that idle instruments close on the clock)."""
    pause = st.sampled_from([0, 1, 300_000_000, 3 * SECOND, 70 * SECOND, 7 * 60 * SECOND])
    ts = T0 + draw(st.integers(0, 600 * SECOND))
    trade_ids = dict.fromkeys(INSTRUMENTS, 0)
    batches: list[TickBatch] = []
    for _ in range(draw(st.integers(1, 40))):
        instrument = draw(st.sampled_from(INSTRUMENTS))
        ticks = []
        for _ in range(draw(st.integers(1, 4))):
            ts += draw(pause)
            trade_ids[instrument] += draw(st.integers(1, 3))
            price = Decimal(draw(st.integers(1, 10**6))).scaleb(-2)
            size = Decimal(draw(st.integers(1, 10**4))).scaleb(-3)
            latency = draw(st.integers(0, 50_000_000))
            side = draw(st.sampled_from(list(Side)))
            ticks.append(Tick(instrument, trade_ids[instrument], price, size, side, ts, ts))
        batch = TickBatch.from_ticks(ticks)  # it comes in after its newest trade
        batches.append(replace(batch, ts_recv=np.full(len(batch), ts + latency, np.int64)))
    return batches


def split(batches: list[TickBatch], cuts: list[int]) -> list[TickBatch]:
    """The same ticks in the same order, each batch cut at the given row numbers."""
    out: list[TickBatch] = []
    for batch, cut in zip(batches, cuts, strict=True):
        row = cut % (len(batch) + 1)
        out.extend((batch.take(slice(0, row)), batch.take(slice(row, None))))
    return [b for b in out if len(b)]


def feed_live(engine: CandleEngine, batches: list[TickBatch], out: EngineOutput) -> None:
    """Each batch fed as it comes in; the wall clock is its receipt time."""
    for batch in batches:
        now = int(batch.ts_recv.max())
        out.extend(engine.feed(batch, now))
        out.extend(engine.advance(now))


def live_run(batches: list[TickBatch], idle_after: int) -> EngineOutput:
    engine = CandleEngine(CONFIG)
    out = EngineOutput()
    feed_live(engine, batches, out)
    out.extend(engine.advance(idle_after))
    return out


def backlog_run(batches: list[TickBatch], polls: list[int], now: int) -> EngineOutput:
    """The batches read in polls of the given sizes at a wall clock ``now`` far ahead."""
    engine = CandleEngine(CONFIG)
    out = EngineOutput()
    i = 0
    for size in polls:
        for batch in batches[i : i + size]:
            out.extend(engine.feed(batch, now))
        i += size
        out.extend(engine.advance(now, caught_up=i >= len(batches)))
    return out


def closes(candles: list[Candle]) -> dict[Key, list[tuple[object, ...]]]:
    """Every closed or revised version of each candle, by its values (not its revision)."""
    found: dict[Key, list[tuple[object, ...]]] = {}
    for c in candles:
        if c.status is not CandleStatus.OPEN:
            values = (
                c.status, c.open, c.high, c.low, c.close, c.volume, c.quote_volume,
                c.taker_buy_volume, c.trades, c.first_trade_id, c.last_trade_id, c.gap,
            )  # fmt: skip
            found.setdefault((c.instrument, c.interval.label, c.open_time), []).append(values)
    return found


@pytest.mark.parametrize("late_by", LATES, ids=["a minute", "beyond the horizon"])
@settings(max_examples=60, deadline=None)
@given(
    live_feeds(),
    st.lists(st.integers(0, 5), min_size=40, max_size=40),
    st.lists(st.integers(1, 6), min_size=1, max_size=30),
)
def test_a_backlog_read_late_gives_the_candles_of_the_live_run(
    late_by: int, batches: list[TickBatch], cuts: list[int], polls: list[int]
) -> None:
    newest = max(int(b.ts_recv.max()) for b in batches)
    live = live_run(batches, newest + late_by)
    backlog = split(batches, cuts[: len(batches)])
    polls = [*polls, len(backlog)]  # the last poll reads the rest: then it is caught up
    late = backlog_run(backlog, polls, newest + late_by)
    assert late.rejected == [] == live.rejected
    expected = closes(live.candles)
    assert all(len(versions) == 1 for versions in expected.values()), "live: closed once each"
    got = closes(late.candles)
    assert got == expected
    assert all(versions[0][0] is CandleStatus.CLOSED for versions in got.values())


def restarted_run(batches: list[TickBatch], cut: int, restart: int) -> EngineOutput:
    """The first ``cut`` batches live; then the platform stops (the engine's checkpoint) and
    starts again at the wall clock ``restart``, and the feeds send the rest: one instrument
    after another (the worst order), each batch a millisecond after the one before and
    stamped as received then."""
    engine = CandleEngine(CONFIG)
    out = EngineOutput()
    feed_live(engine, batches[:cut], out)
    engine = CandleEngine.restore(engine.checkpoint(), CONFIG)
    engine.restarted(restart)
    out.extend(engine.advance(restart))  # the first poll finds nothing yet
    now = restart
    for batch in sorted(batches[cut:], key=lambda b: INSTRUMENTS.index(b.instrument)):
        now += 1_000_000
        out.extend(engine.feed(replace(batch, ts_recv=np.full(len(batch), now, np.int64)), now))
        out.extend(engine.advance(now, caught_up=False))
    out.extend(engine.flush())
    return out


def before_last_trade(candles: list[Candle], batches: list[TickBatch]) -> list[Candle]:
    """The candles up to each instrument's last trade (a live clock fills further under
    ``fill``; that is not the point here)."""
    last: dict[str, int] = {}
    for batch in batches:
        last[batch.instrument] = max(last.get(batch.instrument, 0), int(batch.ts_event.max()))
    return [c for c in candles if c.open_time <= last[c.instrument]]


@pytest.mark.parametrize("down", LATES, ids=["a minute", "beyond the horizon"])
@settings(max_examples=60, deadline=None)
@given(live_feeds(), st.integers(0, 40))
def test_after_a_restart_the_ticks_of_the_time_stopped_give_the_candles_of_the_live_run(
    down: int, batches: list[TickBatch], cut: int
) -> None:
    live = EngineOutput()
    engine = CandleEngine(CONFIG)
    feed_live(engine, batches, live)
    live.extend(engine.flush())
    restart = max(int(b.ts_recv.max()) for b in batches) + down
    again = restarted_run(batches, cut % (len(batches) + 1), restart)
    assert again.rejected == [] == live.rejected
    expected = closes(before_last_trade(live.candles, batches))
    assert all(len(versions) == 1 for versions in expected.values()), "live: closed once each"
    got = closes(before_last_trade(again.candles, batches))
    assert got == expected
    assert all(versions[0][0] is CandleStatus.CLOSED for versions in got.values())
