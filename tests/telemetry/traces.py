"""A tick batch through the pipeline (feed, engine, writer, gateway) on any bus, with the
spans it leaves in an in-memory exporter: what the embedded and the Kafka trace tests share."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import codecs
from core.engine import CandleEngine, EngineConfig
from core.intervals import parse_intervals
from core.ticks import Side, Tick, TickBatch
from core.topics import TICKS
from ingest.publisher import FeedPublisher
from storage.memory_store import MemoryStore
from storage.writer import StorageWriter
from streams.bus import Bus
from streams.engine_runner import EngineRunner
from telemetry import tracing
from ws_gateway import Gateway, GatewaySettings

INSTRUMENT = "SYNTH:BTCUSD"
WAIT = 20.0
STAGES = ("ingest.publish", "engine.step", "writer.store", "gateway.send")


@contextlib.contextmanager
def traced(sample: float) -> Iterator[InMemorySpanExporter]:
    """Tracing at ``sample`` with an in-memory exporter, for the ``with`` block."""
    exporter = InMemorySpanExporter()
    tracing.configure(tracing.TraceSettings("test", sample=sample), exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def batch(first_id: int, count: int = 5, instrument: str = INSTRUMENT) -> TickBatch:
    now = time.time_ns()
    return TickBatch.from_ticks(
        [
            Tick(instrument, first_id + i, Decimal("100.5"), Decimal("0.25"), Side.BUY,
                 now + i, now + i)
            for i in range(count)
        ]
    )  # fmt: skip


async def one(event: TickBatch) -> AsyncIterator[TickBatch]:
    yield event


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Pipeline:
    """The services of the data flow on the buses given, each a consumer of its own."""

    feed: FeedPublisher
    engine: EngineRunner
    writer: StorageWriter
    gateway: Gateway


@contextlib.asynccontextmanager
async def pipeline(
    feed_bus: Bus, engine_bus: Bus, writer_bus: Bus, gateway_bus: Bus
) -> AsyncIterator[Pipeline]:
    """Feed, engine, writer and gateway running, each on its own bus (one bus four times in
    embedded mode; four clients of one broker in Kafka mode). The gateway reads from the end:
    it is fed untraced batches until it has read one, so that what follows reaches it."""
    tag = uuid.uuid4().hex[:8]
    config = EngineConfig(intervals=parse_intervals(["1s"]), throttle_ns=0)
    engine = EngineRunner(
        engine_bus, CandleEngine(config), group=f"engine-{tag}", poll_timeout=0.05
    )
    writer = StorageWriter(writer_bus, MemoryStore(), group=f"writer-{tag}", poll_timeout=0.05)
    settings = GatewaySettings(port=0, instruments=(INSTRUMENT,), group_prefix=f"gateway-{tag}")
    gateway = Gateway(gateway_bus, None, settings)
    tasks = [asyncio.create_task(engine.run()), asyncio.create_task(writer.run())]
    try:
        async with gateway:
            ticks = feed_bus.topic(TICKS)
            first, deadline = 1_000_000, time.monotonic() + WAIT
            while gateway.stats.tick_batches == 0:  # an untraced record: no header
                warm = batch(first)
                first += 10
                await ticks.publish(
                    codecs.instrument_key(INSTRUMENT), codecs.encode_tick_batch(warm)
                )
                await asyncio.sleep(0.1)
                assert time.monotonic() < deadline, "the gateway read nothing"
            yield Pipeline(FeedPublisher(feed_bus), engine, writer, gateway)
    finally:
        engine.stop()
        writer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)


def by_trace(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def trace_of_one_batch(parts: Pipeline, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """Publish one (sampled) batch and wait for its trace to reach every stage; its spans."""
    await asyncio.wait_for(parts.feed.run(one(batch(1))), WAIT)
    roots = [s for s in exporter.get_finished_spans() if s.name == "ingest.publish"]
    assert len(roots) == 1, [s.name for s in exporter.get_finished_spans()]
    root = roots[0]
    assert root.context is not None
    assert root.parent is None
    trace_id = root.context.trace_id

    def reached_all() -> bool:
        """A span of every stage, and the candles the engine made read on (its children or
        linked to it)."""
        spans = by_trace(exporter.get_finished_spans(), trace_id)
        steps = {s.context.span_id for s in spans if s.name == "engine.step" and s.context}
        after = {s.name for s in spans if steps & parents(s)}
        return {s.name for s in spans} >= set(STAGES) and after == {"writer.store", "gateway.send"}

    await until(reached_all, f"a span of each of {STAGES} in the batch's trace")
    return by_trace(exporter.get_finished_spans(), trace_id)


def parents(span: ReadableSpan) -> set[int]:
    """The span ids of ``span``'s parent and of the spans it links to (a round that read
    records of several traced spans is the first one's child and links to the others)."""
    found = {link.context.span_id for link in span.links}
    if span.parent is not None:
        found.add(span.parent.span_id)
    return found


def assert_one_tree(spans: list[ReadableSpan]) -> None:
    """Every span but the root has its parent among ``spans``: one trace, no loose ends."""
    ids = {s.context.span_id for s in spans if s.context is not None}
    roots = [s for s in spans if s.parent is None]
    assert [r.name for r in roots] == ["ingest.publish"]
    for span in spans:
        if span.parent is not None:
            assert span.parent.span_id in ids, f"{span.name}'s parent is not in the trace"
