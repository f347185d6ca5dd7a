"""Cursors walk a long range page by page: no gaps, no repeats, in every format."""

from __future__ import annotations

import io

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charting.rollup import roll_up
from core.intervals import Interval
from storage import PostgresStore
from tests.charting.conftest import NOW, MakeClient
from tests.charting.data import (
    INSTRUMENT,
    MINUTE,
    T0,
    Normal,
    from_arrow,
    from_json,
    normal,
    series,
    ticks,
)


async def walk(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> list[httpx.Response]:
    """Every page, following ``Link: rel=next`` from the first."""
    pages = [await client.get(path, params=params)]
    while "next" in pages[-1].links:
        assert pages[-1].status_code == 200, pages[-1].text
        pages.append(await client.get(pages[-1].links["next"]["url"]))
        assert len(pages) < 1000
    assert pages[-1].status_code == 200, pages[-1].text
    return pages


@pytest.mark.parametrize(
    ("interval", "limit", "minutes"), [("1m", 97, 1600), ("1m", 1, 40), ("15m", 7, 1600)]
)
async def test_cursors_walk_a_long_range_without_gaps_or_repeats(
    store: PostgresStore, make_client: MakeClient, interval: str, limit: int, minutes: int
) -> None:
    candles = series(1500, gap_every=13)
    await store.write(candles=candles)
    target = Interval.parse(interval)
    end = T0 + minutes * MINUTE.ns
    rolled = candles if target == MINUTE else list(roll_up(candles, target, NOW))
    expected = [normal(c) for c in rolled if c.open_time < end]
    client = make_client(intervals=(MINUTE,), chunk_rows=50)
    params = {"instrument": INSTRUMENT, "interval": interval, "start": "2026-01-01T00:00:00Z",
              "end": str(end // 10**6), "limit": str(limit)}  # fmt: skip
    for fmt in ("json", "arrow"):
        pages = await walk(client, "/v1/candles", params | {"format": fmt})
        found: list[Normal] = []
        for page in pages:
            rows = from_json(page.json()) if fmt == "json" else from_arrow(page.content)
            assert 0 < len(rows) <= limit
            found.extend(rows)
        assert found == expected, fmt
        assert len(pages) == -(-len(expected) // limit)


async def test_the_json_body_carries_the_next_link_and_cursor(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    await store.write(candles=series(10))
    params = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026-01-01", "limit": "4"}
    first = await client.get("/v1/candles", params=params)
    body = first.json()
    assert body["next"] == first.links["next"]["url"]
    assert body["next_cursor"] in body["next"]
    second = await client.get("/v1/candles", params=params | {"cursor": body["next_cursor"]})
    assert second.json()["candles"][0]["open_time"] == "2026-01-01T00:04:00Z"
    last = await client.get("/v1/candles", params=params | {"limit": "100"})
    assert last.json()["next"] is None
    assert "link" not in last.headers


async def test_tick_cursors_split_ties_of_event_time_exactly(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    batch = ticks(500, same_time=3)
    await store.write(ticks=[batch])
    order = sorted(
        range(len(batch)), key=lambda i: (int(batch.ts_event[i]), int(batch.trade_id[i]))
    )
    expected = [int(batch.trade_id[i]) for i in order]
    params = {"instrument": INSTRUMENT, "start": str(T0 // 10**6), "limit": "32"}
    for fmt in ("json", "csv", "arrow", "parquet"):
        pages = await walk(client, "/v1/ticks", params | {"format": fmt})
        found: list[int] = []
        for page in pages:
            if fmt == "json":
                found += [t["trade_id"] for t in page.json()["ticks"]]
            elif fmt == "csv":
                found += [int(line.split(",")[1]) for line in page.text.splitlines()[1:]]
            else:
                table = (
                    pa.ipc.open_stream(page.content).read_all()
                    if fmt == "arrow"
                    else pq.read_table(io.BytesIO(page.content))
                )
                found += table.column("trade_id").to_pylist()
        assert found == expected, fmt
        assert len(pages) == -(-len(expected) // 32)
