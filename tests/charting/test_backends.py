"""The history API runs on any store's reads: over the memory store it answers every request
with the bytes it gives over PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from charting import ApiSettings, create_app
from core.gaps import FeedGap, GapReason
from storage import (
    HistoryReads,
    MarketDataStore,
    MemoryReads,
    MemoryStore,
    PostgresReads,
    PostgresStore,
)
from tests.charting.conftest import NOW
from tests.charting.data import INSTRUMENT, MINUTE, SECOND, T0, series, ticks

SEC = T0 // SECOND
START = "start=2026-01-01T00:00:00Z"
REQUESTS = [
    "/v1/instruments",
    *(f"/v1/candles?instrument={INSTRUMENT}&interval=1m&format={fmt}&limit=40&{START}"
      for fmt in ("json", "csv", "arrow", "parquet")),
    f"/v1/candles?instrument={INSTRUMENT}&interval=1m&limit=1000&format=json&{START}",
    f"/v1/candles?instrument={INSTRUMENT}&interval=1m&limit=30&start=2026-01-01T00:10:00Z",
    *(f"/v1/candles?instrument={INSTRUMENT}&interval=5m&format={fmt}&limit=7&{START}"
      for fmt in ("json", "csv", "arrow")),
    *(f"/v1/ticks?instrument={INSTRUMENT}&limit=25&format={fmt}&{START}"
      for fmt in ("json", "csv", "arrow", "parquet")),
    *(f"/v1/gaps?instrument={INSTRUMENT}&format={fmt}&{START}" for fmt in ("json", "csv")),
    f"/udf/history?symbol={INSTRUMENT}&resolution=1&from={SEC}&to={SEC + 3600}",
    f"/udf/history?symbol={INSTRUMENT}&resolution=1&countback=9&to={SEC + 3600}",
    f"/udf/history?symbol={INSTRUMENT}&resolution=10&countback=4&to={SEC + 3600}",
    f"/udf/history?symbol={INSTRUMENT}&resolution=1&from={SEC + 86400}&to={SEC + 90000}",
    f"/udf/symbols?symbol={INSTRUMENT}",
    "/udf/search?query=BTC",
    "/udf/config",
    f"/v1/candles?instrument=TEST:NONE&interval=1m&{START}",
]  # fmt: skip
"""Every read of the API: each format of stored and rolled candles, pages with a next page,
ticks, gaps, UDF (ranges, countback, rolled, empty) and an unknown instrument."""


async def stock(store: MarketDataStore) -> None:
    candles = series(120, flag_every=11, gap_every=13)
    await store.write([ticks(60)], candles[:100])
    await store.write(candles=candles[100:])  # a later write: the open candle among them
    await store.write(
        gaps=[FeedGap(instrument=INSTRUMENT, start_ns=T0 + 60 * SECOND, end_ns=T0 + MINUTE.ns * 3,
                      reason=GapReason.DISCONNECTED, detail="reset", ts_recv=T0 + 200 * SECOND)]
    )  # fmt: skip


@pytest.fixture
async def memory_reads() -> HistoryReads:
    memory = MemoryStore()
    await stock(memory)
    return MemoryReads(memory)


@pytest.fixture
async def postgres_reads(migrated_database: str) -> AsyncIterator[HistoryReads]:
    async with PostgresStore.open(migrated_database) as store:
        await stock(store)
    async with PostgresReads.open(migrated_database) as reads:
        yield reads


async def answers(reads: HistoryReads, chunk_rows: int) -> list[tuple[int, str, bytes]]:
    settings = ApiSettings(clock=lambda: NOW, chunk_rows=chunk_rows, intervals=(MINUTE,))
    transport = httpx.ASGITransport(app=create_app(reads, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://history.test") as client:
        found = []
        for url in REQUESTS:
            response = await client.get(url)
            found.append((response.status_code, response.headers["content-type"], response.content))
        return found


@pytest.mark.parametrize("chunk_rows", [16, 5000])
async def test_the_api_over_the_memory_store_answers_as_over_postgres(
    memory_reads: HistoryReads, postgres_reads: HistoryReads, chunk_rows: int
) -> None:
    memory = await answers(memory_reads, chunk_rows)
    postgres = await answers(postgres_reads, chunk_rows)
    assert [status for status, _, _ in postgres] == [200] * (len(REQUESTS) - 1) + [404]
    for url, mine, theirs in zip(REQUESTS, memory, postgres, strict=True):
        assert mine == theirs, url
