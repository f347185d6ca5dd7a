"""The candle rules of docs/candles.md, one example each."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

import pytest

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import Interval, parse_intervals
from core.rejects import RejectReason
from core.ticks import Side
from tests.core.factories import SECOND, T0, tick

ONE_MINUTE = parse_intervals(["1m"])


def engine(**settings: object) -> CandleEngine:
    defaults: dict[str, object] = {"intervals": ONE_MINUTE, "throttle_ns": 0}
    defaults.update(settings)
    return CandleEngine(EngineConfig(**defaults))  # type: ignore[arg-type]


def minute(candles: list[Candle], index: int) -> list[Candle]:
    return [c for c in candles if c.open_time == T0 + index * 60 * SECOND]


def test_open_and_close_follow_event_time_then_trade_id_not_arrival() -> None:
    eng = engine()
    ticks = [
        tick(3, 30, "103"), tick(1, 10, "101"), tick(4, 30, "104"), tick(2, 10, "102"),
        tick(5, 50, "99", "2", Side.SELL),
    ]  # fmt: skip
    out = eng.feed_ticks(ticks)
    out.extend(eng.flush())
    final = out.candles[-1]
    assert final.status is CandleStatus.CLOSED
    assert (final.open, final.high, final.low, final.close) == tuple(
        Decimal(p) for p in ("101", "104", "99", "99")
    )
    assert (final.first_trade_id, final.last_trade_id, final.trades) == (1, 5, 5)
    assert final.volume == Decimal(6)
    assert final.taker_buy_volume == Decimal(4)
    assert final.quote_volume == Decimal(101 + 102 + 103 + 104 + 2 * 99)
    assert final.vwap == (final.quote_volume / final.volume).quantize(Decimal("0.0001"))


def test_a_bucket_closes_once_the_clock_passes_its_end_by_the_lateness() -> None:
    eng = engine(lateness_ns=2 * SECOND)
    first = eng.feed_ticks([tick(1, 10), tick(2, 61)])
    assert [c.status for c in minute(first.candles, 0)] == [CandleStatus.OPEN]
    later = eng.feed_ticks([tick(3, 62)])
    closed = minute(later.candles, 0)
    assert [(c.status, c.revision, c.trades) for c in closed] == [(CandleStatus.CLOSED, 1, 1)]


def test_a_late_tick_within_the_horizon_revises_its_closed_candle() -> None:
    eng = engine(lateness_ns=0, horizon_ns=600 * SECOND)
    eng.feed_ticks([tick(1, 10, "100")])
    eng.feed_ticks([tick(2, 70, "100")])
    out = eng.feed_ticks([tick(3, 20, "120", "2")])
    (revised,) = minute(out.candles, 0)
    assert revised.status is CandleStatus.REVISED
    assert revised.revision == 2  # open, then closed, then this
    assert (revised.high, revised.volume, revised.trades) == (Decimal(120), Decimal(3), 2)
    assert out.rejected == []


def test_a_tick_beyond_the_horizon_is_rejected_with_a_reason() -> None:
    eng = engine(lateness_ns=0, horizon_ns=60 * SECOND)
    eng.feed_ticks([tick(1, 10), tick(2, 200)])
    out = eng.feed_ticks([tick(3, 20, "500")])
    assert out.candles == []
    (rejected,) = out.rejected
    assert rejected.reason is RejectReason.LATE_BEYOND_HORIZON
    assert rejected.tick.trade_id == 3
    assert "180.000s behind" in rejected.detail


def test_horizon_is_judged_in_arrival_order_within_a_batch() -> None:
    eng = engine(lateness_ns=0, horizon_ns=60 * SECOND)
    out = eng.feed_ticks([tick(1, 10), tick(2, 200), tick(3, 20)])
    assert [r.tick.trade_id for r in out.rejected] == [3]


def test_repeated_trade_ids_change_nothing() -> None:
    eng = engine()
    first = eng.feed_ticks([tick(1, 10, "100"), tick(2, 11, "101")])
    again = eng.feed_ticks([tick(2, 11, "999"), tick(1, 10, "1"), tick(2, 11, "5")])
    assert again.candles == []
    assert again.duplicates == 3
    assert first.candles[-1].trades == 2


def test_fill_makes_flat_candles_at_the_previous_close_and_skip_makes_none() -> None:
    ticks = [tick(1, 10, "100"), tick(2, 20, "105"), tick(3, 190, "90")]
    skip, fill = engine(), engine(empty=EmptyPolicy.FILL)
    skipped = skip.feed_ticks(ticks).candles + skip.flush().candles
    filled = fill.feed_ticks(ticks).candles + fill.flush().candles
    assert {c.open_time for c in skipped} == {T0, T0 + 180 * SECOND}
    flats = [c for c in filled if c.trades == 0]
    assert [c.open_time for c in flats] == [T0 + 60 * SECOND, T0 + 120 * SECOND]
    for flat in flats:
        assert flat.open == flat.high == flat.low == flat.close == Decimal(105)
        assert (flat.volume, flat.vwap, flat.first_trade_id) == (Decimal(0), Decimal(0), None)


def test_fill_rule_can_be_chosen_per_venue() -> None:
    eng = engine(empty_by_venue=MappingProxyType({"KRAKEN": EmptyPolicy.FILL}))
    ticks = [tick(1, 10), tick(2, 130)]
    kraken = [tick(1, 10, instrument="KRAKEN:X"), tick(2, 130, instrument="KRAKEN:X")]
    out = eng.feed_ticks(ticks + kraken)
    out.extend(eng.flush())
    assert {c.instrument for c in out.candles if c.trades == 0} == {"KRAKEN:X"}


def test_a_late_tick_in_a_filled_gap_revises_the_flat_candles_after_it() -> None:
    eng = engine(empty=EmptyPolicy.FILL, lateness_ns=0)
    eng.feed_ticks([tick(1, 10, "100"), tick(2, 250, "110")])
    out = eng.feed_ticks([tick(3, 70, "120")])
    revised = {(c.open_time - T0) // (60 * SECOND): c for c in out.candles}
    assert sorted(revised) == [1, 2, 3]
    assert (revised[1].close, revised[1].trades) == (Decimal(120), 1)
    assert (revised[2].open, revised[2].close, revised[2].trades) == (Decimal(120), Decimal(120), 0)
    assert all(c.status is CandleStatus.REVISED for c in out.candles)


def test_idle_instruments_close_on_the_wall_clock() -> None:
    eng = engine(lateness_ns=2 * SECOND, emit_open=False)
    eng.feed_ticks([tick(1, 10)])
    assert eng.advance(T0 + 30 * SECOND).candles == []
    out = eng.advance(T0 + 62 * SECOND)
    assert [(c.status, c.open_time) for c in out.candles] == [(CandleStatus.CLOSED, T0)]


def test_open_updates_are_throttled_per_instrument_and_interval() -> None:
    eng = engine(throttle_ns=SECOND)
    assert len(eng.feed_ticks([tick(1, 1)], now_ns=T0 + SECOND).candles) == 1
    assert eng.feed_ticks([tick(2, 1.2)], now_ns=T0 + 3 * SECOND // 2).candles == []
    assert eng.advance(T0 + 19 * SECOND // 10).candles == []
    held = eng.advance(T0 + 2 * SECOND)
    assert [(c.status, c.trades) for c in held.candles] == [(CandleStatus.OPEN, 2)]


def test_a_restart_is_no_idle_time_and_a_clock_set_back_holds_no_update() -> None:
    hours = 3 * 3600 * SECOND
    eng = engine(lateness_ns=2 * SECOND, throttle_ns=SECOND)
    eng.feed_ticks([tick(1, 10)], now_ns=T0 + 10 * SECOND)
    eng = CandleEngine.restore(eng.checkpoint(), eng.config)
    eng.restarted(T0 + hours)  # stopped for three hours
    assert eng.advance(T0 + hours + SECOND).candles == []  # the minute is still open ...
    late = eng.feed_ticks([tick(2, 20, "101")], now_ns=T0 + hours + 2 * SECOND)
    assert late.rejected == []  # ... and takes the trade the feed sends for the time stopped
    assert [(c.status, c.trades) for c in late.candles] == [(CandleStatus.OPEN, 2)]

    # the first run's wall clock was three hours ahead
    eng = engine(throttle_ns=SECOND)
    eng.feed_ticks([tick(1, 10)], now_ns=T0 + hours)
    eng = CandleEngine.restore(eng.checkpoint(), eng.config)
    eng.restarted(T0 + 20 * SECOND)
    update = eng.feed_ticks([tick(2, 21, "101")], now_ns=T0 + 21 * SECOND)
    assert [(c.status, c.trades) for c in update.candles] == [(CandleStatus.OPEN, 2)]


def test_final_only_emits_no_open_candles() -> None:
    eng = engine(emit_open=False)
    assert eng.feed_ticks([tick(1, 1), tick(2, 2)]).candles == []
    assert [c.status for c in eng.flush().candles] == [CandleStatus.CLOSED]


def test_all_intervals_are_built_from_one_batch() -> None:
    eng = CandleEngine(EngineConfig(throttle_ns=0, emit_open=False))
    eng.feed_ticks([tick(1, 1), tick(2, 3601)])
    labels = sorted({c.interval.label for c in eng.flush().candles})
    assert labels == sorted(i.label for i in EngineConfig().intervals)


def test_a_finer_price_scale_later_rescales_what_was_built() -> None:
    eng = engine(emit_open=False)
    eng.feed_ticks([tick(1, 1, "100", "1")])
    eng.feed_ticks([tick(2, 2, "100.125", "0.5")])
    (candle,) = eng.flush().candles
    assert (candle.high, candle.volume) == (Decimal("100.125"), Decimal("1.5"))
    assert candle.quote_volume == Decimal("150.0625")


def test_checkpoint_restore_refuses_foreign_bytes_and_other_intervals() -> None:
    eng = engine()
    eng.feed_ticks([tick(1, 1)])
    data = eng.checkpoint()
    with pytest.raises(ValueError, match="intervals"):
        CandleEngine.restore(data, EngineConfig(intervals=(Interval.parse("1h"),)))
    with pytest.raises(ValueError, match="not an engine checkpoint"):
        CandleEngine.restore(b"\x00garbage", EngineConfig(intervals=ONE_MINUTE))


def test_config_refuses_unsorted_intervals_and_a_horizon_below_lateness() -> None:
    with pytest.raises(ValueError, match="sorted"):
        EngineConfig(intervals=tuple(reversed(parse_intervals(["1m", "1h"]))))
    with pytest.raises(ValueError, match="horizon"):
        EngineConfig(lateness_ns=10, horizon_ns=5)


def test_at_the_end_of_a_file_only_candles_it_covers_to_their_end_are_final() -> None:
    """A file whose last trade is at 00:12:30 (T0 is on the hour) closes 00:00-00:11 and
    leaves the 00:12 minute and the 00:00 hour open: the input stops inside them."""
    eng = engine(intervals=parse_intervals(["1m", "1h"]), emit_open=False)
    out = eng.feed_ticks([tick(i + 1, i * 60) for i in range(12)] + [tick(13, 12 * 60 + 30)])
    out.extend(eng.finish())
    final = {(c.interval.label, c.open_time): c.status for c in out.candles}
    minutes = {t: s for (label, t), s in final.items() if label == "1m"}
    assert minutes == {
        T0 + i * 60 * SECOND: CandleStatus.CLOSED if i < 12 else CandleStatus.OPEN
        for i in range(13)
    }
    assert final["1h", T0] is CandleStatus.OPEN
