"""History API read latency: 10,000 one-minute candles per request, JSON, Arrow and CSV.

A server process runs the history API (uvicorn, the app of ``charting``) twice: at ``/cold``
without its page cache, so that every request reads PostgreSQL (first reads), and at ``/``
with it (repeated reads of a closed range); CSV pages are read at ``/cold`` only. Beside
them, on the same HTTP stack, the naive baseline: fetch every row with psycopg and
``json.dumps`` the list. This process asks each contender for the same 10,000 candles, one
request at a time over keep-alive HTTP on 127.0.0.1 (the standard library's client, see
:class:`Client`; one more row with httpx), and prints p50 and p99 latencies with the targets
(p99 at most 50 ms for JSON and 20 ms for Arrow), the ratio to the baseline, and the
machine's load average.

The candles are vacuumed before the run, so their pages are all-visible, as a closed range's
are once autovacuum has passed: packed pages are then read from the covering index alone.

``--runs N`` repeats the whole measurement (a new server each time) and ends with the
median of each figure over the runs: this machine is shared and noisy.

It uses ``--database-url`` (default: ``DATABASE_URL``), in a scratch database created and
dropped here; with neither, a private PostgreSQL of its own (``storage.PostgresServer`` in a
``tempfile.mkdtemp`` folder).
Usage: ``python -m bench.history [--candles N] [--requests N] [--runs N] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import psycopg
import pyarrow as pa

from bench.common import child_server, scratch_database
from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.present.text import iso_utc
from machine import free_port
from storage import PostgresStore

INSTRUMENT: Final = "BENCH:BTCUSDT"
MINUTE: Final = Interval.parse("1m")
T0: Final = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
TARGETS_MS: Final = {"json": 50.0, "arrow": 20.0}
_VACUUM_TRIES: Final = 10
_NAIVE_SQL: Final = """
SELECT instrument, interval, open_time, close_time, open, high, low, close, volume,
       quote_volume, vwap, taker_buy_volume, trades, first_trade_id, last_trade_id, revision,
       status, updated_at
FROM candles
WHERE instrument = %s AND interval = %s AND open_time >= %s AND open_time < %s
ORDER BY open_time
"""


@dataclass(frozen=True, slots=True)
class Latency:
    """One contender's request latencies, seconds."""

    name: str
    seconds: list[float]
    size: int

    def percentile(self, p: float) -> float:
        ordered = sorted(self.seconds)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds) * 1000


def candles(n: int) -> list[Candle]:
    """``n`` closed one-minute candles of a random-looking walk (deterministic)."""
    found = []
    price = 87_000_00
    for k in range(n):
        step = (k * 7919) % 401 - 200
        open_, close = price, price + step
        high, low = max(open_, close) + k % 37, min(open_, close) - k % 23
        volume = 1_000 + (k * 104_729) % 9_000_000
        found.append(
            Candle(
                INSTRUMENT, MINUTE, T0 + k * MINUTE.ns, 2, 8, open_, high, low, close,
                volume, volume * (open_ + close) // 2, volume // 3, 1 + k % 50,
                10_000 + 100 * k, 10_050 + 100 * k, 0, CandleStatus.CLOSED,
            )
        )  # fmt: skip
        price = close
    return found


# -- the server process -------------------------------------------------------------------


