"""Consumer lag per group and partition, from the processor loop: publish N, consume M, and
``mdp_consumer_lag_records`` says N - M for each partition; the ``bus`` and ``lag`` checks
of /readyz follow the consumers of the process."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from streams.bus import PartitionProgress, TopicPartition
from streams.consumers import LOOK_EVERY, ConsumerWatch, Watches
from streams.memory import MemoryBus
from streams.processor import Batch, Outcome, Processor
from tests.telemetry.values import value

LAG = "mdp_consumer_lag_records"


async def test_the_lag_metric_is_the_records_published_minus_those_consumed_per_partition() -> None:
    published = 40
    taken = 15
    async with MemoryBus(partitions=2) as bus:
        topic = bus.topic("md.ticks.rejected")  # a topic with a codec; records may not decode
        sent: Counter[int] = Counter()
        for i in range(published):
            sent[(await topic.publish(f"k{i}".encode(), b"x")).partition] += 1
        seen: dict[str, float] = {}
        consumed: Counter[int] = Counter()

        def step(batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
            if batch.records and not seen:
                # the loop looked at the subscription after this poll, before this step
                consumed.update(record.partition for record in batch.records)
                for partition in sent:
                    labels = {"group": "lagging", "topic": topic.name, "partition": str(partition)}
                    seen[str(partition)] = value(LAG, **labels)
                processor.stop()
            return Outcome([], None)

        processor = Processor(bus, "lagging", [topic.name], step, max_records=taken)
        await asyncio.wait_for(processor.run(), 10)
    assert sum(consumed.values()) == taken
    assert set(sent) == {0, 1}, "the keys spread over both partitions"
    assert seen == {str(p): float(sent[p] - consumed[p]) for p in sent}
    assert value(LAG, group="lagging", topic=topic.name, partition="0") == 0.0, (
        "a stopped consumer's lag is no longer reported"
    )


def test_a_watch_reads_progress_at_most_once_a_second() -> None:
    watch = ConsumerWatch("g", started=100.0)
    assert watch.due(100.0, polled=True)
    assert not watch.due(100.0 + LOOK_EVERY / 2, polled=True)
    assert watch.due(100.0 + LOOK_EVERY, polled=True)


def test_the_bus_check_tells_starting_stalled_unassigned_and_unreachable() -> None:
    now = [100.0]
    watches = Watches()
    check = watches.bus_check(lambda: now[0], stale=5.0)
    assert check() == "starting"
    watch = ConsumerWatch("g", started=100.0)
    forget = watches.add(watch)
    assert check() is None, "a consumer joining its group is given the stale time"
    now[0] = 106.0
    watch.due(now[0], polled=True)
    watch.look(now[0], 0, {})
    assert check() == "unassigned"
    tp = TopicPartition("t", 0)
    heard_ns = 50 * 10**9
    watch.look(now[0], heard_ns, {tp: PartitionProgress(3, 10, heard_ns)})
    assert check() is None
    assert watch.lag == {tp: 7}
    for second in range(107, 113):  # polling on, the broker silent since 106
        now[0] = float(second)
        watch.due(now[0], polled=True)
        watch.look(
            now[0], heard_ns + (second - 106) * 10**9, {tp: PartitionProgress(3, 10, heard_ns)}
        )
    assert check() == "unreachable"
    watch.look(now[0], heard_ns + 6 * 10**9, {tp: PartitionProgress(3, 10, heard_ns + 6 * 10**9)})
    assert check() is None
    now[0] += 6
    assert check() == "stalled", "the loop did not come round"
    forget()
    assert check() == "starting"


def test_the_lag_check_fails_once_a_partition_is_more_than_the_threshold_behind() -> None:
    watches = Watches()
    watch = ConsumerWatch("g", started=time.monotonic())
    watches.add(watch)
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    watch.look(time.monotonic(), 0, {a: PartitionProgress(0, 10, 0), b: PartitionProgress(5, 5, 0)})
    assert watches.lag_check(10)() is None
    assert watches.lag_check(9)() == "lagging"
    assert sorted(watches.lag()) == [(("g", "t", "0"), 10.0), (("g", "t", "1"), 0.0)]
