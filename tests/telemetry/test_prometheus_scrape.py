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
    window = 'increase(mdp_engine_lag_seconds_{}{{job="mdp"}}[5s])'
    ticks = 'mdp_ingest_ticks_total{job="mdp",venue="SYNTH"}'
    candles = 'mdp_engine_candles_total{job="mdp"}'
    clients = 'mdp_gateway_clients{job="mdp"}'
    normal_closes = 'sum(mdp_gateway_closes_total{job="mdp",code="1000"}) or vector(0)'
    requests = (
        'sum(mdp_http_request_duration_seconds_count{job="mdp",'
        'route="/v1/instruments",status="200"})'
    )
    # Prometheus first: it hands new targets to its scrapers 5 s after its start (its
    # discovery's fixed update period), time the platform's start then overlaps
    async with (
        running_prometheus(tmp_path / "prometheus", targets) as prometheus,
        running_platform(settings) as platform,
    ):
        assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in printed(platform)
        assert platform.chart_url is not None
        assert platform.gateway_url is not None
        # waits run side by side: each needs a scrape or two (one a second)
        await asyncio.gather(
            *(prometheus.until(f'up{{job="{job}"}}', lambda up: up == 1) for job in targets)
        )
        closed_before = await prometheus.value(normal_closes)
        assert closed_before is not None
        async with (
            connect(platform.gateway_url, open_timeout=10) as socket,
            httpx.AsyncClient(base_url=platform.chart_url, timeout=10) as client,
        ):
            await socket.send(
                json.dumps({"op": "subscribe", "id": 1, "channel": "candles",
                            "instrument": "SYNTH:BTCUSD", "interval": "1s"})
            )  # fmt: skip
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "subscribed"
            # the history API's requests, by route template (through the edge when it is there)
            assert (await client.get("v1/instruments")).status_code == 200
            first_ticks, first_candles, p99, *_ = await asyncio.gather(
                # the synthetic feed's ticks come in and the engine's candles go out
                prometheus.until(ticks, lambda n: n > 0),
                prometheus.until(candles, lambda n: n > 0),
                # the engine's lag over the last seconds (the registry is the process's:
                # earlier tests' observations are in its totals); NaN while none
                prometheus.until(
                    f"histogram_quantile(0.99, sum by (le) ({window.format('bucket')}))",
                    lambda q: not math.isnan(q),
                ),
                # the gateway's gauges follow the client
                prometheus.until(clients, lambda n: n == 1),
                prometheus.until('mdp_gateway_subscriptions{job="mdp"}', lambda n: n == 1),
                prometheus.until(requests, lambda n: n >= 1),
            )
        # a live synthetic feed is read within a second
        assert 0 < p99 <= 1.0
        mean = await prometheus.value(f"{window.format('sum')} / {window.format('count')}")
        assert mean is not None
        assert 0 <= mean < 1.0
        await asyncio.gather(
            prometheus.until(ticks, lambda n: n > first_ticks),
            prometheus.until(candles, lambda n: n > first_candles),
            prometheus.until(clients, lambda n: n == 0),  # the client left: code 1000
            prometheus.until(normal_closes, lambda n: n == closed_before + 1),
        )
        engine_ticks = await prometheus.value('mdp_engine_ticks_total{job="mdp"}')
        assert engine_ticks is not None
        assert engine_ticks > 0
        if edge:  # HAProxy's own metrics are scraped beside the platform's
            assert await prometheus.query('haproxy_process_start_time_seconds{job="haproxy"}')
