"""``/healthz`` and ``/readyz``, and history reads while the database is away: 503 problem
details with ``Retry-After`` (our own type), then answers again once it is back. On a private
PostgreSQL that the test stops and starts; the app opens its own pools, as ``mdp api`` does."""

from __future__ import annotations

import asyncio

import httpx

from charting.app import create_app_for_url
from tests.charting.servers import threaded_server
from tests.storage.stoppable import StoppablePostgres

PROBLEM = "application/problem+json"
RECOVERY = 15.0
"""Seconds within which the API is ready again once the database is back (the pools replace
their connections within a few seconds)."""


async def test_reads_answer_503_while_the_database_is_away_and_work_again_after(
    stoppable_postgres: StoppablePostgres,
) -> None:
    app = create_app_for_url(stoppable_postgres.database())
    with threaded_server(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = (await http.get("/readyz")).json()
            assert ready == {"status": "ready", "checks": {"database": "ok"}}
            assert (await http.get("/v1/instruments")).status_code == 200

            await asyncio.to_thread(stoppable_postgres.stop)
            assert (await http.get("/healthz")).status_code == 200  # alive all the same
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["detail"] == "database unavailable"  # no host or port for callers
            for path in ("/v1/instruments", "/udf/search?query=X"):
                read = await http.get(path)
                assert read.status_code == 503, path
                assert read.headers["content-type"] == PROBLEM
                assert int(read.headers["retry-after"]) > 0
                body = read.json()
                assert body["type"].endswith("/database-unavailable")
                assert body["status"] == 503

            await asyncio.to_thread(stoppable_postgres.start)
            async with asyncio.timeout(RECOVERY):
                while (await http.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.2)
            assert (await http.get("/v1/instruments")).status_code == 200
