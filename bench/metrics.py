"""What the Prometheus metrics cost where the work is done, against the same work with them
off, in one run (contenders alternate, repeat by repeat; medians and ratios are printed).

- **engine step** (:func:`streams.engine_runner.engine_step`, the hot path of both modes):
  the processor benchmark's synthetic ``md.ticks`` polls, in the shipped shape (records of
  100 ticks, polls of 256 records) and in the worst one (a poll of one record of one tick:
  the metrics' fixed cost per call against the least work);
- **feed publish** (:class:`ingest.publisher.FeedPublisher` onto an in-process bus): the
  per-venue counters move once per batch;
- **HTTP request** (:class:`telemetry.http.HttpMetrics` around a Starlette app, called
  directly: no socket, so the figure is the middleware's cost against the least work);
- **scrape**: one ``/metrics`` rendering with a gateway of ``--clients`` sessions watched
  (its gauges read every session's queue), in ms: time the scrape thread holds the GIL.

"Off" swaps the metric objects of the measured module for ones that do nothing; the
gateway's fan-out has no metric on its path (its gauges are read at scrape time, closes
and conflations counted when they happen), so it has no contender here.

``python -m bench.metrics`` (``--smoke`` for a tiny run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import ingest.publisher
import streams.engine_runner
from bench.common import Figure
from bench.processor import INSTRUMENTS, Poll, polls, records
from core.engine import CandleEngine, EngineConfig
from ingest.publisher import FeedPublisher
from ingest.synthetic import SyntheticFeed
from streams.engine_runner import EngineStats, engine_step
from streams.memory import MemoryBus
from streams.processor import decode_batch
from telemetry.http import HttpMetrics
from telemetry.metrics import GATEWAY_CLIENTS, GATEWAY_QUEUE_DEPTH, HTTP_REQUESTS, REGISTRY


class _Off:
    """A metric that does nothing (what "metrics off" means here)."""

    def labels(self, *values: str) -> _Off:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass

    def set(self, value: float) -> None:
        pass


OFF = _Off()
ENGINE_METRICS = ("ENGINE_TICKS", "ENGINE_CANDLES", "ENGINE_LAG", "ENGINE_EVENT_TIME")
FEED_METRICS = ("INGEST_TICKS", "INGEST_BATCHES", "INGEST_GAPS")


@contextlib.contextmanager
def off(module: ModuleType, names: Sequence[str], **functions: object) -> Iterator[None]:
    """``module``'s metrics (and the ``functions`` named) swapped for no-ops meanwhile."""
    saved = {name: getattr(module, name) for name in (*names, *functions)}
    for name in names:
        setattr(module, name, OFF)
    for name, replacement in functions.items():
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def pair(
    name: str,
    items: int,
    action: Callable[[], object],
    metrics_off: Callable[[], contextlib.AbstractContextManager[None]],
    repeat: int,
) -> tuple[Figure, Figure]:
    """``action`` with the metrics on and off, alternating (after a warm-up of each)."""
    on_seconds: list[float] = []
    off_seconds: list[float] = []
    for index in range(repeat + 1):
        for seconds, disabled in ((on_seconds, False), (off_seconds, True)):
            with metrics_off() if disabled else contextlib.nullcontext():
                start = time.perf_counter()
                action()
                elapsed = time.perf_counter() - start
            if index:  # the first round warms up
                seconds.append(elapsed)
    return Figure(f"{name}, metrics on", items, on_seconds), Figure(
        f"{name}, metrics off", items, off_seconds
    )


def run_engine(batches: Sequence[Poll]) -> int:
    engine = CandleEngine(EngineConfig())
    stats = EngineStats()
    for poll, now in batches:
        engine_step(engine, decode_batch(poll, "bench"), now, stats, "bench", caught_up=False)
    return stats.candles


def engine_off() -> contextlib.AbstractContextManager[None]:
    return off(streams.engine_runner, ENGINE_METRICS, count_reject=lambda *args: None)


def feed_batches(total: int, per_batch: int) -> list[Any]:
    feed = SyntheticFeed(
        instruments=INSTRUMENTS, rate=100.0, duration=total / (100.0 * len(INSTRUMENTS)),
        seed=11, batch_size=per_batch,
    )  # fmt: skip
    return list(feed.batches())


def run_feed(batches: Sequence[Any]) -> int:
    async def events() -> AsyncIterator[Any]:
        for batch in batches:
            yield batch

    async def run() -> int:
        async with MemoryBus(partitions=4, capacity=len(batches) + 1) as bus:
            publisher = FeedPublisher(bus)
            await publisher.run(events())
            return publisher.stats.ticks

    return asyncio.run(run())


def feed_off() -> contextlib.AbstractContextManager[None]:
    return off(ingest.publisher, FEED_METRICS)


