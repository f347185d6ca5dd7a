from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from core.candles import Candle, CandleStatus
from core.instruments import make_instrument, validate_instrument, venue_of
from core.intervals import DEFAULT_INTERVALS, Interval, parse_intervals
from core.numbers import divide_rounded, format_fixed, scale_of, to_decimal, to_raw
from core.ticks import Side, Tick, TickBatch
from tests.core.factories import SECOND, T0, tick


def test_instrument_ids_are_venue_colon_symbol_in_upper_case() -> None:
    assert validate_instrument("KRAKEN:XBTUSDT") == "KRAKEN:XBTUSDT"
    assert make_instrument("coinbase", "btc-usd") == "COINBASE:BTC-USD"
    assert venue_of("BINANCE:BTCUSDT") == "BINANCE"
    for bad in ("BTCUSDT", "binance:btcusdt", "A:B:C", ":X", "X:"):
        with pytest.raises(ValueError, match="VENUE:SYMBOL"):
            validate_instrument(bad)


def test_intervals_parse_to_canonical_labels_and_sort_finest_first() -> None:
    assert Interval.parse("60s") == Interval.parse("1m")
    assert Interval.parse("120m").label == "2h"
    assert [i.label for i in DEFAULT_INTERVALS] == ["1s", "1m", "5m", "15m", "1h", "4h", "1d"]
    assert [i.label for i in parse_intervals(["1h", "1m", "60s"])] == ["1m", "1h"]
    day = Interval.parse("1d")
    assert day.bucket_start(T0 + 5 * 3600 * SECOND) == T0  # days open at 00:00 UTC
    for bad in ("0m", "1w", "m", "1.5h", ""):
        with pytest.raises(ValueError, match="bad interval"):
            Interval.parse(bad)


def test_fixed_point_conversions_are_exact() -> None:
    assert scale_of(Decimal("87648.21000000")) == 2
    assert to_raw(Decimal("0.00100000"), 5) == 100
    assert to_decimal(8764821, 2) == Decimal("87648.21")
    assert format_fixed(150, 2) == "1.50"
    assert format_fixed(-5, 3) == "-0.005"
    assert format_fixed(7, 0) == "7"
    with pytest.raises(ValueError, match="decimal places"):
        to_raw(Decimal("0.001"), 2)
    assert divide_rounded(5, 2) == 2  # half to even
    assert divide_rounded(7, 2) == 4
    assert divide_rounded(10, 3) == 3


def test_tick_refuses_broken_invariants() -> None:
    good = tick(1, 0)
    assert good.side is Side.BUY
    with pytest.raises(ValueError, match="price must be a positive"):
        Tick("TEST:ABC", 1, Decimal(0), Decimal(1), Side.BUY, T0, T0)
    with pytest.raises(ValueError, match="size must be a positive"):
        Tick("TEST:ABC", 1, Decimal(1), Decimal(-1), Side.BUY, T0, T0)
    with pytest.raises(ValueError, match="ts_event"):
        Tick("TEST:ABC", 1, Decimal(1), Decimal(1), Side.BUY, 0, T0)
    with pytest.raises(ValueError, match="trade_id"):
        Tick("TEST:ABC", -1, Decimal(1), Decimal(1), Side.BUY, T0, T0)
    with pytest.raises(ValueError, match="VENUE:SYMBOL"):
        Tick("nope", 1, Decimal(1), Decimal(1), Side.BUY, T0, T0)


def test_tick_batch_round_trips_ticks_at_the_finest_scale() -> None:
    ticks = [tick(1, 0, "100.5", "0.25"), tick(2, 1, "99", "3", Side.SELL)]
    batch = TickBatch.from_ticks(ticks)
    assert (batch.price_scale, batch.size_scale) == (1, 2)
    assert batch.price.tolist() == [1005, 990]
    assert batch.ticks() == ticks
    finer = batch.with_scales(3, 4)
    assert finer.ticks() == ticks


def test_tick_batch_names_the_first_bad_row() -> None:
    batch = TickBatch.from_ticks([tick(1, 0), tick(2, 1)])
    with pytest.raises(ValueError, match="row 1: price must be positive"):
        TickBatch(
            batch.instrument, 0, 0, batch.trade_id, np.array([5, -5]), batch.size,
            batch.side, batch.ts_event, batch.ts_recv, batch.trades,
        )  # fmt: skip
    with pytest.raises(ValueError, match="column price must be int64"):
        TickBatch(
            batch.instrument, 0, 0, batch.trade_id, batch.price.astype(float), batch.size,
            batch.side, batch.ts_event, batch.ts_recv, batch.trades,
        )  # fmt: skip
    with pytest.raises(ValueError, match="one instrument"):
        TickBatch.from_ticks([tick(1, 0), tick(2, 0, instrument="TEST:XYZ")])


def _candle(**changes: object) -> Candle:
    fields: dict[str, object] = {
        "instrument": "TEST:ABC", "interval": Interval.parse("1m"), "open_time": T0,
        "price_scale": 2, "size_scale": 3, "open_raw": 100, "high_raw": 120, "low_raw": 90,
        "close_raw": 110, "volume_raw": 5000, "quote_volume_raw": 500000,
        "taker_buy_volume_raw": 1000, "trades": 3, "first_trade_id": 1, "last_trade_id": 3,
        "revision": 0, "status": CandleStatus.CLOSED,
    }  # fmt: skip
    fields.update(changes)
    return Candle(**fields)  # type: ignore[arg-type]


def test_candle_exposes_exact_decimals_and_vwap() -> None:
    candle = _candle()
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("1.00"), Decimal("1.20"), Decimal("0.90"), Decimal("1.10"),
    )  # fmt: skip
    assert candle.volume == Decimal("5.000")
    assert candle.quote_volume == Decimal("5.00000")
    assert candle.vwap == Decimal("1.000000")
    assert candle.close_time == T0 + 60 * SECOND


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"high_raw": 105}, "between low and high"),
        ({"low_raw": 105}, "between low and high"),
        ({"taker_buy_volume_raw": 6000}, "taker-buy"),
        ({"trades": 0}, "volume exactly when"),
        ({"open_time": T0 + 1}, "aligned"),
    ],
)
def test_candle_refuses_broken_invariants(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _candle(**changes)
