"""Candles and ticks for the history API tests, and decoders of every response format."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from charting.candle_formats import CANDLE_FIELDS
from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.numbers import to_raw
from core.ticks import TickBatch

SECOND = 1_000_000_000
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z
MINUTE = Interval.parse("1m")
INSTRUMENT = "TEST:BTCUSD"

Normal = tuple[Any, ...]
"""A candle as comparable values, in :data:`CANDLE_FIELDS` order (decimals as Decimal)."""


def series(
    n: int,
    *,
    interval: Interval = MINUTE,
    start: int = T0,
    instrument: str = INSTRUMENT,
    seed: int = 1,
    flat_every: int = 7,
    gap_every: int = 0,
    flag_every: int = 0,
    open_last: bool = True,
) -> list[Candle]:
    """A seeded random walk of ``n`` candles: every ``flat_every``-th is a flat fill candle,
    every ``gap_every``-th bucket is skipped, every ``flag_every``-th candle is flagged as
    over a feed gap, the scales get finer half way, some candles are revised, and the last
    is still open."""
    rng = random.Random(seed)
    candles: list[Candle] = []
    close = Decimal("87000.50")
    k = 0
    while len(candles) < n:
        bucket = start + k * interval.ns
        k += 1
        if gap_every and k % gap_every == 0:
            continue
        fine = len(candles) >= n // 2
        ps, ss = (4, 8) if fine else (2, 5)
        quantum = Decimal(1).scaleb(-ps)
        last = len(candles) == n - 1
        status = CandleStatus.OPEN if last and open_last else CandleStatus.CLOSED
        flagged = bool(flag_every) and len(candles) % flag_every == flag_every - 1
        if flat_every and len(candles) % flat_every == flat_every - 1:
            raw = to_raw(close, ps)
            flat = Candle(
                instrument, interval, bucket, ps, ss, raw, raw, raw, raw,
                volume_raw=0, quote_volume_raw=0, taker_buy_volume_raw=0, trades=0,
                first_trade_id=None, last_trade_id=None, revision=0, status=status,
                gap=flagged,
            )  # fmt: skip
            candles.append(flat)
            continue
        open_ = close + Decimal(rng.randint(-300, 300)) * quantum
        close = open_ + Decimal(rng.randint(-3000, 3000)) * quantum
        high = max(open_, close) + Decimal(rng.randint(0, 500)) * quantum
        low = min(open_, close) - Decimal(rng.randint(0, 500)) * quantum
        volume = Decimal(rng.randint(1, 10**7)).scaleb(-ss)
        taker = (volume * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal(1).scaleb(-ss))
        quote = (volume * (low + high) / 2).quantize(Decimal(1).scaleb(-(ps + ss)))
        first_id = 10_000 + len(candles) * 100
        revised = rng.random() < 0.1
        candles.append(
            Candle(
                instrument, interval, bucket, ps, ss,
                to_raw(open_, ps), to_raw(high, ps), to_raw(low, ps), to_raw(close, ps),
                to_raw(volume, ss), to_raw(quote, ps + ss), to_raw(taker, ss),
                rng.randint(1, 50), first_id, first_id + rng.randint(0, 99),
                1 if revised else 0,
                CandleStatus.REVISED if revised and not last else status,
                flagged,
            )
        )  # fmt: skip
    return candles


def ticks(
    n: int, *, start: int = T0, instrument: str = INSTRUMENT, same_time: int = 3
) -> TickBatch:
    """``n`` ticks, ``same_time`` of them at each event time (ties broken by trade id)."""
    rng = np.random.default_rng(7)
    ts = start + (np.arange(n, dtype=np.int64) // same_time) * 1_234_567
    return TickBatch(
        instrument,
        2,
        6,
        np.arange(n, dtype=np.int64)[::-1].copy() + 5_000,
        rng.integers(8_000_000, 9_000_000, n, dtype=np.int64),
        rng.integers(1, 10**6, n, dtype=np.int64),
        rng.integers(-1, 2, n, dtype=np.int64).astype(np.int8),
        ts,
        ts + 1_000_000,
        np.ones(n, dtype=np.int64),
    )


def normal(candle: Candle) -> Normal:
    """A candle as the values every format must show."""
    return (
        candle.instrument,
        candle.interval.label,
        candle.open_time,
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        candle.quote_volume,
        candle.trades,
        candle.vwap,
        candle.taker_buy_volume,
        candle.first_trade_id,
        candle.last_trade_id,
        candle.status.value,
        candle.revision,
        candle.gap,
    )


def _iso_ns(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * SECOND


def _from_texts(record: dict[str, Any]) -> Normal:
    def dec(name: str) -> Decimal:
        return Decimal(record[name])

    def opt(name: str) -> int | None:
        value = record[name]
        return None if value in (None, "") else int(value)

    return (
        record["instrument"],
        record["interval"],
        _iso_ns(record["open_time"]),
        *(dec(n) for n in ("open", "high", "low", "close", "volume", "quote_volume")),
        int(record["trades"]),
        dec("vwap"),
        dec("taker_buy_volume"),
        opt("first_trade_id"),
        opt("last_trade_id"),
        record["status"],
        int(record["revision"]),
        _flag(record["gap"]),
    )


def _flag(value: object) -> bool:
    """``gap`` as JSON (a boolean) or CSV (``true``/``false``) has it."""
    if isinstance(value, bool):
        return value
    assert value in ("true", "false"), value
    return value == "true"


def from_json(body: dict[str, Any]) -> list[Normal]:
    return [_from_texts(record) for record in body["candles"]]


def from_csv(text: str) -> list[Normal]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CANDLE_FIELDS
    return [_from_texts(row) for row in reader]


def from_table(table: pa.Table) -> list[Normal]:
    assert tuple(table.column_names) == CANDLE_FIELDS
    times = table.column("open_time").cast(pa.int64()).to_pylist()
    rows = table.drop_columns(["open_time"]).to_pylist()
    return [
        (
            row["instrument"], row["interval"], ns,
            row["open"], row["high"], row["low"], row["close"], row["volume"],
            row["quote_volume"], row["trades"], row["vwap"], row["taker_buy_volume"],
            row["first_trade_id"], row["last_trade_id"], row["status"], row["revision"],
            row["gap"],
        )
        for row, ns in zip(rows, times, strict=True)
    ]  # fmt: skip


def from_arrow(data: bytes) -> list[Normal]:
    return from_table(pa.ipc.open_stream(data).read_all())


def from_parquet(data: bytes) -> list[Normal]:
    return from_table(pq.read_table(io.BytesIO(data)))