def serve(database_url: str, port: int) -> None:
    """The history API at ``/`` (final pages cached in memory) and at ``/cold`` (no cache:
    every request reads the database), the naive baseline at ``/naive``, until killed."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    from charting import ApiSettings, create_app_for_url
    from machine import settle_heap
    from web.server import run_until_stopped

    api = create_app_for_url(database_url, ApiSettings(max_limit=1_000_000))
    cold = create_app_for_url(database_url, ApiSettings(max_limit=1_000_000, cache_bytes=0))
    connections: list[psycopg.AsyncConnection[Any]] = []

    async def naive(request: Request) -> Response:
        start = request.query_params["start"]
        end = request.query_params["end"]
        connection = connections[0]
        cursor = await connection.execute(_NAIVE_SQL, (INSTRUMENT, "1m", start, end))
        rows = await cursor.fetchall()
        body = json.dumps(rows, default=str)
        return Response(body, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            api.router.lifespan_context(api),  # the APIs open their databases
            cold.router.lifespan_context(cold),
            await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection,
        ):
            connections.append(connection)
            yield

    routes = [Route("/naive", naive), Mount("/cold", cold), Mount("/", api)]
    app = Starlette(routes=routes, lifespan=lifespan)
    settle_heap()  # as `mdp api` does before it serves
    run_until_stopped(app, "127.0.0.1", port, log_level="warning")  # as `mdp api` serves


# -- the measuring process ----------------------------------------------------------------


@contextlib.contextmanager
def server_process(database_url: str) -> Iterator[str]:
    with child_server(
        "bench.history", free_port(), "/v1/instruments", {"DATABASE_URL": database_url}
    ) as base:
        yield base


class Client:
    """Sequential keep-alive GETs, timed from sending the request to the last body byte.

    It is the standard library's ``http.client``: a body of known length is read in a few
    large reads, so that the figures are the server's. httpx (the analysts' client in
    ``charting.client``) spends several milliseconds of its own on a 2 MB body; the run
    measures that too, as one extra row (``httpx`` in its name)."""

    def __init__(self, base: str) -> None:
        self._http = http.client.HTTPConnection(base.removeprefix("http://"), timeout=60)
        self._httpx = httpx.Client(base_url=base, timeout=60)

    def close(self) -> None:
        self._http.close()
        self._httpx.close()

    def get(self, path: str, *, with_httpx: bool = False) -> tuple[int, bytes]:
        if with_httpx:
            response = self._httpx.get(path)
            return response.status_code, response.content
        self._http.request("GET", path)
        answer = self._http.getresponse()
        return answer.status, answer.read()


def measure(
    client: Client, name: str, path: str, requests: int, rows: int, *, with_httpx: bool = False
) -> Latency:
    """``requests`` sequential GETs of ``path`` (after a few to warm up); checks each answer."""
    for _ in range(min(5, requests)):
        _check(*client.get(path, with_httpx=with_httpx), name, rows)
    seconds = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        status, body = client.get(path, with_httpx=with_httpx)
        seconds.append(time.perf_counter() - start)
        size = len(body)
        _check(status, body, name, rows)
    return Latency(name, seconds, size)


def _check(status: int, body: bytes, name: str, rows: int) -> None:
    if status != 200:
        raise RuntimeError(f"{name}: {status} {body[:300]!r}")
    if name.startswith("naive"):
        found = len(json.loads(body))
    elif "JSON" in name:
        found = len(json.loads(body)["candles"])
    elif "CSV" in name:
        found = body.count(b"\n") - 1  # after the header
    else:
        found = pa.ipc.open_stream(body).read_all().num_rows
    if found != rows:
        raise RuntimeError(f"{name}: {found} candles, expected {rows}")


def report(figures: list[Latency], rows: int, requests: int, title: str = "") -> None:
    baseline = figures[0]
    print(
        f"\nhistory API{title}: {rows:,} one-minute candles per request, {requests} requests"
        " each (sequential, keep-alive HTTP on 127.0.0.1; the server in its own process)"
    )
    print(
        f"  {'contender':<34} {'p50 ms':>8} {'p99 ms':>8} {'KiB':>7} {'target p99':>11}"
        f" {'p50 x naive':>12}"
    )
    for figure in figures:
        target = next((t for k, t in TARGETS_MS.items() if k in figure.name.lower()), None)
        if figure is baseline or target is None:
            target_text = "-"
        else:
            verdict = "met" if target is not None and figure.percentile(99) <= target else "MISSED"
            target_text = f"{target:.0f} {verdict}"
        ratio = baseline.p50 / figure.p50
        print(
            f"  {figure.name:<34} {figure.p50:>8.1f} {figure.percentile(99):>8.1f}"
            f" {figure.size / 1024:>7.0f} {target_text:>11} {ratio:>11.1f}x"
        )


def stock(database_url: str, rows: int) -> None:
    """Write the candles, then vacuum until their pages are all-visible (a vacuum that
    starts while the writer's connections are still closing cannot mark them)."""

    async def write() -> None:
        async with PostgresStore.open(database_url) as store:
            await store.write(candles=candles(rows))

    asyncio.run(write())
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _ in range(_VACUUM_TRIES):
            conn.execute("VACUUM ANALYZE candles")
            found = conn.execute(
                "SELECT relallvisible, relpages FROM pg_class WHERE oid = 'candles'::regclass"
            ).fetchone()
            if found is not None and found[0] >= found[1]:
                return
            time.sleep(0.2)
    print("note: the candles' pages are not all-visible: packed pages read the table")


def run(database_url: str, rows: int, requests: int, title: str = "") -> list[Latency]:
    """One measurement of every contender, with a server of its own."""
    start = "2026-01-01T00:00:00Z"
    end_ns = T0 + rows * MINUTE.ns
    end = f"{end_ns // 1_000_000}"
    query = f"instrument={INSTRUMENT}&interval=1m&start={start}&end={end}&limit={rows}"
    load_before = os.getloadavg()[0]
    with server_process(database_url) as base:
        client = Client(base)
        try:
            naive_end = f"2026-01-01T00:00:00Z&end={iso_utc(end_ns)}"
            naive = f"/naive?start={naive_end}"
            figures = [measure(client, "naive (psycopg + json.dumps)", naive, requests, rows)]
            for cache, prefix in (("database", "/cold"), ("cached", "")):
                for fmt in ("json", "arrow"):
                    name = f"/v1/candles {fmt.upper() if fmt == 'json' else 'Arrow'} ({cache})"
                    url = f"{prefix}/v1/candles?{query}&format={fmt}"
                    figures.append(measure(client, name, url, requests, rows))
            name = "/v1/candles Arrow (cached, httpx)"
            figures.append(measure(client, name, url, requests, rows, with_httpx=True))
            csv = f"/cold/v1/candles?{query}&format=csv"
            figures.append(measure(client, "/v1/candles CSV (database)", csv, requests, rows))
        finally:
            client.close()
    report(figures, rows, requests, title)
    print(f"  load average (1 min, {os.cpu_count()} cores): {load_before:.2f} before,"
          f" {os.getloadavg()[0]:.2f} after")  # fmt: skip
    return figures


def report_medians(runs: list[list[Latency]]) -> None:
    """Each contender's median p50 and p99 over the runs, and their ranges."""
    print(f"\nmedians over {len(runs)} runs (range in brackets)")
    print(f"  {'contender':<34} {'p50 ms':>20} {'p99 ms':>20} {'target p99':>11}")
    for index, figure in enumerate(runs[0]):
        p50s = [run[index].p50 for run in runs]
        p99s = [run[index].percentile(99) for run in runs]
        target = next((t for k, t in TARGETS_MS.items() if k in figure.name.lower()), None)
        if index == 0 or target is None:
            target_text = "-"
        else:
            verdict = "met" if statistics.median(p99s) <= target else "MISSED"
            target_text = f"{target:.0f} {verdict}"
        print(f"  {figure.name:<34} {_spread(p50s):>20} {_spread(p99s):>20} {target_text:>11}")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def main(argv: Sequence[str] | None = None) -> list[Latency]:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--candles", type=int, default=10_000, help="candles per request")
    parser.add_argument("--requests", type=int, default=200, help="requests per contender")
    parser.add_argument("--runs", type=int, default=1, help="whole measurements to repeat")
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--smoke", action="store_true", help="tiny inputs (for CI)")
    parser.add_argument("--serve", metavar="PORT", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.database_url, args.serve)
        return []
    rows, requests = (300, 10) if args.smoke else (args.candles, args.requests)
    runs = 1 if args.smoke else max(1, args.runs)
    with scratch_database(args.database_url) as url:
        stock(url, rows)
        results = [
            run(url, rows, requests, f" (run {k + 1} of {runs})" if runs > 1 else "")
            for k in range(runs)
        ]
    if runs > 1:
        report_medians(results)
    return results[-1]


if __name__ == "__main__":
    main()
