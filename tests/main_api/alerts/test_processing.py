"""The evaluator processor's pure half: which partition's evaluator holds an alert, and the
step that feeds a decoded batch to each partition's evaluator, in order."""

from __future__ import annotations

from typing import Any

from core.alerts import AlertFired
from core.topic_codecs import codec_for
from core.topics import CANDLES, TICKS
from main_api.alerts import AlertEvaluator
from main_api.alerts.processing import (
    PartitionState,
    apply_to,
    belongs,
    evaluate,
    stream_key,
)
from main_api.changes import AlertGone
from streams.bus import Record
from streams.partitioning import partition_for
from streams.processor import decode_batch
from tests.main_api.alerts.factories import alert, candle, ticks

PARTITIONS = 4
OTHER = "TEST:ETHUSD"


def record(topic: str, partition: int, offset: int, message: Any) -> Record:
    key, value = codec_for(topic).record(message)
    return Record(topic, partition, offset, key, value, 0)


def state(topic: str, partition: int) -> PartitionState:
    return PartitionState(topic, partition, AlertEvaluator(), 0, 0, 1)


def home(spec_topic: str, key: bytes) -> int:
    return partition_for(key, PARTITIONS)


def test_an_alert_belongs_to_the_partition_of_its_stream_and_to_no_other() -> None:
    on_ticks = alert("a-1", "above", "100")
    on_candles = alert("a-2", "above", "100", source="candles", interval="1m")
    assert stream_key(on_ticks) == (TICKS, b"TEST:BTCUSD")
    assert stream_key(on_candles) == (CANDLES, b"TEST:BTCUSD|1m")
    for spec in (on_ticks, on_candles):
        topic, key = stream_key(spec)
        owners = [
            (t, p) for t in (TICKS, CANDLES) for p in range(PARTITIONS)
            if belongs(spec, t, p, PARTITIONS)
        ]  # fmt: skip
        assert owners == [(topic, home(topic, key))]


def test_a_change_that_moves_an_alert_to_another_stream_removes_it_here() -> None:
    spec = alert("a-1", "above", "100")
    here = state(TICKS, home(TICKS, b"TEST:BTCUSD"))
    apply_to(here, [spec], PARTITIONS, {})
    assert len(here.evaluator) == 1
    moved = alert("a-1", "above", "100", instrument=OTHER)
    if home(TICKS, OTHER.encode()) != here.partition:
        apply_to(here, [moved], PARTITIONS, {})
        assert len(here.evaluator) == 0
    apply_to(here, [spec], PARTITIONS, {})
    apply_to(here, [AlertGone(alert_id="a-1", account=1, status="deleted")], PARTITIONS, {})
    assert len(here.evaluator) == 0


def test_an_alert_new_here_arms_past_what_already_fired_elsewhere() -> None:
    spec = alert("a-1", "above", "100", arming="rearm", cooldown_s=1)
    here = state(TICKS, home(TICKS, b"TEST:BTCUSD"))
    apply_to(here, [spec], PARTITIONS, {"a-1": 3})
    fired = here.evaluator.step(ticks(["101"]))
    assert [event.fire_id for event in fired] == ["a-1:4"]


def test_the_step_feeds_each_record_to_its_partitions_evaluator_in_order() -> None:
    p = home(TICKS, b"TEST:BTCUSD")
    q = home(CANDLES, b"TEST:BTCUSD|1m")
    states = {(TICKS, p): state(TICKS, p), (CANDLES, q): state(CANDLES, q)}
    changes = [
        alert("a-1", "cross-up", "100"),
        alert("a-2", "below", "90"),
        alert("c-1", "above", "105", source="candles", interval="1m"),
    ]
    for held in states.values():
        apply_to(held, changes, PARTITIONS, {})
    records = [
        record(TICKS, p, 7, ticks(["99", "100.5"], first_id=1)),
        Record(TICKS, p, 8, b"TEST:BTCUSD", b"not a message", 0),
        record(CANDLES, q, 3, candle(0, "106")),
        record(TICKS, p, 9, ticks(["89"], first_id=3)),
    ]
    outcome = evaluate(states, decode_batch(records, "test"))
    assert outcome.outputs == []  # the relay publishes, after the commit
    effects = outcome.effects
    fired: list[AlertFired] = effects.fired
    seen = [(e.fire_id, str(e.price), e.trade_id, e.candle_open_time is not None) for e in fired]
    assert seen == [
        ("a-1:1", "100.5", 2, False), ("c-1:1", "106.00", None, True), ("a-2:1", "89", 3, False),
    ]  # fmt: skip
    assert effects.moved == {(TICKS, p): 10, (CANDLES, q): 4}
    assert effects.undecodable == 1
    assert states[(TICKS, p)].next_offset == 10
