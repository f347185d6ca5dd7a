"""The journaled partition engine, without a broker: replaying steps repeats a run exactly."""

from __future__ import annotations

import dataclasses

import msgspec
import numpy as np
import pytest

from core import codecs
from core.candles import CandleStatus
from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.topics import CANDLES, TICKS
from ingest.synthetic import SyntheticFeed
from streams.bus import Record
from streams.engine_runner import Message
from streams.kafka.journal import (
    JOINED_FROM,
    JOURNAL_VERSION,
    Claim,
    Step,
    decode_checkpoint,
    decode_entry,
    encode_checkpoint,
    encode_entry,
)
from streams.kafka.partition import GapError, PartitionEngine

CONFIG = EngineConfig(intervals=parse_intervals(["1s", "1m"]), throttle_ns=50_000_000)
GROUP = "g"


def records(count: int = 120) -> list[Record]:
    """Tick batches of two instruments as the records of one partition, with a bad one."""
    feed = SyntheticFeed(
        instruments=("TEST:AAA", "TEST:BBB"), rate=50.0, duration=20.0, seed=3, batch_size=7
    )
    out: list[Record] = []
    for offset, batch in enumerate(feed.batches()):
        if offset == count:
            break
        stamped = dataclasses.replace(batch, ts_recv=batch.ts_event + 5_000_000)
        value = codecs.encode_tick_batch(stamped) if offset != 17 else b"\x93not a batch"
        out.append(Record(TICKS, 0, offset, batch.instrument.encode(), value, 1))
    return out


def run_live(
    engine: PartitionEngine, recs: list[Record], cut: int
) -> tuple[list[Step], list[list[Message]], bytes]:
    """Steps of varying sizes and clocks; a checkpoint after ``cut`` steps."""
    steps, outputs = [], []
    checkpoint = b""
    i, seq = 0, 0
    rng = np.random.default_rng(5)
    while i < len(recs):
        size = int(rng.integers(0, 9))
        batch = engine.fresh_records(recs[i : i + size])
        now = (recs[i].timestamp_ns if batch else 0) + int(rng.integers(0, 4)) * 10**9
        last = codecs.decode_tick_batch(recs[0].value).ts_event[0]
        now = max(now, int(last)) + seq * 300_000_000
        if not batch and engine.applied is None:
            i += 1
            continue
        step = engine.next_step(batch, now)
        steps.append(step)
        outputs.append(engine.apply(step, batch, journal_offset=len(steps) - 1))
        seq += 1
        i += size
        if len(steps) == cut:
            checkpoint = encode_checkpoint(engine.checkpoint())
    return steps, outputs, checkpoint


def test_replaying_the_journal_from_a_checkpoint_repeats_every_output() -> None:
    recs = records()
    live = PartitionEngine.fresh(GROUP, 0, CONFIG)
    steps, outputs, checkpoint = run_live(live, recs, cut=9)
    assert sum(len(o) for o in outputs[9:]) > 20, "the replayed part emits candles"
    replayed = PartitionEngine.restore(decode_checkpoint(checkpoint), CONFIG)
    again = []
    for offset, step in enumerate(steps[9:], start=9):
        entry = decode_entry(encode_entry(step))
        assert replayed.follows(entry, offset)
        assert isinstance(entry, Step)
        again.append(replayed.apply(entry, recs[entry.start : entry.end], offset))
    assert again == outputs[9:]
    assert replayed.engine.checkpoint() == live.engine.checkpoint()


def test_a_bad_record_becomes_a_reject_naming_its_offset() -> None:
    recs = records(30)
    engine = PartitionEngine.fresh(GROUP, 0, CONFIG)
    step = engine.next_step(recs, recs[-1].timestamp_ns)
    messages = engine.apply(step, recs, 0)
    rejects = [codecs.decode_rejected(v) for topic, _, v in messages if topic.endswith("rejected")]
    assert [(r.reason, r.origin) for r in rejects] == [("undecodable", "md.ticks/0/17")]


def test_recovery_skips_a_stale_owners_steps_after_a_newer_claim() -> None:
    engine = PartitionEngine.fresh(GROUP, 0, CONFIG)
    assert engine.follows(Claim(GROUP, 0, epoch=1, seq=0, applied=None), 0) is False
    assert engine.epoch == 1
    first = Step(GROUP, 0, epoch=1, seq=0, start=0, end=2, now_ns=5)
    assert engine.follows(first, 1)
    engine.apply(first, records(2), 1)
    assert engine.follows(Claim(GROUP, 0, epoch=2, seq=1, applied=2), 2) is False
    assert engine.epoch == 2
    stale = Step(GROUP, 0, epoch=1, seq=1, start=2, end=3, now_ns=6)
    assert not engine.follows(stale, 3)
    assert not engine.follows(Step("other", 0, 2, 1, 2, 3, 6), 4)
    assert not engine.follows(Step(GROUP, 0, 2, 1, 7, 9, 6), 5), "must start where it stands"
    assert engine.follows(Step(GROUP, 0, 2, 1, 2, 3, 6), 6)


