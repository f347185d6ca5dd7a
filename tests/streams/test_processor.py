"""The processor loop on the in-process bus: decode once, publish, make durable, then commit."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from core import codecs
from core.topic_codecs import REGISTRY, TICKS_CODEC, codec_for
from core.topics import CANDLES, TICKS
from streams.bus import Offsets, Record, Subscription, TopicPartition
from streams.memory import MemoryBus
from streams.processor import (
    HOLD_SLICE,
    Batch,
    Durability,
    Outcome,
    Processor,
    Round,
    decode_batch,
)
from tests.storage import factories

GROUP = "test-processor"
OUT = "test.out"
KEY = codecs.instrument_key("TEST:BTCUSD")


def tick_batch(n: int) -> bytes:
    return codecs.encode_tick_batch(factories.batch(factories.tick(n, n * 10**9)))


async def publish(bus: MemoryBus, values: list[bytes]) -> None:
    for value in values:
        await bus.topic(TICKS).publish(KEY, value)


class Recorder:
    """A step that keeps every batch it saw and publishes one output per decoded record."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def __call__(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        if batch.records:
            self.batches.append(batch)
        outputs = [
            (OUT, KEY, str(record.offset).encode())
            for record, message in zip(batch.records, batch.messages, strict=True)
            if message is not None
        ]
        return Outcome(outputs, None)

    @property
    def offsets(self) -> list[int]:
        return [record.offset for batch in self.batches for record in batch.records]


class Watched(Subscription):
    """A subscription that tells ``events`` of every commit."""

    def __init__(self, inner: Subscription, events: list[object]) -> None:
        self.inner, self.events = inner, events
        self.group, self.topics = inner.group, inner.topics

    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        return await self.inner.poll(max_records, timeout)

    async def commit(self, offsets: Offsets) -> None:
        self.events.append(("commit", dict(offsets)))
        await self.inner.commit(offsets)

    async def committed(self) -> dict[TopicPartition, int]:
        return await self.inner.committed()

    def assignment(self) -> frozenset[TopicPartition]:
        return self.inner.assignment()

    async def close(self) -> None:
        await self.inner.close()


class Published(Durability[None]):
    """A hook that notes, at each of its points, how many outputs were published by then."""

    def __init__(self, out: Subscription, events: list[object]) -> None:
        self.out, self.events, self.seen = out, events, 0

    async def _published(self) -> int:
        self.seen += len(await self.out.poll(100, 0.01))
        return self.seen

    async def ahead(self, round: Round[None]) -> None:
        if round.polled:
            self.events.append(("ahead", await self._published()))

    async def behind(self, round: Round[None]) -> Offsets:
        if round.polled:
            self.events.append(("behind", await self._published()))
        return round.offsets


async def committed(bus: MemoryBus) -> dict[TopicPartition, int]:
    async with bus.subscribe(GROUP, [TICKS]) as probe:
        return await probe.committed()


async def test_a_round_publishes_then_makes_durable_then_commits() -> None:
    events: list[object] = []
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1), tick_batch(2)])
        out = bus.subscribe("test-out", [OUT])
        hook = Published(out, events)
        processor = Processor(bus, GROUP, [TICKS], Recorder(), hook, poll_timeout=0.01)
        processor.drain()
        async with bus.subscribe(GROUP, [TICKS]) as subscription:
            await processor.consume(Watched(subscription, events))
        await out.close()
    # the write-ahead point sees nothing out yet, the durable point both outputs, then commit
    assert events == [("ahead", 0), ("behind", 2), ("commit", {(TICKS, 0): 2})]


class Refuses(Durability[None]):
    """A hook whose store is away at ``point`` (``ahead`` or ``behind``)."""

    def __init__(self, point: str) -> None:
        self.point = point

    async def ahead(self, round: Round[None]) -> None:
        if self.point == "ahead" and round.polled:
            raise ConnectionRefusedError("the journal is away")

    async def behind(self, round: Round[None]) -> Offsets:
        if self.point == "behind" and round.polled:
            raise ConnectionRefusedError("the store is away")
        return round.offsets


@pytest.mark.parametrize("point", ["ahead", "behind"])
async def test_a_failing_durable_step_commits_nothing(point: str) -> None:
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1), tick_batch(2)])
        out = bus.subscribe("test-out", [OUT])
        processor = Processor(bus, GROUP, [TICKS], Recorder(), Refuses(point), poll_timeout=0.01)
        with pytest.raises(ConnectionRefusedError):
            await processor.run()
        assert await committed(bus) == {}
        outputs = await out.poll(100, 0.01)
        await out.close()
    # a write-ahead failure publishes nothing; after the publish, the outputs are out
    assert len(outputs) == (0 if point == "ahead" else 2)


