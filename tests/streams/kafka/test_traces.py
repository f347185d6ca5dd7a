"""Traces in Kafka mode: the feed, the engine, the writer and the gateway each on a Kafka client
of its own (as in their own processes), and a sampled tick batch is still one trace: its
context goes through the broker in the records' headers."""

from __future__ import annotations

import asyncio
import contextlib

from core.topics import CANDLES, TICKS
from streams.bus import Record
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.telemetry.traces import (
    STAGES,
    WAIT,
    assert_one_tree,
    parents,
    pipeline,
    trace_of_one_batch,
    traced,
)


async def test_a_sampled_tick_batch_is_one_trace_across_kafka_clients(fresh_topics: str) -> None:
    settings = KafkaSettings(fresh_topics, session_timeout=6.0)
    with traced(1.0) as exporter:
        async with contextlib.AsyncExitStack() as stack:
            buses = [
                await stack.enter_async_context(KafkaBus(settings, create_topics=False))
                for _ in range(4)
            ]
            parts = await stack.enter_async_context(pipeline(*buses))
            spans = await trace_of_one_batch(parts, exporter)
            feed = buses[0].subscribe("trace-look", [TICKS, CANDLES])
            stack.push_async_callback(feed.close)
            records: list[Record] = []
            async with asyncio.timeout(WAIT):
                while not any(r.topic == CANDLES and r.headers for r in records):
                    records += await feed.poll(timeout=1)
    assert_one_tree(spans)
    assert {s.name for s in spans} >= set(STAGES)
    engine = next(s for s in spans if s.name == "engine.step")
    assert engine.context is not None
    assert {s.name for s in spans if engine.context.span_id in parents(s)} == {
        "writer.store",
        "gateway.send",
    }
    # what the broker holds: the traced batch's record and the candles it made carry a
    # traceparent of the batch's trace; the warm-up records carry no header
    trace_id = f"{engine.context.trace_id:032x}"
    traced_records = [r for r in records if r.headers]
    assert {r.topic for r in traced_records} == {TICKS, CANDLES}
    for record in traced_records:
        (name, value), *_ = record.headers
        assert name == "traceparent"
        assert value.decode().split("-")[1] == trace_id
    assert any(r.topic == TICKS and not r.headers for r in records)
