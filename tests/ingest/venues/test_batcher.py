"""Micro-batches: per instrument, closed by size or by the age of their first tick."""

from __future__ import annotations

from decimal import Decimal

from core.ticks import Side, Tick
from ingest.venues.batcher import MicroBatcher

MS = 1_000_000
T0 = 1_800_000_000_000_000_000


def tick(trade_id: int, instrument: str = "KRAKEN:BTC/USD") -> Tick:
    return Tick(instrument, trade_id, Decimal(100), Decimal(1), Side.SELL, T0, T0)


def test_a_batch_closes_when_it_is_full_and_keeps_the_arrival_order() -> None:
    batcher = MicroBatcher(batch_max=3, wait_ns=50 * MS)
    assert batcher.add(tick(3), T0) is None
    assert batcher.add(tick(1), T0) is None
    full = batcher.add(tick(2), T0)
    assert full is not None
    assert [t.trade_id for t in full] == [3, 1, 2]
    assert batcher.next_due() is None


def test_a_batch_closes_once_its_first_tick_has_waited_long_enough() -> None:
    batcher = MicroBatcher(batch_max=100, wait_ns=50 * MS)
    batcher.add(tick(1), T0)
    batcher.add(tick(2), T0 + 40 * MS)
    assert batcher.next_due() == T0 + 50 * MS
    assert batcher.due(T0 + 49 * MS) == []
    (batch,) = batcher.due(T0 + 50 * MS)
    assert [t.trade_id for t in batch] == [1, 2]


def test_instruments_are_batched_apart() -> None:
    batcher = MicroBatcher(batch_max=2, wait_ns=50 * MS)
    batcher.add(tick(1, "KRAKEN:BTC/USD"), T0)
    assert batcher.add(tick(1, "KRAKEN:ETH/USD"), T0) is None
    assert batcher.take("KRAKEN:ETH/USD") == [tick(1, "KRAKEN:ETH/USD")]
    assert batcher.take("KRAKEN:ETH/USD") is None
    assert batcher.take_all() == [[tick(1, "KRAKEN:BTC/USD")]]
