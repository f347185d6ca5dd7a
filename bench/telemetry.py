"""What metrics and tracing at 1% cost together, against the same work with both off, in one
run (contenders alternate, repeat by repeat; medians, ratios and p99s are printed).

- **engine round**: the processor loop's round as the engine runs it
  (:meth:`streams.processor.Processor.handle` of an :class:`~streams.engine_runner.EngineRunner`
  on an in-process bus: decode, engine step, publish), over the processor benchmark's
  synthetic ``md.ticks`` polls (records of 100 ticks, polls of 256). "On": tracing at 1%
  (:func:`telemetry.tracing.configure`, spans batched to an exporter that sends nowhere) and
  1% of the records carrying a sampled context, as the feed makes them; the metrics on.
  "Off": no tracer provider, no header, the engine's metrics swapped for no-ops
  (:func:`bench.metrics.engine_off`). p99 is of one round's time.
- **feed publish**: :class:`ingest.publisher.FeedPublisher` (the sampling decision per batch).
- **HTTP request**: a Starlette app called through ASGI without a socket
  (:data:`bench.metrics.HTTP_APP`), wrapped as :func:`web.server.uvicorn_config` wraps every
  app (:func:`telemetry.http.traced` around :class:`~telemetry.http.HttpMetrics`), against
  the bare app: the middlewares' cost against the least work.
- **gateway**: :mod:`bench.gateway`'s gateway run (WebSocket clients in this process, the
  server in another), against the same run with tracing at 1% in the server (the publisher
  asks the sampler for each candle, as the engine's round would be sampled, and publishes a
  sampled one with its context) and the metrics scraped every second. Flat-out deliveries
  per second and the paced phase's p99 from publish to receipt.

``python -m bench.telemetry`` (``--smoke`` for a tiny run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from opentelemetry import trace

from bench import gateway
from bench.common import Discard
from bench.metrics import HTTP_APP, engine_off, feed_batches, feed_off, run_feed, run_http
from bench.processor import Poll, polls, records
from core.engine import CandleEngine, EngineConfig
from streams.bus import Record
from streams.engine_runner import EngineRunner
from streams.memory import MemoryBus
from telemetry import tracing
from telemetry.http import HttpMetrics, traced

SAMPLE = 0.01


@contextlib.contextmanager
def telemetry_on() -> Iterator[None]:
    """Tracing at 1% for the ``with`` block (the metrics are on unless swapped out)."""
    tracing.configure(tracing.TraceSettings("bench", sample=SAMPLE), Discard(), batched=True)
    try:
        yield
    finally:
        tracing.shutdown()


@contextlib.contextmanager
def telemetry_off(
    metrics_off: Callable[[], contextlib.AbstractContextManager[None]],
) -> Iterator[None]:
    """No tracer provider, and the measured module's metrics swapped for no-ops."""
    tracing.shutdown()
    with metrics_off():
        yield


def sampled(all_records: Sequence[Record]) -> list[Record]:
    """The records as the feed publishes them with tracing on: each batch asks the sampler,
    and a sampled one carries its span's context (about 1 in 100)."""
    out = []
    with telemetry_on():
        for record in all_records:
            span = tracing.sampled_root("ingest.publish")
            if span is None:
                out.append(record)
                continue
            with trace.use_span(span, end_on_exit=True):
                out.append(replace(record, headers=tracing.headers_now()))
    return out


@dataclass(slots=True)
class Rounds:
    """One contender's runs: the wall time of each run, every round's time."""

    name: str
    items: int
    seconds: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)

    @property
    def median_rate(self) -> float:
        return self.items / statistics.median(self.seconds)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.rounds)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def engine_rounds(batches: Sequence[Poll]) -> list[float]:
    """Each poll through the engine runner's round, on a bus of its own; each round's time."""

    async def run() -> list[float]:
        now = [0]
        async with MemoryBus(partitions=4, capacity=100_000) as bus:
            runner = EngineRunner(bus, CandleEngine(EngineConfig()), clock=lambda: now[0])
            handle = runner.processor.handle
            times = []
            for poll, at in batches:
                now[0] = at
                start = time.perf_counter()
                await handle(poll)
                times.append(time.perf_counter() - start)
            return times

    return asyncio.run(run())


def engine_pair(ticks: int, repeat: int) -> tuple[Rounds, Rounds]:
    plain = records(ticks, 100)
    traced = sampled(plain)
    on, off = Rounds("metrics + tracing at 1%", ticks), Rounds("both off", ticks)
    with_headers = sum(1 for r in traced if r.headers)
    print(f"  engine: {len(plain):,} records, {with_headers} of them sampled")
    for index in range(repeat + 1):
        for figure, batches, setting in (
            (on, polls(traced, 256), telemetry_on),
            (off, polls(plain, 256), lambda: telemetry_off(engine_off)),
        ):
            with setting():
                start = time.perf_counter()
                times = engine_rounds(batches)
                elapsed = time.perf_counter() - start
            if index:  # the first round warms up
                figure.seconds.append(elapsed)
                figure.rounds.extend(times)
    return on, off


