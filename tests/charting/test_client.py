"""The Python client returns the same frame as a direct SQL query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from charting import ApiSettings, create_app
from charting.client import HistoryClient, HistoryError
from core.gaps import FeedGap, GapReason
from storage import PostgresReads, PostgresStore
from tests.charting.conftest import NOW
from tests.charting.data import INSTRUMENT, SECOND, T0, series, ticks
from web.server import ApiServer, serving

S = SECOND

CANDLE_SQL = """
SELECT instrument, interval, open_time, open, high, low, close, volume, quote_volume, trades,
       vwap, taker_buy_volume, first_trade_id, last_trade_id, status, revision, gap
FROM candles WHERE instrument = %s AND interval = '1m' AND open_time >= %s AND open_time < %s
ORDER BY open_time
"""
TICK_SQL = """
SELECT instrument, trade_id, price, size,
       CASE side WHEN 1 THEN 'buy' WHEN -1 THEN 'sell' ELSE 'unknown' END,
       ts_event_ns, ts_recv_ns, trades
FROM ticks WHERE instrument = %s ORDER BY ts_event_ns, trade_id
"""
CANDLE_SCHEMA = {
    "instrument": pl.String, "interval": pl.String, "open_time": pl.Datetime("ns", "UTC"),
    "open": Decimal, "high": Decimal, "low": Decimal, "close": Decimal, "volume": Decimal,
    "quote_volume": Decimal, "trades": pl.Int64, "vwap": Decimal, "taker_buy_volume": Decimal,
    "first_trade_id": pl.Int64, "last_trade_id": pl.Int64, "status": pl.String,
    "revision": pl.Int64, "gap": pl.Boolean,
}  # fmt: skip
"""The columns of :data:`CANDLE_SQL`, as the client's frames have them (in that order)."""


@pytest.fixture
async def server(history: PostgresReads) -> AsyncIterator[ApiServer]:
    app = create_app(history, ApiSettings(clock=lambda: NOW))
    async with serving(app) as running:
        yield running


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def sql_frame(url: str, query: str, args: tuple[Any, ...], schema: dict[str, Any]) -> pl.DataFrame:
    """Rows of ``query`` as a frame; each decimal column at its finest scale."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(query, args).fetchall()
    columns = list(zip(*rows, strict=True))
    data: dict[str, Any] = {}
    for (name, kind), values in zip(schema.items(), columns, strict=True):
        dtype = pl.Decimal(38, max(_places(v) for v in values)) if kind is Decimal else kind
        data[name] = pl.Series(name, list(values), dtype=dtype)
    return pl.DataFrame(data)


async def test_candles_come_back_as_the_database_holds_them(
    store: PostgresStore, server: ApiServer, migrated_database: str
) -> None:
    candles = series(250, gap_every=6, flag_every=5)
    await store.write(candles=candles)
    start, end = "2026-01-01T00:10:00Z", "2026-01-01T05:00:00Z"
    expected = sql_frame(migrated_database, CANDLE_SQL, (INSTRUMENT, start, end), CANDLE_SCHEMA)

    def fetch() -> pl.DataFrame:
        with HistoryClient(server.url, page_rows=37) as client:  # pages of 37: eight pages
            return client.candles(INSTRUMENT, "1m", start, end)

    frame = await asyncio.to_thread(fetch)
    assert frame.height == expected.height > 37 * 5
    assert 0 < frame["gap"].sum() < frame.height
    assert_frame_equal(frame, expected)


async def test_ticks_come_back_as_the_database_holds_them(
    store: PostgresStore, server: ApiServer, migrated_database: str
) -> None:
    await store.write(ticks=[ticks(300)])
    expected = sql_frame(
        migrated_database,
        TICK_SQL,
        (INSTRUMENT,),
        {"instrument": pl.String, "trade_id": pl.Int64, "price": Decimal, "size": Decimal,
         "side": pl.String, "ts_event": pl.Int64, "ts_recv": pl.Int64, "trades": pl.Int64},
    )  # fmt: skip
    expected = expected.with_columns(
        pl.col("ts_event").cast(pl.Datetime("ns", "UTC")),
        pl.col("ts_recv").cast(pl.Datetime("ns", "UTC")),
    )

    def fetch() -> pl.DataFrame:
        with HistoryClient(server.url, page_rows=64) as client:
            return client.ticks(INSTRUMENT, 0)

    assert_frame_equal(await asyncio.to_thread(fetch), expected)


async def test_feed_gaps_come_back_as_the_database_holds_them(
    store: PostgresStore, server: ApiServer
) -> None:
    gaps = [
        FeedGap(instrument=INSTRUMENT, start_ns=T0 + 5 * S + 123, end_ns=T0 + 65 * S,
                reason=GapReason.DISCONNECTED, detail="closed by the venue, code 1006",
                ts_recv=T0 + 66 * S),
        FeedGap(instrument=INSTRUMENT, start_ns=T0 + 3600 * S, end_ns=T0 + 3601 * S,
                reason=GapReason.SEQUENCE, detail='trade ids 7..9 "missing"'),
    ]  # fmt: skip
    await store.write(candles=series(3), gaps=gaps)

    def fetch(start: str, end: str | None = None) -> pl.DataFrame:
        with HistoryClient(server.url, page_rows=1) as client:  # one page whatever the rows
            return client.gaps(INSTRUMENT, start, end)

    frame = await asyncio.to_thread(fetch, "2026-01-01")
    stamp = pl.Datetime("ns", "UTC")
    expected = pl.DataFrame(
        {
            "instrument": [INSTRUMENT, INSTRUMENT],
            "start": pl.Series([g.start_ns for g in gaps]).cast(stamp),
            "end": pl.Series([g.end_ns for g in gaps]).cast(stamp),
            "reason": ["disconnected", "sequence"],
            "detail": [g.detail for g in gaps],
            "noticed": pl.Series([T0 + 66 * S, None], dtype=pl.Int64).cast(stamp),
        }
    )
    assert_frame_equal(frame, expected)
    later = await asyncio.to_thread(fetch, "2026-01-01T00:01:05Z", "2026-01-02")
    assert_frame_equal(later, expected.slice(1))
    none = await asyncio.to_thread(fetch, "2026-01-02")
    assert none.height == 0
    assert none.schema == expected.schema


async def test_refusals_name_the_parameter(store: PostgresStore, server: ApiServer) -> None:
    await store.write(candles=series(3))

    def fetch() -> None:
        with HistoryClient(server.url) as client:
            assert client.instruments() == [INSTRUMENT]
            client.candles(INSTRUMENT, "1x", "2026-01-01")

    with pytest.raises(HistoryError) as raised:
        await asyncio.to_thread(fetch)
    assert (raised.value.status, raised.value.parameter) == (400, "interval")
