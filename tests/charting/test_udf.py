"""TradingView UDF: the response shapes TradingView documents."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from charting.rollup import roll_up
from core.candles import Candle
from core.intervals import Interval
from storage import PostgresStore
from tests.charting.conftest import NOW, MakeClient
from tests.charting.data import INSTRUMENT, MINUTE, T0, series

S = 1_000_000_000


@pytest.fixture
async def candles(store: PostgresStore) -> list[Candle]:
    written = series(600, gap_every=9)
    await store.write(candles=written)
    return written


@pytest.fixture
def udf(make_client: MakeClient) -> httpx.AsyncClient:
    return make_client(intervals=(MINUTE,))


def bars(candles: list[Candle]) -> dict[str, list[object]]:
    return {
        "t": [c.open_time // S for c in candles],
        "o": [c.open for c in candles],
        "h": [c.high for c in candles],
        "l": [c.low for c in candles],
        "c": [c.close for c in candles],
        "v": [c.volume for c in candles],
    }


def decoded(response: httpx.Response) -> dict[str, object]:
    """The body with numbers as exact Decimals (they are written with their exact digits)."""
    body: dict[str, object] = response.json(parse_float=Decimal, parse_int=int)
    assert response.headers["content-type"].startswith("application/json")
    return body


async def test_config_symbols_search_and_time(
    candles: list[Candle], udf: httpx.AsyncClient
) -> None:
    config = (await udf.get("/udf/config")).json()
    assert {"1", "5", "60", "120", "1D"} <= set(config["supported_resolutions"])
    assert config["supports_search"] is True
    assert config["supports_group_request"] is False
    assert config["supports_time"] is True
    assert {"value": "TEST", "name": "TEST", "desc": "TEST"} in config["exchanges"]
    info = (await udf.get("/udf/symbols", params={"symbol": INSTRUMENT})).json()
    assert info["name"] == info["ticker"] == INSTRUMENT
    assert info["pricescale"] == 10**4  # the newest candles have four decimal places
    assert info["session"] == "24x7"
    assert info["timezone"] == "Etc/UTC"
    assert info["has_intraday"] is True
    assert info["intraday_multipliers"] == ["1"]
    found = (await udf.get("/udf/search", params={"query": "btc", "limit": "5"})).json()
    assert found == [
        {"symbol": INSTRUMENT, "full_name": INSTRUMENT, "description": "BTCUSD on TEST",
         "exchange": "TEST", "ticker": INSTRUMENT, "type": "crypto"}
    ]  # fmt: skip
    assert (await udf.get("/udf/search", params={"query": "ETH"})).json() == []
    time = await udf.get("/udf/time")
    assert time.text == str(NOW // S)


@pytest.mark.parametrize("resolution", ["1", "5", "120"])
async def test_history_of_a_range(
    candles: list[Candle], udf: httpx.AsyncClient, resolution: str
) -> None:
    interval = Interval.of_seconds(int(resolution) * 60)
    start, end = T0 + 100 * MINUTE.ns, T0 + 400 * MINUTE.ns
    served = candles if interval == MINUTE else list(roll_up(candles, interval, NOW))
    expected = [c for c in served if start <= c.open_time < end]
    response = await udf.get(
        "/udf/history",
        params={"symbol": INSTRUMENT, "resolution": resolution, "from": str(start // S),
                "to": str(end // S)},
    )  # fmt: skip
    body = decoded(response)
    assert body == {"s": "ok", **bars(expected)}


@pytest.mark.parametrize("resolution", ["1", "15"])
async def test_history_with_countback_gives_the_bars_before_to(
    candles: list[Candle], udf: httpx.AsyncClient, resolution: str
) -> None:
    interval = Interval.of_seconds(int(resolution) * 60)
    end = T0 + 500 * MINUTE.ns
    served = candles if interval == MINUTE else list(roll_up(candles, interval, NOW))
    expected = [c for c in served if c.open_time < end][-12:]
    response = await udf.get(
        "/udf/history",
        params={"symbol": INSTRUMENT, "resolution": resolution, "from": str(end // S - 60),
                "to": str(end // S), "countback": "12"},
    )  # fmt: skip
    assert decoded(response) == {"s": "ok", **bars(expected)}


@pytest.mark.parametrize("resolution", ["1", "5", "120"])
@pytest.mark.parametrize("countback", [None, "100"])
async def test_history_carries_a_gap_array_when_a_bar_is_flagged(
    store: PostgresStore, udf: httpx.AsyncClient, resolution: str, countback: str | None
) -> None:
    written = series(600, gap_every=9, flag_every=150)
    await store.write(candles=written)
    interval = Interval.of_seconds(int(resolution) * 60)
    served = written if interval == MINUTE else list(roll_up(written, interval, NOW))
    start, end = T0 + 100 * MINUTE.ns, T0 + 580 * MINUTE.ns
    expected = [c for c in served if start <= c.open_time < end]
    if countback is not None:
        expected = [c for c in served if c.open_time < end][-int(countback) :]
    query = {
        "symbol": INSTRUMENT,
        "resolution": resolution,
        "from": str(start // S),
        "to": str(end // S),
    } | ({} if countback is None else {"countback": countback})
    body = decoded(await udf.get("/udf/history", params=query))
    flags = [c.gap for c in expected]
    assert any(flags)
    assert not all(flags)
    assert body == {"s": "ok", **bars(expected), "gap": flags}
    assert list(body)[-1] == "gap"
    quiet = {"to": str((start + 5 * MINUTE.ns) // S)}  # bars before the first flagged one
    body = decoded(await udf.get("/udf/history", params=query | quiet))
    assert body["s"] in ("ok", "no_data")
    assert "gap" not in body  # no bar flagged: TradingView's shape exactly


async def test_an_empty_range_says_no_data_and_when_the_previous_bar_is(
    candles: list[Candle], udf: httpx.AsyncClient
) -> None:
    after = candles[-1].open_time // S + 3600
    response = await udf.get(
        "/udf/history",
        params={"symbol": INSTRUMENT, "resolution": "5", "from": str(after),
                "to": str(after + 3600)},
    )  # fmt: skip
    last_bucket = Interval.parse("5m").bucket_start(candles[-1].open_time) // S
    assert response.json() == {"s": "no_data", "nextTime": last_bucket}
    before = await udf.get(
        "/udf/history",
        params={"symbol": INSTRUMENT, "resolution": "1", "from": "0", "to": str(T0 // S)},
    )
    assert before.json() == {"s": "no_data"}
    nothing = await udf.get(
        "/udf/history",
        params={"symbol": INSTRUMENT, "resolution": "1", "to": str(T0 // S), "countback": "5"},
    )
    assert nothing.json() == {"s": "no_data"}


async def test_a_range_over_the_row_limit_is_refused(
    candles: list[Candle], make_client: MakeClient
) -> None:
    client = make_client(intervals=(MINUTE,), max_limit=100, default_limit=100)
    response = await client.get(
        "/udf/history",
        params={"symbol": INSTRUMENT, "resolution": "1", "from": str(T0 // S),
                "to": str(T0 // S + 86_400)},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["parameter"] == "from"
    assert response.json()["s"] == "error"
