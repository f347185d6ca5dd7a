"""Properties of the engine's final candles, checked against a brute-force Decimal oracle.

Feed gaps ride along: an event stream is ticks with gaps put anywhere in it (before, among
or after the ticks of their span), and the oracle flags every candle whose interval meets one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig, EngineOutput
from core.gaps import FeedGap, GapReason
from core.intervals import parse_intervals
from core.ticks import Side, Tick
from tests.core.factories import SECOND, T0

LATENESS = 5 * SECOND
INTERVALS = parse_intervals(["10s", "1m", "5m", "15m", "1h"])
INSTRUMENTS = ("TEST:A", "KRAKEN:B")  # KRAKEN fills empty intervals in the fill runs
QUIET = "TEST:QUIET"  # gets gaps, never a tick

Final = dict[tuple[str, str, int], tuple[object, ...]]
Event = Tick | FeedGap


def config(policy: EmptyPolicy) -> EngineConfig:
    return EngineConfig(
        intervals=INTERVALS,
        lateness_ns=LATENESS,
        horizon_ns=2 * 86400 * SECOND,
        empty_by_venue={"KRAKEN": policy},
        throttle_ns=0,
    )


@st.composite
def streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks in event-time order, with same-time trades, bursts and hour-long gaps."""
    count = draw(st.integers(1, 50))
    gap = st.sampled_from([0, 1, 400_000_000, 2 * SECOND, 61 * SECOND, 17 * 60 * SECOND])
    ts = T0 + draw(st.integers(0, 3600 * SECOND))
    ids = dict.fromkeys(INSTRUMENTS, 100)
    ticks = []
    for _ in range(count):
        ts += draw(gap)
        instrument = draw(st.sampled_from(INSTRUMENTS))
        ids[instrument] += draw(st.integers(1, 3))
        price = Decimal(draw(st.integers(1, 10**7))).scaleb(-draw(st.integers(0, 4)))
        size = Decimal(draw(st.integers(1, 10**6))).scaleb(-draw(st.integers(0, 8)))
        side = draw(st.sampled_from(list(Side)))
        ticks.append(Tick(instrument, ids[instrument], price, size, side, ts, ts))
    return ticks


@st.composite
def with_gaps(draw: st.DrawFn, ticks: list[Tick]) -> list[Event]:
    """``ticks`` with gaps put at any place in the stream, some of them sent twice.

    Spans run from a nanosecond to hours and start near the ticks' times, so they fall on
    trades, between them, across bucket bounds and before or after the stream.
    """
    events: list[Event] = list(ticks)
    times = [t.ts_event for t in ticks]
    length = st.sampled_from(
        [1, 2, SECOND, 9 * SECOND, 61 * SECOND, 900 * SECOND, 3 * 3600 * SECOND]
    )
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.sampled_from(times)) + draw(st.integers(-120 * SECOND, 120 * SECOND))
        gap = FeedGap(
            instrument=draw(st.sampled_from((*INSTRUMENTS, QUIET))),
            start_ns=start,
            end_ns=start + draw(length),
            reason=draw(st.sampled_from(list(GapReason))),
        )
        for _ in range(draw(st.integers(1, 2))):
            events.insert(draw(st.integers(0, len(events))), gap)
    return events


def final_candles(outputs: Iterable[EngineOutput]) -> Final:
    final: dict[tuple[str, str, int], Candle] = {}
    for output in outputs:
        for candle in output.candles:
            previous = final.get(candle.key)
            assert previous is None or candle.revision > previous.revision
            final[candle.key] = candle
    assert all(c.status is not CandleStatus.OPEN for c in final.values())
    return {key: candle.values() for key, candle in final.items()}