class DurableThenCrash(Durability[None]):
    """Covers its first ``rounds`` rounds, then the process 'dies' before the next is
    durable."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    async def behind(self, round: Round[None]) -> Offsets:
        if not round.polled:
            return {}
        if self.rounds == 0:
            raise ConnectionAbortedError("killed before the round was durable")
        self.rounds -= 1
        return round.offsets


async def test_a_restart_replays_exactly_what_was_not_made_durable() -> None:
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(n) for n in range(7)])
        first, second = Recorder(), Recorder()
        crashing = Processor(
            bus, GROUP, [TICKS], first, DurableThenCrash(2), max_records=2, poll_timeout=0.01
        )
        with pytest.raises(ConnectionAbortedError):
            await crashing.run()
        assert first.offsets == [0, 1, 2, 3, 4, 5]  # the third round read, not made durable
        assert await committed(bus) == {(TICKS, 0): 4}
        restarted = Processor(bus, GROUP, [TICKS], second, max_records=2, poll_timeout=0.01)
        restarted.drain()
        await restarted.run()
        assert second.offsets == [4, 5, 6]
        assert await committed(bus) == {(TICKS, 0): 7}


async def test_undecodable_records_are_told_once_and_passed_on_as_rejects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    step = Recorder()
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1), b"\xc1not msgpack", tick_batch(2)])
        processor = Processor(bus, GROUP, [TICKS], step, poll_timeout=0.01)
        processor.drain()
        with caplog.at_level(logging.WARNING, logger="streams.processor"):
            await processor.run()
        assert await committed(bus) == {(TICKS, 0): 3}  # past the bad record: it is handled
    (batch,) = step.batches
    assert [message is None for message in batch.messages] == [False, True, False]
    (reject,) = batch.undecodable
    assert (reject.reason, reject.origin, reject.source) == (
        codecs.RejectCode.UNDECODABLE,
        f"{TICKS}/0/1",
        GROUP,
    )
    assert reject.payload == b"\xc1not msgpack"
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 1
    assert told[0].startswith(f"{GROUP}: undecodable record at {TICKS}/0/1: bad")


def test_each_record_is_decoded_by_its_topics_codec() -> None:
    candle = factories.candle(1)
    batch = factories.batch(factories.tick(1, 0))
    records = [
        Record(TICKS, 0, 0, KEY, codecs.encode_tick_batch(batch), 0),
        Record(CANDLES, 0, 0, b"", codecs.encode_candle(candle), 0),
        Record(TICKS, 0, 1, KEY, codecs.encode_candle(candle), 0),  # a candle on md.ticks
    ]
    decoded = decode_batch(records, "test")
    assert decoded.messages[0].ticks() == batch.ticks()
    assert decoded.messages[1:] == [candle, None]
    assert [r.origin for r in decoded.undecodable] == [f"{TICKS}/0/1"]


def test_the_registry_gives_each_topic_its_type_and_round_trips_its_records() -> None:
    gap = factories.gap(0, 10**9)
    key, value = TICKS_CODEC.record(gap)
    assert (key, TICKS_CODEC.decode(value)) == (codecs.instrument_key(gap.instrument), gap)
    candle = factories.candle(1)
    key, value = REGISTRY[CANDLES].record(candle)
    assert (key, REGISTRY[CANDLES].decode(value)) == (codecs.candle_key(candle), candle)
    for name, codec in REGISTRY.items():
        assert codec.name == name
    with pytest.raises(KeyError, match=re.escape("topic 'mdp.engine.steps' has no codec")):
        codec_for("mdp.engine.steps")


class Full(Durability[None]):
    """A hook that holds all it may (a full write buffer): the loop must not poll."""

    def read_wait(self, timeout: float) -> tuple[float, bool]:
        return 30.0, False


async def test_a_hook_that_holds_all_it_may_stops_the_reading_and_a_stop_ends_the_pause() -> None:
    step = Recorder()
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1)])
        processor = Processor(bus, GROUP, [TICKS], step, Full(), poll_timeout=0.01)
        running = asyncio.create_task(processor.run())
        await asyncio.sleep(0.05)
        processor.stop()
        await asyncio.wait_for(running, 1.0)  # not the hook's 30 s pause
        assert await committed(bus) == {}
    assert step.batches == []  # the record stays on the bus


async def test_a_held_loop_idles_on_its_subscription_so_it_stays_in_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    idles: list[float] = []
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1)])
        async with bus.subscribe(GROUP, [TICKS]) as subscription:

            async def idle(timeout: float) -> None:
                idles.append(timeout)
                await asyncio.sleep(timeout)

            monkeypatch.setattr(subscription, "idle", idle)
            step = Recorder()
            processor = Processor(bus, GROUP, [TICKS], step, Full(), poll_timeout=0.01)
            running = asyncio.create_task(processor.consume(subscription))
            await asyncio.sleep(3.5 * HOLD_SLICE)
            processor.stop()
            await asyncio.wait_for(running, 2 * HOLD_SLICE)
    assert len(idles) >= 3  # one idle a slice, all the hold long
    assert max(idles) <= HOLD_SLICE
    assert step.batches == []


class SlowCommits(Watched):
    """A subscription whose commits wait until ``answer`` is set (a broker slow to answer)."""

    def __init__(self, inner: Subscription, events: list[object]) -> None:
        super().__init__(inner, events)
        self.answer = asyncio.Event()

    async def commit(self, offsets: Offsets) -> None:
        self.events.append(("commit", dict(offsets)))
        await self.answer.wait()
        self.events.append(("committed", dict(offsets)))
        await self.inner.commit(offsets)


async def test_a_commit_behind_lets_the_next_rounds_run_and_a_stop_waits_for_it() -> None:
    events: list[object] = []
    recorder = Recorder()
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(n) for n in range(5)])
        processor = Processor(
            bus, GROUP, [TICKS], recorder, max_records=2, poll_timeout=0.01, commit_behind=True
        )
        async with bus.subscribe(GROUP, [TICKS]) as subscription:
            slow = SlowCommits(subscription, events)
            running = asyncio.create_task(processor.consume(slow))
            while recorder.offsets != [0, 1, 2, 3, 4]:  # every round ran, the first commit held
                await asyncio.sleep(0.01)
            assert events == [("commit", {(TICKS, 0): 2})]
            processor.stop()
            await asyncio.sleep(0.05)
            assert not running.done()  # the stop waits for the commit in flight
            slow.answer.set()
            await asyncio.wait_for(running, 5.0)
        assert await committed(bus) == {(TICKS, 0): 5}
    # one commit in flight; the rounds done meanwhile are owed to the next, in order
    assert events == [
        ("commit", {(TICKS, 0): 2}),
        ("committed", {(TICKS, 0): 2}),
        ("commit", {(TICKS, 0): 5}),
        ("committed", {(TICKS, 0): 5}),
    ]


class FailingCommits(Watched):
    async def commit(self, offsets: Offsets) -> None:
        raise ConnectionResetError("the broker went away")


async def test_a_failed_commit_behind_fails_the_loop_at_the_next_round() -> None:
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1)])
        processor = Processor(
            bus, GROUP, [TICKS], Recorder(), poll_timeout=0.01, commit_behind=True
        )
        async with bus.subscribe(GROUP, [TICKS]) as subscription:
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(processor.consume(FailingCommits(subscription, [])), 5.0)


class FailsSecond(Recorder):
    """A step that fails at its second round (after the first round's commit failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0

    def __call__(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        self.rounds += 1
        if self.rounds == 2:
            raise LookupError("the step broke")
        return super().__call__(batch, now_ns, caught_up)


async def test_a_failed_commit_behind_is_logged_when_the_loop_fails_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with MemoryBus(partitions=1) as bus:
        await publish(bus, [tick_batch(1)])
        processor = Processor(
            bus, GROUP, [TICKS], FailsSecond(), poll_timeout=0.01, commit_behind=True
        )
        async with bus.subscribe(GROUP, [TICKS]) as subscription:
            with (
                caplog.at_level(logging.ERROR, logger="streams.processor"),
                pytest.raises(LookupError, match="the step broke"),
            ):
                await asyncio.wait_for(processor.consume(FailingCommits(subscription, [])), 5.0)
    told = [r for r in caplog.records if r.name == "streams.processor"]
    assert [r.getMessage() for r in told] == [
        f"commit {GROUP}: a background commit failed as the loop ended on a failure of its own:"
        " the broker went away"
    ]
    assert told[0].exc_info is not None
    assert told[0].exc_info[0] is ConnectionResetError
