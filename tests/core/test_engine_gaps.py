"""Feed gaps in the candle engine: the rules of docs/candles.md "Feed gaps", one example each,
and real Kraken trades with a hole cut out of them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig, EngineOutput
from core.engine.gaps import MAX_SPANS, GapMemory
from core.gaps import FeedGap, GapReason
from core.intervals import parse_intervals
from core.ticks import TickBatch
from ingest.files.reader import read_ticks
from tests.core.factories import SECOND, T0, tick

MINUTE = 60 * SECOND
ONE_MINUTE = parse_intervals(["1m"])


def engine(**settings: object) -> CandleEngine:
    defaults: dict[str, object] = {"intervals": ONE_MINUTE, "throttle_ns": 0, "lateness_ns": 0}
    defaults.update(settings)
    return CandleEngine(EngineConfig(**defaults))  # type: ignore[arg-type]


def gap(start: float, end: float, instrument: str = "TEST:ABC") -> FeedGap:
    """A gap from ``start`` to ``end`` seconds after :data:`T0`."""
    return FeedGap(
        instrument=instrument,
        start_ns=T0 + round(start * SECOND),
        end_ns=T0 + round(end * SECOND),
        reason=GapReason.DISCONNECTED,
    )


def minute_of(candle: Candle) -> int:
    return (candle.open_time - T0) // MINUTE


def final(*outputs: EngineOutput) -> dict[int, Candle]:
    """The newest version of each 1m candle, by minute after T0."""
    return {minute_of(c): c for output in outputs for c in output.candles}


def test_a_gap_flags_the_open_candle_and_emits_it_again() -> None:
    eng = engine()
    first = eng.feed_ticks([tick(1, 10)])
    out = eng.mark_gap(gap(20, 30))
    (update,) = out.candles
    assert (update.status, update.gap, update.revision) == (CandleStatus.OPEN, True, 1)
    assert update.values()[:-1] == first.candles[-1].values()[:-1]


def test_a_gap_revises_closed_candles_it_meets_and_only_those() -> None:
    eng = engine()
    before = final(eng.feed_ticks([tick(1, 10), tick(2, 70), tick(3, 130), tick(4, 190)]))
    out = eng.mark_gap(gap(59, 61))  # the end of minute 0 and the start of minute 1
    assert [(minute_of(c), c.status, c.gap) for c in out.candles] == [
        (0, CandleStatus.REVISED, True),
        (1, CandleStatus.REVISED, True),
    ]
    for candle in out.candles:
        closed = before[minute_of(candle)]
        assert closed.status is CandleStatus.CLOSED
        assert candle.revision == closed.revision + 1
        assert candle.values()[:-1] == closed.values()[:-1]


def test_a_gap_ending_on_a_bucket_start_does_not_flag_that_bucket() -> None:
    eng = engine()
    eng.feed_ticks([tick(1, 10), tick(2, 70)])
    out = eng.mark_gap(gap(30, 60))  # [T0+30s, T0+60s): minute 1 starts where it ends
    assert [minute_of(c) for c in out.candles] == [0]


def test_the_same_gap_again_emits_nothing() -> None:
    eng = engine()
    eng.feed_ticks([tick(1, 10), tick(2, 70)])
    assert eng.mark_gap(gap(5, 15)).candles != []
    assert eng.mark_gap(gap(5, 15)).candles == []
    assert eng.mark_gap(gap(6, 14)).candles == []  # inside what is known: nothing new


def test_candles_made_later_inside_a_remembered_gap_are_flagged_when_made() -> None:
    eng = engine(empty=EmptyPolicy.FILL)
    eng.feed_ticks([tick(1, 10, "100")])
    assert eng.mark_gap(gap(100, 250)).candles == []  # minutes 1..4: no candle exists yet
    out = eng.feed_ticks([tick(2, 310, "110")])  # closes 0, fills 1..4, opens 5
    out.extend(eng.feed_ticks([tick(3, 400, "120")]))
    candles = final(out)
    assert {m: c.gap for m, c in candles.items()} == {
        0: False, 1: True, 2: True, 3: True, 4: True, 5: False, 6: False,
    }  # fmt: skip
    assert [candles[m].trades for m in (1, 2, 3, 4)] == [0, 0, 0, 0]


def test_a_late_tick_into_a_gap_makes_a_flagged_candle_and_flagged_flats() -> None:
    eng = engine(empty=EmptyPolicy.FILL, horizon_ns=3600 * SECOND)
    eng.mark_gap(gap(60, 200))  # before any tick: scales are unknown yet
    eng.feed_ticks([tick(1, 250, "100")])
    eng.feed_ticks([tick(2, 400, "105")])
    out = eng.feed_ticks([tick(3, 70, "90")])  # minute 1, before the first closed bucket
    candles = final(out)
    assert {m: (c.status, c.gap, c.trades) for m, c in candles.items()} == {
        1: (CandleStatus.REVISED, True, 1),
        2: (CandleStatus.REVISED, True, 0),  # a flat made behind the clock
        3: (CandleStatus.REVISED, True, 0),
    }


def test_skip_leaves_the_empty_buckets_of_a_gap_without_candles() -> None:
    eng = engine(empty=EmptyPolicy.SKIP)
    eng.feed_ticks([tick(1, 10)])
    eng.mark_gap(gap(30, 500))
    out = eng.feed_ticks([tick(2, 610)])
    out.extend(eng.flush())
    assert {m: c.gap for m, c in final(out).items()} == {0: True, 10: False}


def test_a_gap_behind_the_horizon_changes_nothing_and_is_not_kept() -> None:
    eng = engine(horizon_ns=120 * SECOND)
    eng.feed_ticks([tick(1, 10), tick(2, 500)])
    assert eng.mark_gap(gap(20, 30)).candles == []
    assert eng.gaps.spans("TEST:ABC") == []


def test_gaps_are_forgotten_once_every_candle_they_meet_is_final() -> None:
    eng = CandleEngine(
        EngineConfig(intervals=parse_intervals(["1m", "1h"]), horizon_ns=600 * SECOND)
    )
    eng.feed_ticks([tick(1, 10)])
    eng.mark_gap(gap(20, 30))
    eng.feed_ticks([tick(2, 3000)])  # 20s is behind the horizon, but the 1h bar can change
    assert eng.gaps.spans("TEST:ABC") != []
    eng.feed_ticks([tick(3, 3600 + 700)])  # the whole first hour is behind the horizon now
    assert eng.gaps.spans("TEST:ABC") == []


def test_a_gap_of_years_touches_only_the_bars_that_exist() -> None:
    eng = CandleEngine(EngineConfig(throttle_ns=0))  # 1s to 1d
    eng.feed_ticks([tick(1, 10), tick(2, 3 * 3600)])
    years = FeedGap(
        instrument="TEST:ABC",
        start_ns=T0 - 10 * 365 * 86400 * SECOND,
        end_ns=T0 + 10 * 365 * 86400 * SECOND,
        reason=GapReason.SEQUENCE,
    )
    out = eng.mark_gap(years)  # every 1s bucket of 20 years would never finish
    assert out.candles
    assert all(c.gap for c in out.candles)
    assert len({c.key for c in out.candles}) == len(out.candles)


def test_with_emit_open_off_a_flagged_open_candle_waits_for_its_close() -> None:
    eng = engine(emit_open=False)
    eng.feed_ticks([tick(1, 10)])
    assert eng.mark_gap(gap(0, 5)).candles == []
    (closed,) = eng.flush().candles
    assert (closed.status, closed.gap) == (CandleStatus.CLOSED, True)


def test_a_checkpoint_carries_the_gaps_and_the_flags() -> None:
    eng = engine(empty=EmptyPolicy.FILL)
    eng.mark_gap(gap(100, 130, instrument="TEST:QUIET"))  # an instrument without ticks
    eng.feed_ticks([tick(1, 10)])
    eng.mark_gap(gap(15, 20))
    eng.mark_gap(gap(70, 80))
    restored = CandleEngine.restore(eng.checkpoint(), eng.config)
    assert restored.gaps.spans("TEST:QUIET") == eng.gaps.spans("TEST:QUIET") != []
    out = restored.feed_ticks([tick(2, 200)])
    assert {m: c.gap for m, c in final(out).items() if c.status is not CandleStatus.OPEN} == {
        0: True, 1: True, 2: False,
    }  # fmt: skip


def test_a_version_1_checkpoint_without_gaps_is_still_read() -> None:
    eng = engine()
    eng.feed_ticks([tick(1, 10, "100"), tick(2, 70, "101")])
    fields = msgspec.msgpack.decode(eng.checkpoint())
    fields["version"] = 1
    del fields["gaps"]
    for instrument in fields["instruments"]:
        for interval in instrument[-1]:
            interval[-1] = [[bucket, values[:-1]] for bucket, values in interval[-1]]
    restored = CandleEngine.restore(msgspec.msgpack.encode(fields), eng.config)
    assert [c.values() for c in restored.flush().candles] == [
        c.values() for c in eng.flush().candles
    ]


def test_gap_memory_merges_spans_and_keeps_them_bounded() -> None:
    memory = GapMemory()
    memory.add("A:B", 10, 20)
    memory.add("A:B", 30, 40)
    memory.add("A:B", 20, 25)  # touches the first
    assert memory.spans("A:B") == [(10, 25), (30, 40)]
    memory.add("A:B", 5, 35)
    assert memory.spans("A:B") == [(5, 40)]
    assert (memory.overlaps("A:B", 40, 50), memory.overlaps("A:B", 39, 50)) == (False, True)
    for k in range(MAX_SPANS + 5):
        memory.add("C:D", 100 * k, 100 * k + 10)
    spans = memory.spans("C:D")
    assert len(spans) == MAX_SPANS
    assert spans[0] == (0, 100 * 5 + 10)  # the oldest merged: more caution, never less
    assert spans[-1] == (100 * (MAX_SPANS + 4), 100 * (MAX_SPANS + 4) + 10)


# -- real trades ----------------------------------------------------------------------------

KRAKEN = Path("kraken-xbtusdt-2025-11-10") / "trades.json"
KRAKEN_INTERVALS = parse_intervals(["1m", "5m", "15m", "1h"])
HOLE = (1762797660, 1762797810)  # 18:01:00 to 18:03:30 UTC (44 trades), in seconds
# 18:04 has a trade, so under the fill rule the flat minutes after the hole do not change


def kraken_engine(policy: EmptyPolicy) -> CandleEngine:
    return CandleEngine(
        EngineConfig(intervals=KRAKEN_INTERVALS, empty=policy, throttle_ns=0, emit_open=False)
    )


def final_by_key(
    engine: CandleEngine, batch: TickBatch, gap: FeedGap | None
) -> dict[tuple[str, str, int], Candle]:
    """Feed ``batch`` in slices of 25, with ``gap`` marked after the fifth slice."""
    outputs = []
    for index, start in enumerate(range(0, len(batch), 25)):
        outputs.append(engine.feed(batch.take(slice(start, start + 25))))
        if gap is not None and index == 4:
            outputs.append(engine.mark_gap(gap))
    outputs.append(engine.flush())
    return {c.key: c for output in outputs for c in output.candles}


@pytest.mark.parametrize("policy", list(EmptyPolicy))
def test_a_hole_in_real_kraken_trades_flags_exactly_the_candles_over_it(
    shared_data: Path, policy: EmptyPolicy
) -> None:
    (whole,) = list(read_ticks(shared_data / KRAKEN))
    start_ns, end_ns = (s * SECOND for s in HOLE)
    inside = (whole.ts_event >= start_ns) & (whole.ts_event < end_ns)
    assert inside.sum() > 0
    holed = whole.take(~inside)
    hole = FeedGap(
        instrument=whole.instrument, start_ns=start_ns, end_ns=end_ns, reason=GapReason.SEQUENCE
    )
    clean = final_by_key(kraken_engine(policy), whole, None)
    cut = final_by_key(kraken_engine(policy), holed, hole)
    unmarked = final_by_key(kraken_engine(policy), holed, None)
    assert set(cut) == set(unmarked)
    flagged = {key for key, candle in cut.items() if candle.gap}
    over = {k for k in cut if hole.overlaps(k[2], k[2] + cut[k].interval.ns)}
    assert flagged == over
    assert {k[1] for k in flagged} == {"1m", "5m", "15m", "1h"}
    minutes = {m * MINUTE for m in range(start_ns // MINUTE, -(-end_ns // MINUTE))}  # 18:01..03
    if policy is EmptyPolicy.SKIP:  # only the minutes that kept some trades have a candle
        minutes &= {int(ts) // MINUTE * MINUTE for ts in holed.ts_event}
    assert {k[2] for k in flagged if k[1] == "1m"} == minutes != set()
    for key, candle in cut.items():
        assert candle.values()[:-1] == unmarked[key].values()[:-1]  # the flag changes no value
        if key not in over:
            assert candle.values() == clean[key].values()
    assert sum(c.trades for k, c in cut.items() if k[1] == "1h") == len(holed)
