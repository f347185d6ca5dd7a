"""A Faust event's record keeps the Kafka headers it came with (the trace context of a sampled
batch), whether Faust hands them over as pairs or as a mapping."""

from __future__ import annotations

from types import SimpleNamespace

from streams.kafka.faust_app import _record

TRACEPARENT = b"00-" + b"ab" * 16 + b"-" + b"cd" * 8 + b"-01"


def event(headers: object) -> SimpleNamespace:
    message = SimpleNamespace(
        topic="md.ticks", partition=2, offset=7, key=b"k", value=b"v", timestamp=1.5,
        headers=headers,
    )  # fmt: skip
    return SimpleNamespace(message=message)


def test_headers_as_pairs_or_a_mapping_become_the_records_and_none_become_empty() -> None:
    for given in ([("traceparent", TRACEPARENT)], {"traceparent": TRACEPARENT}):
        record = _record(event(given))
        assert record.headers == (("traceparent", TRACEPARENT),)
        assert (record.topic, record.partition, record.offset) == ("md.ticks", 2, 7)
    assert _record(event(None)).headers == ()
    assert _record(event([])).headers == ()