def test_records_already_applied_are_dropped_and_a_gap_is_reported() -> None:
    recs = records(10)
    engine = PartitionEngine.fresh(GROUP, 0, CONFIG)
    engine.apply(engine.next_step(recs[:4], 1), recs[:4], 0)
    assert [r.offset for r in engine.fresh_records(recs[2:6])] == [4, 5]
    with pytest.raises(GapError) as gap:
        engine.fresh_records(recs[6:8])
    assert (gap.value.start, gap.value.end) == (4, 6)


def test_a_step_without_records_needs_a_started_partition() -> None:
    engine = PartitionEngine.fresh(GROUP, 0, CONFIG)
    assert not engine.idle_ready
    with pytest.raises(ValueError, match="started"):
        engine.next_step([], 1)


def test_journal_entries_refuse_other_bytes() -> None:
    with pytest.raises(ValueError, match="not a journal entry"):
        decode_entry(b"\xa1x")
    with pytest.raises(ValueError, match="version 0 is not one this worker reads"):
        decode_entry(encode_entry(Claim(GROUP, 0, 1, 0, None, v=0)))
    with pytest.raises(ValueError, match="not a partition checkpoint"):
        decode_checkpoint(b"")


def test_only_a_step_without_records_moves_the_clock_by_the_wall_clock() -> None:
    recs = records(4)
    engine = PartitionEngine.fresh(GROUP, 0, CONFIG)
    with_records = engine.next_step(recs, 10**19)
    assert not with_records.caught_up
    engine.apply(with_records, recs, 0)
    assert engine.next_step([], 10**19).caught_up
    older = msgspec.msgpack.encode(
        {"type": "step", "group": GROUP, "partition": 0, "epoch": 0, "seq": 0, "start": 0,
         "end": 1, "now_ns": 5, "v": 1}
    )  # fmt: skip
    entry = decode_entry(older)
    assert isinstance(entry, Step)
    assert entry.caught_up, "entries from before the flag replay as they ran: wall clock"


def closed_candles(outputs: list[list[Message]]) -> dict[tuple[str, str, int], tuple[object, ...]]:
    """The last closed or revised version of each candle, without its revision."""
    found: dict[tuple[str, str, int], tuple[object, ...]] = {}
    for messages in outputs:
        for topic, _, value in messages:
            if topic != CANDLES:
                continue
            candle = codecs.decode_candle(value)
            if candle.status is not CandleStatus.OPEN:
                key = (candle.instrument, candle.interval.label, candle.open_time)
                found[key] = msgspec.structs.astuple(
                    msgspec.structs.replace(candle, revision=0, status=CandleStatus.CLOSED)
                )
    return found


def test_a_step_feeds_each_instruments_batches_joined_with_the_candles_of_one_by_one() -> None:
    recs = records()
    joined = PartitionEngine.fresh(GROUP, 0, CONFIG)
    steps, outputs, _ = run_live(joined, recs, cut=0)
    assert all(step.v == JOURNAL_VERSION >= JOINED_FROM for step in steps)
    assert max(step.end - step.start for step in steps) > 2, "steps of several batches"
    one_by_one = PartitionEngine.fresh(GROUP, 0, CONFIG)
    older = [
        one_by_one.apply(msgspec.structs.replace(step, v=2), recs[step.start : step.end], i)
        for i, step in enumerate(steps)
    ]
    assert closed_candles(outputs) == closed_candles(older)
    assert len(closed_candles(outputs)) > 5, "candles closed on the way"
    assert sum(map(len, outputs)) < sum(map(len, older)), "fewer open updates when joined"
    assert joined.stats.batches == one_by_one.stats.batches == len(recs) - 1
    assert joined.stats.ticks == one_by_one.stats.ticks


def test_a_journal_of_version_2_replays_batch_by_batch_as_it_ran() -> None:
    recs = records(60)
    live = PartitionEngine.fresh(GROUP, 0, CONFIG)
    steps, outputs = [], []
    for i, start in enumerate(range(0, len(recs), 6)):
        step = msgspec.structs.replace(
            live.next_step(recs[start : start + 6], recs[start].timestamp_ns + i * 10**9), v=2
        )
        steps.append(step)
        outputs.append(live.apply(step, recs[start : start + 6], i))
    replayed = PartitionEngine.fresh(GROUP, 0, CONFIG)
    again = []
    for offset, step in enumerate(steps):
        entry = decode_entry(encode_entry(step))
        assert isinstance(entry, Step)
        assert entry.v == 2
        assert replayed.follows(entry, offset)
        again.append(replayed.apply(entry, recs[entry.start : entry.end], offset))
    assert again == outputs
    joined = PartitionEngine.fresh(GROUP, 0, CONFIG)
    now = [joined.apply(msgspec.structs.replace(s, v=3), recs[s.start : s.end], i)
           for i, s in enumerate(steps)]  # fmt: skip
    assert now != outputs, "version 3 joins batches: a version-2 journal must not replay so"
