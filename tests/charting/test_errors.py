"""Bad requests get a 4xx problem (``application/problem+json``) naming the parameter."""

from __future__ import annotations

import httpx
import pytest

from storage import PostgresStore
from tests.charting.conftest import MakeClient
from tests.charting.data import INSTRUMENT, MINUTE, series

GOOD = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026-01-01T00:00:00Z"}


@pytest.fixture
async def stocked(store: PostgresStore, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await store.write(candles=series(5))
    return client


@pytest.mark.parametrize(
    ("change", "status", "parameter"),
    [
        ({"instrument": "TEST:UNKNOWN"}, 404, "instrument"),
        ({"instrument": "not an instrument"}, 400, "instrument"),
        ({"instrument": None}, 400, "instrument"),
        ({"interval": "7x"}, 400, "interval"),
        ({"interval": "0m"}, 400, "interval"),
        ({"interval": "99999d"}, 400, "interval"),
        ({"start": "yesterday"}, 400, "start"),
        ({"start": None}, 400, "start"),
        ({"start": "1960-01-01"}, 400, "start"),
        ({"end": "9999999999999999"}, 400, "end"),
        ({"end": "2025-12-31T00:00:00Z"}, 400, "start"),  # start after end
        ({"end": "2026-01-01T00:00:00Z"}, 400, "start"),  # an empty range
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "10001"}, 400, "limit"),  # over the row limit
        ({"limit": "ten"}, 400, "limit"),
        ({"cursor": "bm9wZQ"}, 400, "cursor"),
        ({"cursor": "!!"}, 400, "cursor"),
        ({"cursor": "dC4xLjI"}, 400, "cursor"),  # a tick cursor
        ({"cursor": "Yy4x"}, 400, "cursor"),  # outside the range
        ({"format": "xml"}, 400, "format"),
    ],
)
async def test_bad_candle_queries_get_a_problem_naming_the_parameter(
    stocked: httpx.AsyncClient, change: dict[str, str | None], status: int, parameter: str
) -> None:
    params = {k: v for k, v in (GOOD | change).items() if v is not None}
    response = await stocked.get("/v1/candles", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["parameter"] == parameter
    assert problem["invalid_params"][0]["name"] == parameter
    assert parameter in problem["detail"]
    assert problem["type"].startswith("https://")


async def test_seconds_intervals_are_refused_when_only_minutes_are_stored(
    store: PostgresStore, make_client: MakeClient
) -> None:
    await store.write(candles=series(3))
    client = make_client(intervals=(MINUTE,))
    response = await client.get("/v1/candles", params=GOOD | {"interval": "30s"})
    assert response.status_code == 400
    assert "neither stored" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/v1/ticks", {"instrument": INSTRUMENT, "start": "x"}, "start"),
        ("/v1/ticks", {"instrument": "TEST:NONE", "start": "0"}, "instrument"),
        ("/udf/history", {"symbol": INSTRUMENT, "resolution": "1W", "to": "1"}, "resolution"),
        ("/udf/history", {"symbol": INSTRUMENT, "resolution": "1", "to": "1"}, "from"),
        ("/udf/history", {"symbol": INSTRUMENT, "resolution": "1", "from": "5", "to": "1"}, "from"),
        ("/udf/history", {"symbol": "TEST:NONE", "resolution": "1", "to": "9", "countback": "2"},
         "symbol"),
        ("/udf/symbols", {"symbol": "TEST:NONE"}, "symbol"),
    ],
)  # fmt: skip
async def test_other_endpoints_name_the_parameter_too(
    stocked: httpx.AsyncClient, path: str, params: dict[str, str], parameter: str
) -> None:
    response = await stocked.get(path, params=params)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["parameter"] == parameter
    if path.startswith("/udf"):
        assert response.json()["s"] == "error"
        assert response.json()["errmsg"]


async def test_unknown_paths_and_methods_are_problems_too(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await client.post("/v1/candles")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
