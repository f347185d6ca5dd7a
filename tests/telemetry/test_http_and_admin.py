"""HTTP requests are observed by method, route template and status; the admin server
exposes the registry on /metrics; a live gauge sums its sources while they are watched."""

from __future__ import annotations

import socket
import urllib.request

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry.admin import admin_server
from telemetry.http import UNMATCHED, HttpMetrics
from telemetry.live import LiveGauge
from tests.telemetry.values import value
from web.server import serving

SECONDS = "mdp_http_request_duration_seconds"


async def candles(request: Request) -> Response:
    if request.path_params["instrument"] == "NOPE:X":
        return JSONResponse({"type": "unknown-instrument"}, 404)
    return JSONResponse({"candles": []})


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


APP = Starlette(
    routes=[
        Route("/v1/candles/{instrument}", candles, methods=["GET"]),
        Route("/v1/broken", broken, methods=["GET"]),
    ]
)


def count(route: str, status: str, method: str = "GET") -> float:
    return value(f"{SECONDS}_count", method=method, route=route, status=status)


async def test_requests_are_counted_by_route_template_and_status_not_by_path() -> None:
    template = "/v1/candles/{instrument}"
    before = {
        "ok": count(template, "200"),
        "missing": count(template, "404"),
        "unmatched": count(UNMATCHED, "404"),
        "error": count("/v1/broken", "500"),
        "fast": value(f"{SECONDS}_bucket", method="GET", route=template, status="200", le="5.0"),
    }
    transport = httpx.ASGITransport(app=HttpMetrics(APP), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for instrument in ("KRAKEN:XBTUSD", "BINANCE:ETHUSDT"):
            assert (await client.get(f"/v1/candles/{instrument}")).status_code == 200
        assert (await client.get("/v1/candles/NOPE:X")).status_code == 404
        assert (await client.get("/no/such/route")).status_code == 404
        assert (await client.get("/v1/broken")).status_code == 500
    assert count(template, "200") - before["ok"] == 2
    assert count(template, "404") - before["missing"] == 1
    assert count(UNMATCHED, "404") - before["unmatched"] == 1
    assert count("/v1/broken", "500") - before["error"] == 1
    fast = value(f"{SECONDS}_bucket", method="GET", route=template, status="200", le="5.0")
    assert fast - before["fast"] == 2
    assert (
        value(f"{SECONDS}_count", method="GET", route="/v1/candles/KRAKEN:BTC/USD", status="200")
        == 0
    )


async def test_every_app_served_by_the_platform_s_server_is_measured() -> None:
    before = count("/v1/candles/{instrument}", "200")
    async with serving(APP) as server, httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/v1/candles/KRAKEN:XBTUSD")).status_code == 200
    assert count("/v1/candles/{instrument}", "200") - before == 1


def test_the_admin_server_exposes_the_registry_on_localhost() -> None:
    with admin_server() as admin:
        assert admin.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(admin.url, timeout=5) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/plain")
            text = answer.read().decode()
    for name in ("mdp_ingest_ticks_total", "mdp_engine_lag_seconds_bucket",
                 "mdp_gateway_clients", "process_cpu_seconds_total"):  # fmt: skip
        assert f"\n{name}" in text or f"# TYPE {name.removesuffix('_total')}" in text, name
    with pytest.raises(ConnectionRefusedError):  # stopped: nothing listens there any more
        socket.create_connection(("127.0.0.1", admin.port), timeout=1).close()


def test_an_admin_port_in_use_is_refused_with_an_error() -> None:
    with (
        admin_server() as admin,
        pytest.raises(OSError, match="in use"),
        admin_server(port=admin.port),
    ):
        pass


def test_a_live_gauge_sums_what_its_sources_read_while_watched() -> None:
    gauge = LiveGauge("test_queue_depth", "test", labels=["venue"])
    readings = {"KRAKEN": 3.0}
    stop_one = gauge.watch(lambda: [(("KRAKEN",), readings["KRAKEN"])])
    stop_two = gauge.watch(lambda: [(("KRAKEN",), 1.0), (("BINANCE",), 2.0)])

    def collected() -> dict[str, float]:
        (family,) = gauge.collect()
        return {sample.labels["venue"]: sample.value for sample in family.samples}

    assert collected() == {"KRAKEN": 4.0, "BINANCE": 2.0}
    readings["KRAKEN"] = 5.0  # read at collection, not when watched
    assert collected() == {"KRAKEN": 6.0, "BINANCE": 2.0}
    stop_two()
    assert collected() == {"KRAKEN": 5.0}
    stop_one()
    assert collected() == {}