async def _ok(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


HTTP_APP = Starlette(routes=[Route("/v1/instruments/{name}", _ok, methods=["GET"])])
MEASURED_APP = HttpMetrics(HTTP_APP)


def run_http(requests: int, app: Any) -> int:
    async def run() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(requests):
                await client.get("/v1/instruments/SYNTH:BTCUSD")
        return requests

    return asyncio.run(run())


def scrape_ms(clients: int, repeat: int) -> tuple[float, int]:
    """Median ms of one rendering of the registry with ``clients`` sessions watched; bytes."""
    sessions = {n: SimpleNamespace(outbox=[b"x"] * (n % 3)) for n in range(clients)}
    stops = [
        GATEWAY_CLIENTS.watch(lambda: len(sessions)),
        GATEWAY_QUEUE_DEPTH.watch(lambda: sum(len(s.outbox) for s in list(sessions.values()))),
    ]
    try:
        size = len(generate_latest(REGISTRY))
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            generate_latest(REGISTRY)
            seconds.append(time.perf_counter() - start)
    finally:
        for stop in stops:
            stop()
    return statistics.median(seconds) * 1000, size


def per_call_us(action: Callable[[], object], calls: int) -> float:
    """Median µs of one ``action()`` over three loops of ``calls``."""
    loops = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            action()
        loops.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(loops)


def fixed_costs(calls: int) -> list[tuple[str, float]]:
    """What the metric updates themselves cost per call, without the work around them: the
    figures the noisy throughput ratios above are bounded by."""
    step = streams.engine_runner
    stats = EngineStats()
    now = time.time_ns()
    publisher = FeedPublisher(bus=None)  # type: ignore[arg-type]  # only its counters move
    instrument = INSTRUMENTS[0]

    def engine_updates() -> None:
        step._measure(stats, 100, 12, now - 1_000_000, now)

    def feed_updates() -> None:
        publisher._batches_in(instrument).inc()
        publisher._ticks_in(instrument).inc(100)

    def http_update() -> None:
        HTTP_REQUESTS.labels("GET", "/v1/candles/{instrument}", "200").observe(0.004)

    return [
        ("engine step's updates (4 metrics)", per_call_us(engine_updates, calls)),
        ("feed batch's updates (2 counters)", per_call_us(feed_updates, calls)),
        ("HTTP request's update (labels + observe)", per_call_us(http_update, calls)),
    ]


def print_pairs(title: str, pairs: list[tuple[Figure, Figure]], unit: str) -> None:
    print(f"\n{title}")
    print(f"  {'contender':<44} {'median ' + unit:>18} {'best ' + unit:>18} {'on/off':>7}")
    for on, without in pairs:
        for figure in (on, without):
            ratio = figure.median_rate / without.median_rate
            print(
                f"  {figure.name:<44} {figure.median_rate:>18,.0f} {figure.best_rate:>18,.0f}"
                f" {ratio:>7.3f}"
            )
        lost = 1 - on.median_rate / without.median_rate
        print(f"  {'':<44} throughput lost with metrics: {lost:+.1%}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=400_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ticks, args.requests, args.clients, args.repeat = 4_000, 200, 100, 1
    shipped = polls(records(args.ticks, 100), 256)
    worst_ticks = max(args.ticks // 200, 200)
    worst = polls(records(worst_ticks, 1), 1)
    batches = feed_batches(args.ticks, 100)
    print(
        f"synthetic, {len(INSTRUMENTS)} instruments, {args.ticks:,} ticks; contenders alternate,"
        f" {args.repeat} runs each"
    )
    print_pairs(
        "engine step",
        [
            pair(
                "records of 100, polls of 256",
                args.ticks,
                lambda: run_engine(shipped),
                engine_off,
                args.repeat,
            ),
            pair(
                "1 tick a poll (worst case)",
                worst_ticks,
                lambda: run_engine(worst),
                engine_off,
                args.repeat,
            ),
        ],
        "ticks/s",
    )
    print_pairs(
        "feed publish (in-process bus)",
        [pair("batches of 100", args.ticks, lambda: run_feed(batches), feed_off, args.repeat)],
        "ticks/s",
    )
    http_on = measure_http(args.requests, MEASURED_APP, "with HttpMetrics", args.repeat)
    http_off = measure_http(args.requests, HTTP_APP, "without", args.repeat)
    print_pairs("HTTP request (ASGI, no socket)", [(http_on, http_off)], "requests/s")
    per_request_us = (1 / http_on.median_rate - 1 / http_off.median_rate) * 1e6
    print(f"  {'':<44} the middleware's cost: {per_request_us:.1f} µs a request")
    print("\nthe updates alone, per call:")
    for name, us in fixed_costs(1_000 if args.smoke else 100_000):
        print(f"  {name:<44} {us:>8.2f} µs")
    ms, size = scrape_ms(args.clients, max(args.repeat, 3))
    print(f"\nscrape: {ms:.2f} ms a /metrics rendering ({size:,} bytes) with {args.clients:,}"
          " gateway sessions watched")  # fmt: skip


def measure_http(requests: int, app: Any, name: str, repeat: int) -> Figure:
    seconds = []
    run_http(min(requests, 100), app)  # warm-up
    for _ in range(repeat):
        start = time.perf_counter()
        run_http(requests, app)
        seconds.append(time.perf_counter() - start)
    return Figure(f"{name}", requests, seconds)


if __name__ == "__main__":
    main()
