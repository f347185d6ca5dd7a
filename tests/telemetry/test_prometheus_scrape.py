"""A real Prometheus scrapes a running ``mdp up`` (its ``metrics:`` port, and HAProxy's
``edge-metrics:`` port when the machine has HAProxy) every second; its query API sees ticks
come in, candles go out, a plausible engine lag, and the gateway's clients as they connect."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from machine import free_port
from mdp.front import haproxy_missing
from tests.mdp.running import printed, running_platform
from tests.mdp.test_up_front import settings_of
from tests.telemetry.prometheus import prometheus_or_skip, running_prometheus

SCRAPED_WITHIN_S = 10.0
"""A few scrapes of one second each."""


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    prometheus_or_skip()


async def test_prometheus_scrapes_the_platform_and_sees_it_work(
    migrated_database: str, tmp_path: Path
) -> None:
    metrics_port, edge_metrics_port = free_port(), free_port()
    edge = haproxy_missing() is None
    settings = settings_of(
        migrated_database, metrics_port=metrics_port, edge_metrics_port=edge_metrics_port,
        edge=edge,
    )  # fmt: skip
    targets = {"mdp": f"127.0.0.1:{metrics_port}"}
    if edge:
        targets["haproxy"] = f"127.0.0.1:{edge_metrics_port}"
    async with (
        running_platform(settings) as platform,
        running_prometheus(tmp_path / "prometheus", targets) as prometheus,
    ):
        assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in printed(platform)
        for job in targets:
            await prometheus.until(f'up{{job="{job}"}}', lambda up: up == 1, SCRAPED_WITHIN_S)

        # the synthetic feed's ticks come in and the engine's candles go out, as scraped
        ticks = 'mdp_ingest_ticks_total{job="mdp",venue="SYNTH"}'
        candles = 'mdp_engine_candles_total{job="mdp"}'
        first_ticks = await prometheus.until(ticks, lambda n: n > 0, SCRAPED_WITHIN_S)
        first_candles = await prometheus.until(candles, lambda n: n > 0, SCRAPED_WITHIN_S)
        await prometheus.until(ticks, lambda n: n > first_ticks, SCRAPED_WITHIN_S)
        await prometheus.until(candles, lambda n: n > first_candles, SCRAPED_WITHIN_S)
        engine_ticks = await prometheus.value('mdp_engine_ticks_total{job="mdp"}')
        assert engine_ticks is not None
        assert engine_ticks > 0

        # engine lag over the last seconds (the registry is the process's: earlier tests'
        # observations are in its totals): a live synthetic feed is read within a second
        window = 'increase(mdp_engine_lag_seconds_{}{{job="mdp"}}[5s])'
        p99 = await prometheus.until(
            f"histogram_quantile(0.99, sum by (le) ({window.format('bucket')}))",
            lambda q: not math.isnan(q),  # lags were observed in the window
            SCRAPED_WITHIN_S,
        )
        assert 0 < p99 <= 1.0
        mean = await prometheus.value(f"{window.format('sum')} / {window.format('count')}")
        assert mean is not None
        assert 0 <= mean < 1.0

        # the gateway's client gauge follows a client in and out; its close is counted
        clients = 'mdp_gateway_clients{job="mdp"}'
        normal_closes = 'sum(mdp_gateway_closes_total{job="mdp",code="1000"}) or vector(0)'
        assert await prometheus.until(clients, lambda n: n == 0, SCRAPED_WITHIN_S) == 0
        closed_before = await prometheus.value(normal_closes)
        assert platform.gateway_url is not None
        async with connect(platform.gateway_url, open_timeout=10) as socket:
            await socket.send(
                json.dumps({"op": "subscribe", "id": 1, "channel": "candles",
                            "instrument": "SYNTH:BTCUSD", "interval": "1s"})
            )  # fmt: skip
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "subscribed"
            await prometheus.until(clients, lambda n: n == 1, SCRAPED_WITHIN_S)
            subscriptions = 'mdp_gateway_subscriptions{job="mdp"}'
            await prometheus.until(subscriptions, lambda n: n == 1, SCRAPED_WITHIN_S)
        await prometheus.until(clients, lambda n: n == 0, SCRAPED_WITHIN_S)
        assert closed_before is not None
        await prometheus.until(normal_closes, lambda n: n == closed_before + 1, SCRAPED_WITHIN_S)

        # the history API's requests, by route template, through the edge when it is there
        requests = (
            'sum(mdp_http_request_duration_seconds_count{job="mdp",'
            'route="/v1/instruments",status="200"})'
        )
        if edge:
            # HAProxy's own metrics are scraped beside the platform's
            frontends = await prometheus.query('haproxy_process_start_time_seconds{job="haproxy"}')
            assert frontends, "HAProxy's metrics were not scraped"
        assert platform.chart_url is not None
        async with httpx.AsyncClient(base_url=platform.chart_url, timeout=10) as client:
            assert (await client.get("v1/instruments")).status_code == 200
        await prometheus.until(requests, lambda n: n >= 1, SCRAPED_WITHIN_S)