def run(
    events: Sequence[Event],
    policy: EmptyPolicy,
    cuts: Iterable[int] = (),
    restarts: Iterable[int] = (),
) -> Final:
    """Feed ``events``: ticks in batches cut at ``cuts`` and at every gap; the engine is
    checkpointed and restored from the bytes at each index in ``restarts``."""
    engine = CandleEngine(config(policy))
    outputs: list[EngineOutput] = []
    pending: list[Tick] = []
    cuts, restarts = set(cuts), set(restarts)
    for index, event in enumerate([*events, None]):
        if pending and (index in cuts or index in restarts or not isinstance(event, Tick)):
            outputs.append(engine.feed_ticks(pending))
            pending = []
        if index in restarts:
            engine = CandleEngine.restore(engine.checkpoint(), config(policy))
        if isinstance(event, FeedGap):
            outputs.append(engine.mark_gap(event))
        elif event is not None:
            pending.append(event)
    outputs.append(engine.flush())
    assert not any(output.rejected for output in outputs)
    return final_candles(outputs)


def oracle(ticks: list[Tick], policy: EmptyPolicy, gaps: Sequence[Event] = ()) -> Final:
    """The candle rules written the slow, obvious way (``gaps``: any events; ticks ignored)."""
    spans = [g for g in gaps if isinstance(g, FeedGap)]
    expected: Final = {}
    for interval in INTERVALS:
        groups: dict[tuple[str, int], list[Tick]] = defaultdict(list)
        for t in ticks:
            groups[(t.instrument, t.ts_event // interval.ns)].append(t)
        for instrument in INSTRUMENTS:
            buckets = sorted(b for (i, b) in groups if i == instrument)
            if not buckets:
                continue
            fill = policy is EmptyPolicy.FILL and instrument.startswith("KRAKEN")
            span = range(buckets[0], buckets[-1] + 1) if fill else buckets
            close = Decimal(0)
            for bucket in span:
                key = (instrument, interval.label, bucket * interval.ns)
                members = sorted(
                    groups.get((instrument, bucket), []), key=lambda t: (t.ts_event, t.trade_id)
                )
                start = bucket * interval.ns
                flagged = any(
                    g.instrument == instrument and g.overlaps(start, start + interval.ns)
                    for g in spans
                )
                if not members:
                    expected[key] = (
                        *key, close, close, close, close, 0, 0, 0, 0, None, None, flagged,
                    )  # fmt: skip
                    continue
                close = members[-1].price
                expected[key] = (
                    *key,
                    members[0].price,
                    max(t.price for t in members),
                    min(t.price for t in members),
                    close,
                    sum(t.size for t in members),
                    sum(t.price * t.size for t in members),
                    sum(t.size for t in members if t.side is Side.BUY),
                    len(members),
                    members[0].trade_id,
                    members[-1].trade_id,
                    flagged,
                )
    return expected


policies = st.sampled_from(list(EmptyPolicy))


@settings(max_examples=150, deadline=None)
@given(streams(), policies)
def test_final_candles_equal_the_oracle(ticks: list[Tick], policy: EmptyPolicy) -> None:
    assert run(ticks, policy) == oracle(ticks, policy)


@settings(max_examples=150, deadline=None)
@given(streams(), policies, st.data())
def test_gap_flags_equal_the_oracle_wherever_the_gaps_arrive_and_however_cut(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    events = data.draw(with_gaps(ticks))
    cuts = data.draw(st.sets(st.integers(0, len(events))))
    assert run(events, policy, cuts) == oracle(ticks, policy, events)


@settings(max_examples=100, deadline=None)
@given(streams(), policies, st.data())
def test_gap_flags_survive_a_restart_from_a_checkpoint_anywhere(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    events = data.draw(with_gaps(ticks))
    restarts = data.draw(st.sets(st.integers(0, len(events)), min_size=1, max_size=3))
    assert run(events, policy, restarts=restarts) == oracle(ticks, policy, events)


@settings(max_examples=150, deadline=None)
@given(streams(), policies, st.data())
def test_late_ticks_within_the_horizon_and_gaps_in_any_order_give_the_oracle(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    """Ticks shuffled far past the lateness (revisions, flat bars made behind the clock)."""
    shuffled = data.draw(st.permutations(ticks))
    events = data.draw(with_gaps(shuffled))
    cuts = data.draw(st.sets(st.integers(0, len(events))))
    assert run(events, policy, cuts) == oracle(ticks, policy, events)


@settings(max_examples=100, deadline=None)
@given(streams(), policies, st.data())
def test_a_gap_sent_again_emits_nothing(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    events = data.draw(with_gaps(ticks))
    engine = CandleEngine(config(policy))
    gaps = [event for event in events if isinstance(event, FeedGap)]
    cut = data.draw(st.integers(0, len(ticks)))
    engine.feed_ticks(ticks[:cut])
    for gap in gaps:
        engine.mark_gap(gap)
        assert engine.mark_gap(gap).candles == []
    engine.feed_ticks(ticks[cut:])
    for gap in gaps:
        assert engine.mark_gap(gap).candles == []


@settings(max_examples=150, deadline=None)
@given(streams(), policies, st.data())
def test_arrival_order_within_the_lateness_and_batching_do_not_matter(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    jitter = data.draw(
        st.lists(st.integers(0, LATENESS - 1), min_size=len(ticks), max_size=len(ticks))
    )
    arrival = [
        t
        for _, _, t in sorted(
            zip(
                (t.ts_event + j for t, j in zip(ticks, jitter, strict=True)),
                range(len(ticks)),
                ticks,
                strict=True,
            )
        )
    ]
    cuts = data.draw(st.sets(st.integers(0, len(ticks))))
    assert run(arrival, policy, cuts) == run(ticks, policy)
    events = data.draw(with_gaps(arrival))
    cuts = data.draw(st.sets(st.integers(0, len(events))))
    assert run(events, policy, cuts) == oracle(ticks, policy, events)


@settings(max_examples=100, deadline=None)
@given(streams(), policies, st.data())
def test_repeated_trade_ids_change_nothing(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    repeated = list(ticks)
    for _ in range(data.draw(st.integers(1, 10))):
        source = data.draw(st.integers(0, len(ticks) - 1))
        target = data.draw(st.integers(source + 1, len(repeated)))
        repeated.insert(target, ticks[source])
    cuts = data.draw(st.sets(st.integers(0, len(repeated))))
    assert run(repeated, policy, cuts) == run(ticks, policy)


@settings(max_examples=100, deadline=None)
@given(streams(), policies, st.data())
def test_a_restart_from_a_checkpoint_continues_exactly(
    ticks: list[Tick], policy: EmptyPolicy, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(ticks)))
    first = CandleEngine(config(policy))
    before = first.feed_ticks(ticks[:cut])
    second = CandleEngine.restore(first.checkpoint(), config(policy))
    after = second.feed_ticks(ticks[cut:])
    assert final_candles([before, after, second.flush()]) == run(ticks, policy)


@settings(max_examples=100, deadline=None)
@given(streams(), policies)
def test_coarse_candles_equal_the_roll_up_of_one_minute_candles(
    ticks: list[Tick], policy: EmptyPolicy
) -> None:
    final = run(ticks, policy)
    minutes = sorted((k, v) for k, v in final.items() if k[1] == "1m")
    for label in ("5m", "15m", "1h"):
        size = next(i.ns for i in INTERVALS if i.label == label)
        rolled: dict[tuple[str, str, int], list[tuple[object, ...]]] = defaultdict(list)
        for (instrument, _, open_time), values in minutes:
            rolled[(instrument, label, open_time - open_time % size)].append(values)
        assert set(rolled) == {k for k in final if k[1] == label}
        for key, parts in rolled.items():
            traded = [p for p in parts if p[10]] or parts
            assert final[key][3:13] == (
                traded[0][3],
                max(p[4] for p in traded),  # type: ignore[type-var]
                min(p[5] for p in traded),  # type: ignore[type-var]
                traded[-1][6],
                sum(p[7] for p in parts),  # type: ignore[misc]
                sum(p[8] for p in parts),  # type: ignore[misc]
                sum(p[9] for p in parts),  # type: ignore[misc]
                sum(p[10] for p in parts),  # type: ignore[misc]
                traded[0][11],
                traded[-1][12],
            )


@settings(max_examples=100, deadline=None)
@given(streams())
def test_candle_invariants_hold_for_every_update(ticks: list[Tick]) -> None:
    engine = CandleEngine(config(EmptyPolicy.FILL))
    output = engine.feed_ticks(ticks)
    output.extend(engine.flush())
    for candle in output.candles:
        assert candle.high >= max(candle.open, candle.close)
        assert candle.low <= min(candle.open, candle.close)
        assert 0 <= candle.taker_buy_volume <= candle.volume
