"""Every format returns the same candles for the same query, stored or rolled up, flags over
feed gaps included."""

from __future__ import annotations

from collections.abc import Callable

import httpx
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
    from_csv,
    from_json,
    from_parquet,
    normal,
    series,
)

DECODERS: dict[str, Callable[[httpx.Response], list[Normal]]] = {
    "json": lambda r: from_json(r.json()),
    "csv": lambda r: from_csv(r.text),
    "arrow": lambda r: from_arrow(r.content),
    "parquet": lambda r: from_parquet(r.content),
}
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}


@pytest.mark.parametrize("interval", ["1m", "5m", "7m"])
async def test_every_format_returns_the_same_candles(
    store: PostgresStore, make_client: MakeClient, interval: str
) -> None:
    candles = series(300, gap_every=11, flag_every=13)
    await store.write(candles=candles)
    target = Interval.parse(interval)
    expected = (
        [normal(c) for c in roll_up(candles, target, NOW)]
        if target != MINUTE
        else [normal(c) for c in candles]
    )
    flags = [row[-1] for row in expected]
    assert any(flags)
    assert not all(flags)
    client = make_client(intervals=(MINUTE,), chunk_rows=64)
    query = {"instrument": INSTRUMENT, "interval": interval, "start": str(T0 // 10**6),
             "limit": "1000"}  # fmt: skip
    seen = {}
    for name, decode in DECODERS.items():
        response = await client.get("/v1/candles", params=query | {"format": name})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == MEDIA[name]
        seen[name] = decode(response)
    assert seen["json"] == expected
    for name in ("csv", "arrow", "parquet"):
        assert seen[name] == expected, name


async def test_the_accept_header_chooses_the_format(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    await store.write(candles=series(5))
    query = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026-01-01T00:00:00Z"}
    for name, media in MEDIA.items():
        accept = media.split(";")[0] + ", application/json;q=0.5"
        response = await client.get("/v1/candles", params=query, headers={"Accept": accept})
        assert response.headers["content-type"] == media, name
        assert response.headers["vary"] == "Accept"
    response = await client.get("/v1/candles", params=query, headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.json()["parameter"] == "format"


async def test_an_empty_page_is_a_valid_document_in_every_format(
    store: PostgresStore, make_client: MakeClient
) -> None:
    await store.write(candles=series(3))
    client = make_client(intervals=(MINUTE,))
    for interval in ("1m", "2h"):
        for name, decode in DECODERS.items():
            response = await client.get(
                "/v1/candles",
                params={"instrument": INSTRUMENT, "interval": interval, "format": name,
                        "start": "2020-01-01", "end": "2020-01-02"},
            )  # fmt: skip
            assert response.status_code == 200
            assert decode(response) == []


async def test_the_open_candle_is_included_and_flagged(
    store: PostgresStore, make_client: MakeClient
) -> None:
    candles = series(20)
    await store.write(candles=candles)
    client = make_client(intervals=(MINUTE,))
    for interval in ("1m", "5m"):
        response = await client.get(
            "/v1/candles", params={"instrument": INSTRUMENT, "interval": interval, "start": "2026"}
        )
        body = response.json()
        assert body["candles"][-1]["status"] == "open"
        assert all(c["status"] != "open" for c in body["candles"][:-1])
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers
