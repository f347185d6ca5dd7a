"""Properties of the engine's final candles, checked against a brute-force Decimal oracle."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig, EngineOutput
from core.intervals import parse_intervals
from core.ticks import Side, Tick
from tests.core.factories import SECOND, T0

LATENESS = 5 * SECOND
INTERVALS = parse_intervals(["10s", "1m", "5m", "15m", "1h"])
INSTRUMENTS = ("TEST:A", "KRAKEN:B")  # KRAKEN fills empty intervals in the fill runs

Final = dict[tuple[str, str, int], tuple[object, ...]]


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


def final_candles(outputs: Iterable[EngineOutput]) -> Final:
    final: dict[tuple[str, str, int], Candle] = {}
    for output in outputs:
        for candle in output.candles:
            previous = final.get(candle.key)
            assert previous is None or candle.revision > previous.revision
            final[candle.key] = candle
    assert all(c.status is not CandleStatus.OPEN for c in final.values())
    return {key: candle.values() for key, candle in final.items()}


def run(ticks: list[Tick], policy: EmptyPolicy, cuts: Iterable[int] = ()) -> Final:
    engine = CandleEngine(config(policy))
    outputs = []
    start = 0
    for cut in [*sorted(cuts), len(ticks)]:
        outputs.append(engine.feed_ticks(ticks[start:cut]))
        start = cut
    outputs.append(engine.flush())
    assert not any(output.rejected for output in outputs)
    return final_candles(outputs)


def oracle(ticks: list[Tick], policy: EmptyPolicy) -> Final:
    """The candle rules written the slow, obvious way."""
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
                if not members:
                    expected[key] = (*key, close, close, close, close, 0, 0, 0, 0, None, None)
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
                )
    return expected


policies = st.sampled_from(list(EmptyPolicy))


@settings(max_examples=150, deadline=None)
@given(streams(), policies)
def test_final_candles_equal_the_oracle(ticks: list[Tick], policy: EmptyPolicy) -> None:
    assert run(ticks, policy) == oracle(ticks, policy)


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
            assert final[key][3:] == (
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
