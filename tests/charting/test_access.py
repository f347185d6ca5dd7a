"""The history API checks tokens itself (real PostgreSQL): every refused token is 401 with our
reason, never anonymous; an instrument outside the plan is 403 on every route that names one;
a delayed plan gets no candle closing after now - delay in any format, roll-up or UDF; the
plan's depth cuts what is older; a key revoked on ``auth.events`` is refused at once; cached
pages and ETags never cross plans."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from access.settings import TokenSettings
from charting import ApiSettings, create_app
from core.auth_events import AuthEvent, PlanClaims, encode_event
from core.candles import Candle
from core.topics import AUTH_EVENTS
from storage import PostgresReads, PostgresStore
from streams.memory import MemoryBus
from tests.charting.conftest import NOW, MakeClient
from tests.charting.data import (
    INSTRUMENT,
    MINUTE,
    SECOND,
    T0,
    from_arrow,
    from_csv,
    from_json,
    from_parquet,
    normal,
    series,
    ticks,
)
from tests.storage.test_candle_forms import FILES, engine_candles
from tests.support import tokens

NOW_S = NOW // SECOND
DEMO = PlanClaims(plan="demo", instruments="SYNTH:* BINANCE:BTCUSDT", delay=0, history_days=60,
                  ws_subs=4, ws_conns=2, rpm=60, trade=False)  # fmt: skip
"""The demo plan's instruments, deep enough for the data a month before :data:`NOW`."""
CANDLES = {"instrument": INSTRUMENT, "interval": "1m", "start": "0", "limit": "10000"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def candles(store: PostgresStore) -> list[Candle]:
    written = series(600)
    await store.write(candles=written)
    await store.write(candles=series(30, instrument="SYNTH:BTCUSD"))
    return written


def checked(
    make_client: MakeClient, anonymous: PlanClaims | None = None, **settings: Any
) -> httpx.AsyncClient:
    return make_client(tokens=TokenSettings(keys=tokens.keyset(), anonymous=anonymous), **settings)


# -- 401 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(tokens.refused_tokens()))
@pytest.mark.parametrize("path", ["/v1/candles", "/udf/history"])
async def test_a_refused_token_is_401_even_where_anonymous_reads(
    candles: list[Candle], make_client: MakeClient, case: str, path: str
) -> None:
    client = checked(make_client, anonymous=PlanClaims(**{**_claims(DEMO), "instruments": "*"}))
    udf = {"symbol": INSTRUMENT, "resolution": "1", "from": str(T0 // SECOND), "to": str(NOW_S)}
    query = CANDLES if path == "/v1/candles" else udf
    assert (await client.get(path, params=query)).status_code == 200  # anonymous reads
    bad = tokens.refused_tokens(NOW_S)[case]
    answer = await client.get(path, params=query, headers=bearer(bad))
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = answer.json()
    assert body["reason"] == tokens.code_of(case)
    expected = "token-expired" if case == "expired" else "invalid-token"
    assert body["type"].endswith(f"/{expected}")
    if path.startswith("/udf"):
        assert body["s"] == "error"


async def test_no_token_without_an_anonymous_plan_is_401_token_required(
    candles: list[Candle], make_client: MakeClient
) -> None:
    client = checked(make_client)
    for path, query in (("/v1/candles", CANDLES), ("/v1/instruments", {}), ("/udf/config", {})):
        answer = await client.get(path, params=query)
        assert answer.status_code == 401, path
        assert answer.json()["type"].endswith("/token-required")
        assert answer.headers["www-authenticate"] == "Bearer"
    for header in ("Basic abc", "Bearer", "Bearer " + "x" * 5000):
        answer = await client.get("/v1/candles", params=CANDLES, headers={"Authorization": header})
        assert (answer.status_code, answer.json()["reason"]) == (401, "malformed")
    assert (await client.get("/healthz")).status_code == 200  # the page and health stay open
    assert (await client.get("/config.json")).status_code == 200


async def test_the_app_mounted_under_a_prefix_still_checks_tokens(
    candles: list[Candle], history: PostgresReads
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = create_app(
        history, ApiSettings(clock=lambda: NOW, tokens=TokenSettings(keys=tokens.keyset()))
    )
    outer = Starlette(routes=[Mount("/history", app)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://history.test") as client:
        refused = await client.get("/history/v1/candles", params=CANDLES)
        assert refused.status_code == 401
        assert refused.json()["type"].endswith("/token-required")
        answer = await client.get(
            "/history/v1/candles", params=CANDLES, headers=bearer(_token("pro"))
        )
        assert answer.status_code == 200
        assert len(answer.json()["candles"]) == len(candles)


async def test_a_valid_token_reads(candles: list[Candle], make_client: MakeClient) -> None:
    client = checked(make_client)
    answer = await client.get("/v1/candles", params=CANDLES, headers=bearer(_token("pro")))
    assert answer.status_code == 200
    assert len(answer.json()["candles"]) == len(candles)


# -- 403 and the anonymous plan -------------------------------------------------------------


async def test_an_instrument_outside_the_plan_is_403_on_every_route_naming_one(
    candles: list[Candle], make_client: MakeClient
) -> None:
    client = checked(make_client, anonymous=DEMO)
    ranged = {"start": "0", "interval": "1m"}
    routes = [
        ("/v1/candles", {"instrument": INSTRUMENT, **ranged}, "instrument"),
        ("/v1/ticks", {"instrument": INSTRUMENT, "start": "0"}, "instrument"),
        ("/v1/gaps", {"instrument": INSTRUMENT, "start": "0"}, "instrument"),
        ("/udf/symbols", {"symbol": INSTRUMENT}, "symbol"),
        ("/udf/history", {"symbol": INSTRUMENT, "resolution": "1", "from": "0", "to": "9"},
         "symbol"),
    ]  # fmt: skip
    for path, query, parameter in routes:
        for headers in ({}, bearer(_token("demo"))):  # anonymous, and a token on the plan
            answer = await client.get(path, params=query, headers=headers)
            assert answer.status_code == 403, path
            assert answer.headers["content-type"] == "application/problem+json"
            body = answer.json()
            assert (body["parameter"], body["type"].rsplit("/", 1)[1]) == (
                parameter, "instrument-not-in-plan",
            )  # fmt: skip
    # an instrument the plan covers but without data is still a 404, and one with data reads
    missing = await client.get("/v1/candles", params={"instrument": "SYNTH:NONE", **ranged})
    assert missing.status_code == 404
    synth = await client.get("/v1/candles", params={"instrument": "synth:btcusd", **ranged})
    assert (synth.status_code, len(synth.json()["candles"])) == (200, 30)


async def test_lists_show_only_the_plan_s_instruments(
    candles: list[Candle], make_client: MakeClient
) -> None:
    client = checked(make_client, anonymous=DEMO)
    listed = (await client.get("/v1/instruments")).json()["instruments"]
    assert [row["instrument"] for row in listed] == ["SYNTH:BTCUSD"]
    found = (await client.get("/udf/search", params={"query": "BTC"})).json()
    assert [row["symbol"] for row in found] == ["SYNTH:BTCUSD"]
    everything = await client.get("/v1/instruments", headers=bearer(_token("pro")))
    assert {row["instrument"] for row in everything.json()["instruments"]} == {
        INSTRUMENT, "SYNTH:BTCUSD",
    }  # fmt: skip


# -- the delay ------------------------------------------------------------------------------

LIVE = T0 + 600 * MINUTE.ns + 20 * SECOND
"""A clock just after the series' last candle opened: the data is minutes old."""


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "parquet", "jsonl"])
@pytest.mark.parametrize("interval", ["1m", "5m"])
async def test_a_delayed_plan_gets_no_candle_closing_after_now_minus_the_delay(
    candles: list[Candle], make_client: MakeClient, fmt: str, interval: str
) -> None:
    client = checked(make_client, clock=lambda: LIVE, intervals=(MINUTE,))  # 5m: rolled up
    cutoff = LIVE - 900 * SECOND
    step = MINUTE.ns * int(interval[:-1])
    query = {**CANDLES, "interval": interval, "format": fmt}
    now_s = LIVE // SECOND
    delayed = _opens(await client.get("/v1/candles", params=query,
                                      headers=bearer(_token("free", now_s))), fmt)  # fmt: skip
    live = _opens(await client.get("/v1/candles", params=query,
                                   headers=bearer(_token("pro", now_s))), fmt)  # fmt: skip
    assert delayed == [t for t in live if t + step <= cutoff]
    assert live[-1] + step > cutoff  # the real-time plan does see the young candles


async def test_a_delayed_plan_gets_no_young_bar_over_udf(
    candles: list[Candle], make_client: MakeClient
) -> None:
    client = checked(make_client, clock=lambda: LIVE, intervals=(MINUTE,))
    cutoff_s = (LIVE - 900 * SECOND) // SECOND
    now_s = LIVE // SECOND
    for query in (
        {"symbol": INSTRUMENT, "resolution": "1", "from": str(T0 // SECOND), "to": str(now_s)},
        {"symbol": INSTRUMENT, "resolution": "1", "to": str(now_s), "countback": "50"},
        {"symbol": INSTRUMENT, "resolution": "5", "to": str(now_s), "countback": "50"},
    ):
        body = (await client.get("/udf/history", params=query,
                                 headers=bearer(_token("free", now_s)))).json()  # fmt: skip
        step = 60 * int(query["resolution"])
        assert body["s"] == "ok"
        assert max(body["t"]) + step <= cutoff_s
        assert max(body["t"]) + 2 * step > cutoff_s  # and nothing older is held back
    young = {"symbol": INSTRUMENT, "resolution": "1", "from": str(cutoff_s), "to": str(now_s)}
    body = (await client.get("/udf/history", params=young,
                             headers=bearer(_token("free", now_s)))).json()  # fmt: skip
    assert body["s"] == "no_data"
    assert body["nextTime"] + 60 <= cutoff_s


async def test_a_delayed_plan_gets_no_young_tick(
    store: PostgresStore, make_client: MakeClient
) -> None:
    batch = ticks(100, same_time=1)
    await store.write(ticks=[batch])
    clock = int(batch.ts_event[50]) + 900 * SECOND  # the delay hides the last 49
    client = checked(make_client, clock=lambda: clock)
    query = {"instrument": batch.instrument, "start": "0", "limit": "1000"}
    now_s = clock // SECOND
    delayed = await client.get("/v1/ticks", params=query, headers=bearer(_token("free", now_s)))
    live = await client.get("/v1/ticks", params=query, headers=bearer(_token("pro", now_s)))
    assert (len(delayed.json()["ticks"]), len(live.json()["ticks"])) == (51, 100)


# -- the depth ------------------------------------------------------------------------------

DAY = 86_400 * SECOND


async def test_the_depth_cuts_older_candles_at_a_utc_midnight(
    store: PostgresStore, make_client: MakeClient
) -> None:
    floor = T0 + DAY
    await store.write(candles=series(600, start=floor - 300 * MINUTE.ns, instrument="SYNTH:X"))
    clock = T0 + 2 * DAY + 3_600 * SECOND
    one_day = PlanClaims(**{**_claims(DEMO), "history_days": 1})
    client = checked(make_client, clock=lambda: clock, anonymous=one_day)
    query = {"instrument": "SYNTH:X", "interval": "1m", "start": "0", "limit": "10000"}
    page = (await client.get("/v1/candles", params=query)).json()
    opens = [_ns(c["open_time"]) for c in page["candles"]]
    assert (len(opens), min(opens)) == (300, floor)
    everything = await client.get("/v1/candles", params=query,
                                  headers=bearer(_token("pro", clock // SECOND)))  # fmt: skip
    assert len(everything.json()["candles"]) == 600
    older = {**query, "end": str(floor // 1_000_000)}
    assert (await client.get("/v1/candles", params=older)).json()["candles"] == []
    udf = {"symbol": "SYNTH:X", "resolution": "1", "from": "0", "to": str(clock // SECOND)}
    bars = (await client.get("/udf/history", params=udf)).json()
    assert (len(bars["t"]), min(bars["t"])) == (300, floor // SECOND)
    udf_old = {**udf, "from": "0", "to": str(floor // SECOND)}
    assert (await client.get("/udf/history", params=udf_old)).json() == {"s": "no_data"}
    count = {**udf, "countback": "1000"}
    assert len((await client.get("/udf/history", params=count)).json()["t"]) == 300


# -- caches across plans --------------------------------------------------------------------


async def test_a_cached_page_never_reaches_another_plan(
    store: PostgresStore, make_client: MakeClient
) -> None:
    floor = T0 + DAY
    await store.write(candles=series(600, start=floor - 300 * MINUTE.ns, instrument="SYNTH:X",
                                     open_last=False))  # fmt: skip
    clock = T0 + 2 * DAY + 3_600 * SECOND  # every candle is final: the page is kept
    one_day = PlanClaims(**{**_claims(DEMO), "history_days": 1})
    client = checked(make_client, clock=lambda: clock, anonymous=one_day)
    end = str((floor + 300 * MINUTE.ns) // 1_000_000)
    query = {"instrument": "SYNTH:X", "interval": "1m", "start": "0", "end": end, "limit": "9999"}
    pro = bearer(_token("pro", clock // SECOND))
    for _ in range(2):  # kept, then served from the cache
        full = await client.get("/v1/candles", params=query, headers=pro)
        assert len(full.json()["candles"]) == 600
    pages = client._transport.app.state.context.pages  # type: ignore[attr-defined]
    assert pages.hits == 1
    assert full.headers["cache-control"].startswith("private")
    assert "Authorization" in full.headers["vary"]
    cut = await client.get("/v1/candles", params=query)
    assert len(cut.json()["candles"]) == 300
    revalidated = await client.get(
        "/v1/candles", params=query, headers={"If-None-Match": full.headers["etag"]}
    )
    assert revalidated.status_code == 200  # the other plan's ETag is not this page's
    assert len(revalidated.json()["candles"]) == 300


# -- revocation -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(history: PostgresReads, bus: MemoryBus) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        tokens=TokenSettings(keys=tokens.keyset()), clock=lambda: NOW, cache_recheck_ns=0
    )
    app = create_app(history, settings, bus)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://history.test"
        ) as client,
    ):
        yield client


async def test_a_key_revoked_on_auth_events_is_refused_at_once(
    candles: list[Candle], history: PostgresReads
) -> None:
    bus = MemoryBus()
    revoked, other = (tokens.key_token(k, now=NOW_S) for k in ("k_revoked", "k_other"))
    async with running(history, bus) as client:
        for token in (revoked, other):
            assert (await client.get("/v1/candles", params=CANDLES,
                                     headers=bearer(token))).status_code == 200  # fmt: skip
        event = AuthEvent(id=1, kind="key-revoked", subject="key:k_revoked", account_id=1,
                          plan=None, reason="", at=NOW_S, until=NOW_S + 330)  # fmt: skip
        await bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))
        await bus.topic(AUTH_EVENTS).publish(b"junk", b"not an event")  # counted, skipped
        async with asyncio.timeout(5):
            while True:
                answer = await client.get("/v1/candles", params=CANDLES, headers=bearer(revoked))
                if answer.status_code == 401:
                    break
                await asyncio.sleep(0.02)
        assert answer.json()["reason"] == "revoked"
        still = await client.get("/v1/candles", params=CANDLES, headers=bearer(other))
        assert still.status_code == 200
    await bus.close()


async def test_a_plan_change_on_auth_events_applies_to_live_tokens(
    candles: list[Candle], history: PostgresReads
) -> None:
    bus = MemoryBus()
    token = tokens.issue(plan="pro", now=NOW_S, account_id=7)
    async with running(history, bus) as client:
        assert (await client.get("/v1/candles", params=CANDLES,
                                 headers=bearer(token))).status_code == 200  # fmt: skip
        smaller = PlanClaims(**{**_claims(DEMO), "plan": "synth"})
        event = AuthEvent(id=2, kind="entitlements-changed", subject="account:7", account_id=7,
                          plan="synth", reason="plan changed", at=NOW_S, until=NOW_S + 330,
                          claims=smaller)  # fmt: skip
        await bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))
        async with asyncio.timeout(5):
            while True:
                answer = await client.get("/v1/candles", params=CANDLES, headers=bearer(token))
                if answer.status_code != 200:
                    break
                await asyncio.sleep(0.02)
        assert answer.status_code == 403
        assert answer.json()["detail"].endswith("is not in the plan synth")
    await bus.close()


# -- helpers --------------------------------------------------------------------------------


def _claims(plan: PlanClaims) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__struct_fields__}


def _token(plan: str, now_s: int = NOW_S) -> str:
    return tokens.issue(plan=plan, now=now_s)


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) * SECOND


def _opens(answer: httpx.Response, fmt: str) -> list[int]:
    """The open times (ns) of a candle page in any format."""
    assert answer.status_code == 200, answer.text
    if fmt == "jsonl":
        return [_ns(json.loads(line)["open_time"]) for line in answer.text.splitlines()]
    decoded = {
        "json": lambda: from_json(answer.json()),
        "csv": lambda: from_csv(answer.text),
        "arrow": lambda: from_arrow(answer.content),
        "parquet": lambda: from_parquet(answer.content),
    }[fmt]()
    return [row[2] for row in decoded]


# -- real exchange data ---------------------------------------------------------------------


async def test_real_trades_a_delayed_plan_reads_exactly_the_old_enough_candles(
    shared_data: Path, store: PostgresStore, make_client: MakeClient
) -> None:
    """Binance's trades of 2026-01-01 through the engine: a delayed plan reads exactly the
    engine's candles that closed 15 minutes before now, the demo plan all of them."""
    name, empty = FILES["binance"]
    made = [c for c in engine_candles(shared_data / name, empty) if c.interval == MINUTE]
    await store.write(candles=made)
    clock = made[-1].open_time + MINUTE.ns + 5 * MINUTE.ns
    client = checked(make_client, clock=lambda: clock, anonymous=DEMO, intervals=(MINUTE,))
    query = {"instrument": "BINANCE:BTCUSDT", "interval": "1m", "start": "0"}
    delayed = await client.get(
        "/v1/candles", params=query, headers=bearer(_token("free", clock // SECOND))
    )
    cutoff = clock - 900 * SECOND
    old_enough = [normal(c) for c in made if c.open_time + MINUTE.ns <= cutoff]
    assert 0 < len(old_enough) < len(made)
    assert from_json(delayed.json()) == old_enough
    demo = await client.get("/v1/candles", params=query)  # anonymous, real time
    assert from_json(demo.json()) == [normal(c) for c in made]


async def test_the_openapi_document_tells_the_refusals(
    candles: list[Candle], make_client: MakeClient
) -> None:
    document = (await checked(make_client).get("/openapi.json")).json()  # open, like the page
    candles_get = document["paths"]["/v1/candles"]["get"]["responses"]
    assert {"401", "403"} <= set(candles_get)
    reason = document["components"]["schemas"]["ProblemError"]["properties"]["reason"]
    assert set(reason["enum"]) >= {tokens.code_of(case) for case in tokens.refused_tokens()}
    assert "revoked" in reason["enum"]
