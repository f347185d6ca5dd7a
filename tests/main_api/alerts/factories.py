"""Small builders for alert tests: specs, tick batches from price lists, candles."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from core.alerts import AlertSpec, Arming, Condition, Source
from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.numbers import to_raw
from core.ticks import Side, Tick, TickBatch

INSTRUMENT = "TEST:BTCUSD"
T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
MINUTE = Interval.parse("1m")


def alert(
    alert_id: str,
    condition: str,
    threshold: str,
    *,
    arming: str = "once",
    cooldown_s: int = 0,
    window_s: int = 0,
    expires_at: int | None = None,
    source: str = "ticks",
    interval: str | None = None,
    instrument: str = INSTRUMENT,
) -> AlertSpec:
    return AlertSpec(
        alert_id=alert_id,
        account=1,
        instrument=instrument,
        condition=Condition(condition),
        threshold=Decimal(threshold),
        source=Source(source),
        interval=interval,
        window_s=window_s,
        arming=Arming(arming),
        cooldown_s=cooldown_s,
        expires_at=expires_at,
    )


def ticks(
    prices: Sequence[str | int],
    *,
    first_id: int = 1,
    start: int = T0,
    step: int = SECOND,
    stamps: Sequence[int] | None = None,
    instrument: str = INSTRUMENT,
) -> TickBatch:
    """One tick per price, trade ids from ``first_id``, one ``step`` apart from ``start``
    (or at ``stamps``)."""
    if stamps is None:
        stamps = [start + i * step for i in range(len(prices))]
    return TickBatch.from_ticks(
        [
            Tick(
                instrument=instrument,
                trade_id=first_id + i,
                price=Decimal(str(price)),
                size=Decimal("1"),
                side=Side.BUY,
                ts_event=stamps[i],
                ts_recv=stamps[i],
            )
            for i, price in enumerate(prices)
        ]
    )


def candle(
    minute: int,
    close: str,
    *,
    revision: int = 0,
    status: CandleStatus = CandleStatus.CLOSED,
    gap: bool = False,
    instrument: str = INSTRUMENT,
    scale: int = 2,
) -> Candle:
    """A 1m candle opening ``minute`` minutes after T0's minute, open = high = low = close."""
    raw = to_raw(Decimal(close), scale)
    open_time = (T0 // MINUTE.ns + minute) * MINUTE.ns
    return Candle(
        instrument,
        MINUTE,
        open_time,
        scale,
        0,
        raw,
        raw,
        raw,
        raw,
        1,
        raw,
        0,
        1,
        None,
        None,
        revision,
        status,
        gap,
    )
