"""The indexed evaluator fires exactly what the naive one (every alert checked on every price,
``bench.alerts.NaiveEvaluator``) fires, on random alerts, random price paths, gaps, candles
and changes; and a restart anywhere in the stream, from the rows its deltas stored or from
its snapshot, changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.alerts import NaiveEvaluator
from core.alerts import AlertFired, AlertSpec, Arming, Condition, Source
from core.candles import CandleStatus
from core.gaps import FeedGap, GapReason
from main_api.alerts import AlertEvaluator
from main_api.alerts.evaluator import Delta

from .factories import INSTRUMENT, SECOND, T0, candle, ticks

IDS = [f"a{i}" for i in range(8)]
prices = st.integers(950, 1050).map(lambda n: Decimal(n) / 10)


@st.composite
def specs(draw: st.DrawFn) -> AlertSpec:
    condition = draw(st.sampled_from(list(Condition)))
    move = condition in (Condition.MOVE_UP, Condition.MOVE_DOWN)
    on_candles = draw(st.booleans())
    return AlertSpec(
        alert_id=draw(st.sampled_from(IDS)),
        account=7,
        instrument=INSTRUMENT,
        condition=condition,
        threshold=draw(st.sampled_from(["0.5", "1", "2.5", "4"]).map(Decimal))
        if move
        else draw(prices),
        source=Source.CANDLES if on_candles else Source.TICKS,
        interval="1m" if on_candles else None,
        window_s=draw(st.sampled_from([1, 3, 150])) if move else 0,
        arming=draw(st.sampled_from(list(Arming))),
        cooldown_s=draw(st.integers(0, 3)),
        expires_at=draw(st.none() | st.integers(0, 40).map(lambda s: T0 + s * SECOND)),
    )


steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("ticks"),
            st.lists(st.tuples(prices, st.integers(0, 1500)), min_size=1, max_size=30),
        ),
        st.tuples(st.just("gap"), st.integers(0, 3000)),
        st.tuples(
            st.just("candle"),
            prices,
            st.integers(-1, 2),
            st.sampled_from(list(CandleStatus)),
            st.booleans(),
        ),
        st.tuples(
            st.just("changes"),
            st.lists(specs(), max_size=4),
            st.lists(st.sampled_from(IDS), max_size=2),
        ),
        st.tuples(st.just("restart"), st.booleans()),
    ),
    min_size=1,
    max_size=25,
)
operations = st.tuples(
    st.tuples(st.just("changes"), st.lists(specs(), min_size=1, max_size=8), st.just([])),
    steps,
).map(lambda first_and_rest: [first_and_rest[0], *first_and_rest[1]])


class Rows:
    """A store of the evaluator's rows, as the runner keeps them: each delta upserted, the
    gone alerts deleted."""

    def __init__(self) -> None:
        self.alerts: dict[str, bytes] = {}
        self.streams: dict[str, bytes] = {}

    def keep(self, delta: Delta) -> None:
        for alert_id, row in delta.alerts.items():
            if row is None:
                self.alerts.pop(alert_id, None)
            else:
                self.alerts[alert_id] = row
        self.streams.update(delta.streams)

    def restored(self) -> AlertEvaluator:
        return AlertEvaluator.from_rows(self.alerts.values(), self.streams.values())


def play(ops: list[tuple[Any, ...]]) -> tuple[list[AlertFired], list[AlertFired]]:
    """The firings of the indexed evaluator and of the naive one on the same inputs. After
    each operation (a round) the indexed one's delta is kept in a store of rows; at each
    "restart" it is rebuilt from those rows (or from its snapshot), which must hold exactly
    its whole state."""
    indexed, naive = AlertEvaluator(), NaiveEvaluator()
    rows = Rows()
    got: list[AlertFired] = []
    want: list[AlertFired] = []
    clock = T0
    trade_id = 1
    minute, revision = 0, 0
    for op in ops:
        if op[0] == "changes":
            indexed.apply_changes(op[1], op[2])
            naive.apply_changes(op[1], op[2])
            rows.keep(indexed.delta())
            continue
        if op[0] == "restart":
            from_rows = rows.restored()
            assert from_rows.snapshot() == indexed.snapshot()
            indexed = from_rows if op[1] else AlertEvaluator.from_snapshot(indexed.snapshot())
            continue
        if op[0] == "ticks":
            stamps = []
            for _, step_ms in op[1]:
                clock += step_ms * 1_000_000
                stamps.append(clock)
            item: Any = ticks([p for p, _ in op[1]], first_id=trade_id, stamps=stamps)
            trade_id += len(op[1])
        elif op[0] == "gap":
            item = FeedGap(
                instrument=INSTRUMENT,
                start_ns=clock - op[1] * 1_000_000 + 1,
                end_ns=clock + 2 * SECOND,
                reason=GapReason.DISCONNECTED,
            )
        else:
            _, close, bump, status, flagged = op
            if bump < 0:
                minute = max(0, minute - 1)
            elif bump == 0:
                revision += 1
            else:
                minute += bump
                revision = 0
            item = candle(minute, str(close), revision=revision, status=status, gap=flagged)
        got.extend(indexed.step(item))
        want.extend(naive.step(item))
        rows.keep(indexed.delta())
    return got, want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_the_index_fires_exactly_what_checking_every_alert_fires(
    ops: list[tuple[Any, ...]],
) -> None:
    got, want = play(ops)
    assert got == want


def test_a_hand_made_path_fires_the_same_in_both() -> None:
    above = AlertSpec(
        alert_id="a0",
        account=7,
        instrument=INSTRUMENT,
        condition=Condition.CROSS_UP,
        threshold=Decimal("100"),
        arming=Arming.REARM,
    )
    ops: list[tuple[Any, ...]] = [
        ("changes", [above], []),
        ("ticks", [(Decimal(p), 100) for p in ("99", "101", "98", "100")]),
        ("restart", True),
        ("ticks", [(Decimal(p), 100) for p in ("99", "100.5")]),
    ]
    got, want = play(ops)
    assert [e.fire_id for e in got] == ["a0:1", "a0:2", "a0:3"]
    assert got == want
