"""Traces in embedded mode (the in-process bus): a sampled tick batch is one trace from the
feed through the engine, the writer and the gateway; an unsampled one leaves no span and no
header; log lines written inside a span carry its trace id."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from opentelemetry import trace

from core import codecs
from core.topics import TICKS
from streams.memory import MemoryBus
from telemetry import tracing
from telemetry.logs import LogSettings, configure
from tests.telemetry.traces import (
    INSTRUMENT,
    STAGES,
    WAIT,
    assert_one_tree,
    batch,
    one,
    parents,
    pipeline,
    trace_of_one_batch,
    traced,
    until,
)


async def test_a_sampled_tick_batch_is_one_trace_across_ingest_engine_writer_and_gateway() -> None:
    with traced(1.0) as exporter:
        async with MemoryBus(partitions=2) as bus, pipeline(bus, bus, bus, bus) as parts:
            spans = await trace_of_one_batch(parts, exporter)
    assert_one_tree(spans)
    names = [s.name for s in spans]
    assert set(names) >= set(STAGES)
    engine = next(s for s in spans if s.name == "engine.step")
    root = next(s for s in spans if s.name == "ingest.publish")
    assert engine.parent is not None
    assert root.context is not None
    assert engine.parent.span_id == root.context.span_id
    assert root.attributes is not None
    assert root.attributes["mdp.instrument"] == INSTRUMENT
    # the candles the engine made reach the writer and the gateway: the engine step is the
    # parent of their rounds' spans, or linked from them when the batch's ticks came first
    assert engine.context is not None
    after_engine = {s.name for s in spans if engine.context.span_id in parents(s)}
    assert after_engine == {"writer.store", "gateway.send"}


async def test_an_unsampled_batch_makes_no_span_and_carries_no_header() -> None:
    with traced(0.0) as exporter:
        async with MemoryBus(partitions=1) as bus, pipeline(bus, bus, bus, bus) as parts:
            sub = bus.subscribe("look", [TICKS])
            await asyncio.wait_for(parts.feed.run(one(batch(1))), WAIT)
            records = await sub.poll(timeout=1)
            await sub.close()
            ticks = 5 * len(records)  # the warm-up batches and the feed's, 5 ticks each

            def everywhere() -> bool:
                engine, writer = parts.engine.stats.ticks, parts.writer.stats.ticks
                return engine == writer == ticks and parts.gateway.stats.tick_batches == len(
                    records
                )

            await until(everywhere, "every batch read by the engine, the writer, the gateway")
    assert len(records) >= 2
    assert all(r.headers == () for r in records)
    assert exporter.get_finished_spans() == ()


async def test_a_log_line_written_inside_a_traced_round_carries_the_trace_id() -> None:
    stream = io.StringIO()
    handler = configure(LogSettings("test", "json", "warning"), stream)
    try:
        with traced(1.0) as exporter:
            async with MemoryBus(partitions=1) as bus, pipeline(bus, bus, bus, bus) as parts:
                root = tracing.sampled_root("ingest.publish")
                assert root is not None
                with trace.use_span(root, end_on_exit=True):
                    headers = tracing.headers_now()
                key = codecs.instrument_key(INSTRUMENT)
                await bus.topic(TICKS).publish(key, b"not a batch", headers=headers)
                await until(lambda: parts.engine.stats.undecodable == 1, "the engine read it")
            spans = exporter.get_finished_spans()
    finally:
        logging.getLogger().removeHandler(handler)
    trace_id = f"{root.get_span_context().trace_id:032x}"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    undecodable = [line for line in lines if "undecodable record" in line["message"]]
    assert undecodable, lines
    assert {line["trace_id"] for line in undecodable} == {trace_id}
    assert any(s.name == "engine.step" for s in spans)
    assert all(line["trace_id"] == "" for line in lines if line not in undecodable)


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_a_sample_ratio_outside_0_to_1_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="the trace sample ratio is a number from 0 to 1"):
        tracing.TraceSettings("test", sample=ratio)