def feed_pair(ticks: int, repeat: int) -> tuple[Rounds, Rounds]:
    batches = feed_batches(ticks, 100)
    on, off = Rounds("metrics + tracing at 1%", ticks), Rounds("both off", ticks)
    for index in range(repeat + 1):
        for figure, setting in (
            (on, telemetry_on),
            (off, lambda: telemetry_off(feed_off)),
        ):
            with setting():
                start = time.perf_counter()
                run_feed(batches)
                elapsed = time.perf_counter() - start
            if index:
                figure.seconds.append(elapsed)
    return on, off


def http_pair(requests: int, repeat: int) -> tuple[Rounds, Rounds]:
    wrapped = traced(HttpMetrics(HTTP_APP))
    on, off = Rounds("metrics + tracing at 1%", requests), Rounds("both off", requests)
    for index in range(repeat + 1):
        for figure, app, setting in (
            (on, wrapped, telemetry_on),
            (off, HTTP_APP, lambda: telemetry_off(contextlib.nullcontext)),
        ):
            with setting():
                start = time.perf_counter()
                run_http(requests, app)
                elapsed = time.perf_counter() - start
            if index:
                figure.seconds.append(elapsed)
    return on, off


def print_pair(title: str, on: Rounds, off: Rounds, unit: str, p99: bool = True) -> None:
    print(f"\n{title}")
    for figure in (on, off):
        tail = f"   p99 round {figure.p99_ms:8.3f} ms" if p99 else ""
        print(f"  {figure.name:<26} {figure.median_rate:>14,.0f} {unit}{tail}")
    lost = 1 - on.median_rate / off.median_rate
    print(
        f"  {'on/off':<26} {on.median_rate / off.median_rate:>14.3f}   throughput lost {lost:+.1%}"
    )


@dataclass(slots=True)
class GatewayRuns:
    flat_out: list[float] = field(default_factory=list)
    paced_p99_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def gateway_pairs(args: argparse.Namespace) -> dict[str, GatewayRuns]:
    names = gateway.instruments(args.instruments)
    runs = {"gateway": GatewayRuns(), gateway.TELEMETRY: GatewayRuns()}
    gateway.raise_open_files()
    for _ in range(args.gateway_repeat):
        for contender, found in runs.items():
            run = asyncio.run(
                gateway.run_one(
                    contender, args.clients, names, args.per_client, args.offered, args.seconds,
                    pinned=not args.no_pin,
                )
            )  # fmt: skip
            if run.error is not None:
                found.errors.append(run.error)
                continue
            paced, flat = run.phases
            found.flat_out.append(flat.delivered)
            found.paced_p99_ms.append(paced.p99_ms)
    return runs


def print_gateway(runs: dict[str, GatewayRuns], clients: int) -> None:
    print(f"\ngateway fan-out, {clients:,} clients (medians of the runs)")
    label = {"gateway": "both off", gateway.TELEMETRY: "metrics + tracing at 1%"}
    for contender, found in runs.items():
        if found.errors:
            print(f"  {label[contender]:<26} failed: {found.errors[0]}")
        if not found.flat_out:
            return
        flat, p99 = statistics.median(found.flat_out), statistics.median(found.paced_p99_ms)
        print(
            f"  {label[contender]:<26} {flat:>14,.0f} deliveries/s flat out"
            f"   paced p99 {p99:6.1f} ms"
        )
    on, off = runs[gateway.TELEMETRY], runs["gateway"]
    ratio = statistics.median(on.flat_out) / statistics.median(off.flat_out)
    print(f"  {'on/off':<26} {ratio:>14.3f}   throughput lost {1 - ratio:+.1%}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--instruments", type=int, default=10)
    parser.add_argument("--per-client", type=int, default=3)
    parser.add_argument("--offered", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--gateway-repeat", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.ticks, args.repeat, args.clients, args.instruments = 4_000, 1, 20, 4
        args.requests = 200
        args.offered, args.seconds, args.gateway_repeat = 400.0, 0.5, 1
    print(f"metrics and tracing at {SAMPLE:.0%} against both off; contenders alternate")
    print_pair(
        "engine round (records of 100 ticks, polls of 256)",
        *engine_pair(args.ticks, args.repeat),
        "ticks/s",
    )
    print_pair(
        "feed publish (batches of 100)", *feed_pair(args.ticks, args.repeat), "ticks/s", p99=False
    )
    on, off = http_pair(args.requests, args.repeat)
    print_pair("HTTP request (ASGI, no socket)", on, off, "requests/s", p99=False)
    per_request_us = (1 / on.median_rate - 1 / off.median_rate) * 1e6
    print(f"  {'':<26} the middlewares' cost: {per_request_us:.1f} µs a request")
    print_gateway(gateway_pairs(args), args.clients)


if __name__ == "__main__":
    main()
