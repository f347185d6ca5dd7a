"""ETags and cache headers: final pages may be cached; pages with an open candle may not."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from core.candles import CandleStatus
from storage import PostgresStore
from tests.charting.conftest import MakeClient
from tests.charting.data import INSTRUMENT, MINUTE, T0, series

CLOSED_RANGE = {"instrument": INSTRUMENT, "start": "2026-01-01", "end": "2026-01-01T01:00:00Z"}


@pytest.mark.parametrize("interval", ["1m", "5m"])
async def test_a_closed_range_has_an_etag_and_may_be_cached(
    store: PostgresStore, make_client: MakeClient, interval: str
) -> None:
    await store.write(candles=series(200))
    client = make_client(intervals=(MINUTE,))
    params = CLOSED_RANGE | {"interval": interval}
    first = await client.get("/v1/candles", params=params)
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert first.headers["cache-control"] == "public, max-age=86400"
    again = await client.get("/v1/candles", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    other_format = await client.get(
        "/v1/candles", params=params | {"format": "csv"}, headers={"If-None-Match": etag}
    )
    assert other_format.status_code == 200
    assert other_format.headers["etag"] != etag


async def test_the_etag_changes_when_a_candle_is_revised(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    candles = series(100)
    await store.write(candles=candles)
    params = CLOSED_RANGE | {"interval": "1m"}
    before = (await client.get("/v1/candles", params=params)).headers["etag"]
    revised = msgspec.structs.replace(
        candles[10], revision=candles[10].revision + 1, status=CandleStatus.REVISED
    )
    await store.write(candles=[revised])
    after = await client.get("/v1/candles", params=params, headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["etag"] != before


async def test_a_page_with_an_open_candle_is_not_stored(
    store: PostgresStore, client: httpx.AsyncClient
) -> None:
    await store.write(candles=series(30))
    response = await client.get(
        "/v1/candles", params={"instrument": INSTRUMENT, "interval": "1m", "start": "2026"}
    )
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


async def test_a_recent_final_page_must_be_revalidated(
    store: PostgresStore, make_client: MakeClient
) -> None:
    await store.write(candles=series(100, open_last=False))
    client = make_client(clock=lambda: T0 + 100 * MINUTE.ns)  # within the revision horizon
    response = await client.get("/v1/candles", params=CLOSED_RANGE | {"interval": "1m"})
    assert response.headers["cache-control"] == "no-cache"
    assert "etag" in response.headers


async def test_final_pages_are_served_from_memory_until_their_data_changes(
    store: PostgresStore, make_client: MakeClient
) -> None:
    candles = series(100)
    await store.write(candles=candles)
    client = make_client()  # every hit is checked against the database
    pages = client._transport.app.state.context.pages  # type: ignore[attr-defined]
    params = CLOSED_RANGE | {"interval": "1m", "format": "csv"}
    first = await client.get("/v1/candles", params=params)
    again = await client.get("/v1/candles", params=params)
    assert again.content == first.content
    assert (pages.hits, pages.misses) == (1, 1)
    changed = msgspec.structs.replace(candles[3], close_raw=candles[3].high_raw, revision=5)
    await store.write(candles=[changed])
    after = await client.get("/v1/candles", params=params)
    assert after.content != first.content
    assert changed.high.to_eng_string() in after.text.splitlines()[4]
    assert pages.hits == 1
    recent = await client.get("/v1/candles", params=params | {"end": "2026-01-01T01:40:00Z"})
    assert "no-store" in recent.headers["cache-control"]  # the open candle: never kept
    await client.get("/v1/candles", params=params | {"end": "2026-01-01T01:40:00Z"})
    assert pages.hits == 1


async def test_a_cached_page_is_served_without_the_database_for_a_moment(
    store: PostgresStore, make_client: MakeClient
) -> None:
    candles = series(100)
    await store.write(candles=candles)
    client = make_client(cache_recheck_ns=3600 * 10**9)
    params = CLOSED_RANGE | {"interval": "1m"}
    first = await client.get("/v1/candles", params=params)
    await store.write(candles=[msgspec.structs.replace(candles[3], revision=5)])
    again = await client.get("/v1/candles", params=params, headers={"If-None-Match": "x"})
    assert again.content == first.content  # still the kept page: not checked again yet
    assert again.headers["etag"] == first.headers["etag"]
    unchanged = await client.get(
        "/v1/candles", params=params, headers={"If-None-Match": first.headers["etag"]}
    )
    assert unchanged.status_code == 304


async def test_a_304_counts_as_the_kept_pages_check(
    store: PostgresStore, make_client: MakeClient
) -> None:
    await store.write(candles=series(100))
    client = make_client()  # every hit is checked against the database
    pages = client._transport.app.state.context.pages  # type: ignore[attr-defined]
    params = CLOSED_RANGE | {"interval": "1m"}
    first = await client.get("/v1/candles", params=params)
    etag = {"If-None-Match": first.headers["etag"]}
    assert (await client.get("/v1/candles", params=params, headers=etag)).status_code == 304
    assert (pages.hits, pages.misses) == (1, 1)  # the 304 checked the kept page: current
