"""``/v1/ticks``: the stored trades, exact, the same in every format."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from charting.tick_formats import TICK_FIELDS
from core.present.live import SIDES
from core.present.text import iso_utc
from storage import PostgresStore
from tests.charting.data import INSTRUMENT, T0, ticks


def _normal(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["instrument"],
        int(row["trade_id"]),
        Decimal(row["price"]),
        Decimal(row["size"]),
        row["side"],
        row["ts_event"],
        row["ts_recv"],
        int(row["trades"]),
    )


def _table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    assert tuple(table.column_names) == TICK_FIELDS
    event = [iso_utc(ns) for ns in table.column("ts_event").cast(pa.int64()).to_pylist()]
    recv = [iso_utc(ns) for ns in table.column("ts_recv").cast(pa.int64()).to_pylist()]
    rows = table.drop_columns(["ts_event", "ts_recv"]).to_pylist()
    return [
        _normal(row | {"ts_event": e, "ts_recv": r})
        for row, e, r in zip(rows, event, recv, strict=True)
    ]


async def test_every_format_returns_the_stored_ticks(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    batch = ticks(120)
    await store.write(ticks=[batch])
    in_order = sorted(batch.ticks(), key=lambda t: (t.ts_event, t.trade_id))
    expected = [
        (INSTRUMENT, t.trade_id, t.price, t.size, SIDES[int(t.side)], iso_utc(t.ts_event),
         iso_utc(t.ts_recv), t.trades)
        for t in in_order
    ]  # fmt: skip
    params = {"instrument": INSTRUMENT, "start": iso_utc(T0), "limit": "1000"}
    body = (await client.get("/v1/ticks", params=params)).json()
    assert [_normal(t) for t in body["ticks"]] == expected
    text = (await client.get("/v1/ticks", params=params | {"format": "csv"})).text
    assert [_normal(row) for row in csv.DictReader(io.StringIO(text))] == expected
    arrow = (await client.get("/v1/ticks", params=params | {"format": "arrow"})).content
    assert _table_rows(pa.ipc.open_stream(arrow).read_all()) == expected
    parquet = (await client.get("/v1/ticks", params=params | {"format": "parquet"})).content
    assert _table_rows(pq.read_table(io.BytesIO(parquet))) == expected


async def test_ticks_of_a_range_exclude_its_end(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    batch = ticks(30, same_time=1)
    await store.write(ticks=[batch])
    end = int(batch.ts_event[10])
    params = {"instrument": INSTRUMENT, "start": str(T0 // 10**6), "end": iso_utc(end)}
    body = (await client.get("/v1/ticks", params=params)).json()
    assert [t["ts_event"] for t in body["ticks"]] == [
        iso_utc(int(ns)) for ns in batch.ts_event[:10]
    ]
