"""The roll-up rules, without a database."""

from __future__ import annotations

import msgspec
import pytest

from charting.rollup import fold, plan, roll_up
from core.candles import Candle, CandleStatus
from core.intervals import DEFAULT_INTERVALS, Interval
from tests.charting.data import MINUTE, T0, series

FIVE = Interval.parse("5m")
LATER = T0 + 10**15


def test_the_plan_reads_the_coarsest_stored_divisor() -> None:
    assert plan(Interval.parse("2h"), DEFAULT_INTERVALS) == plan(
        Interval.parse("2h"), (Interval.parse("1h"),)
    )
    found = plan(Interval.parse("2h"), DEFAULT_INTERVALS)
    assert found is not None
    assert (found.source.label, found.ratio, found.rolled) == ("1h", 2, True)
    stored = plan(Interval.parse("15m"), DEFAULT_INTERVALS)
    assert stored is not None
    assert not stored.rolled
    assert plan(Interval.parse("90s"), (MINUTE,)) is None


def test_flat_parts_give_no_prices_to_a_trading_bucket() -> None:
    parts = series(5, flat_every=2, open_last=False)  # parts 1 and 3 are flat
    flat_first = [parts[1], parts[2], parts[3], parts[4]]
    rolled = fold(flat_first, FIVE, LATER)
    traded = [p for p in flat_first if p.trades]
    assert rolled.open == traded[0].open
    assert rolled.close == traded[-1].close
    assert rolled.high == max(p.high for p in traded)
    assert rolled.low == min(p.low for p in traded)
    assert rolled.first_trade_id == traded[0].first_trade_id
    assert rolled.last_trade_id == traded[-1].last_trade_id
    assert rolled.volume == sum(p.volume for p in flat_first)
    assert rolled.quote_volume == sum(p.quote_volume for p in flat_first)
    assert rolled.trades == sum(p.trades for p in flat_first)


def test_a_bucket_of_flat_parts_is_flat() -> None:
    flat = series(4, flat_every=1, open_last=False)
    rolled = fold(flat, FIVE, LATER)
    assert rolled.trades == 0
    assert rolled.volume == 0
    assert rolled.first_trade_id is None
    assert rolled.open == rolled.high == rolled.low == rolled.close == flat[0].open


def test_parts_at_different_scales_sum_exactly() -> None:
    parts = series(10, flat_every=0, open_last=False)  # the second half has finer scales
    rolled = list(roll_up(parts, Interval.parse("10m"), LATER))
    assert len(rolled) == 1
    assert rolled[0].price_scale == max(p.price_scale for p in parts)
    assert rolled[0].volume == sum(p.volume for p in parts)
    assert rolled[0].taker_buy_volume == sum(p.taker_buy_volume for p in parts)


def test_status_and_revision_follow_the_parts() -> None:
    parts = series(5, flat_every=0, open_last=False)
    closed = [msgspec.structs.replace(p, status=CandleStatus.CLOSED, revision=0) for p in parts]
    assert fold(closed, FIVE, LATER).status is CandleStatus.CLOSED
    revised = [
        *closed[:4],
        msgspec.structs.replace(closed[4], revision=2, status=CandleStatus.REVISED),
    ]
    assert (fold(revised, FIVE, LATER).status, fold(revised, FIVE, LATER).revision) == (
        CandleStatus.REVISED,
        2,
    )
    opened = [*closed[:4], msgspec.structs.replace(closed[4], status=CandleStatus.OPEN)]
    assert fold(opened, FIVE, LATER).status is CandleStatus.OPEN
    not_over = fold(closed[:3], FIVE, now_ns=T0 + 4 * MINUTE.ns)
    assert not_over.status is CandleStatus.OPEN


def test_a_rolled_candle_is_flagged_when_any_part_is() -> None:
    parts = series(10, open_last=False)
    assert not any(p.gap for p in parts)
    one = [*parts[:7], msgspec.structs.replace(parts[7], gap=True), *parts[8:]]
    rolled = list(roll_up(one, FIVE, LATER))
    assert [c.gap for c in rolled] == [False, True]
    flat = series(5, flat_every=1, open_last=False)  # a flat part over a gap flags it too
    flagged_flat = [msgspec.structs.replace(flat[0], gap=True), *flat[1:]]
    assert fold(flagged_flat, FIVE, LATER).gap


def test_roll_up_keeps_the_input_order_either_way() -> None:
    parts = series(23, open_last=False)
    forward = list(roll_up(parts, FIVE, LATER))
    backward = list(roll_up(reversed(parts), FIVE, LATER))
    assert [c.open_time for c in forward] == [T0 + k * FIVE.ns for k in range(5)]
    assert backward == forward[::-1]


def test_parts_of_two_buckets_cannot_fold_into_one() -> None:
    parts: list[Candle] = series(6, open_last=False)
    with pytest.raises(ValueError, match="one bucket"):
        fold(parts, FIVE, LATER)
