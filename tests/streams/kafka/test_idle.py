"""A member that holds all it may (a full write buffer) idles on its subscription: it stays in
its group however long the hold lasts, and its next poll goes on where the last one ended.
Without the idle, Kafka drops a member that has not polled for ``max_poll_interval``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from kafka.admin import KafkaAdminClient

from streams.bus import Record, Subscription
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings

MAX_POLL = 2.0
HOLD = 3 * MAX_POLL


def group_state(bootstrap: str, group: str) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        return str(admin.describe_groups([group])[group]["group_state"])
    finally:
        admin.close()


async def states_while(wait: Callable[[], Awaitable[None]], bootstrap: str, group: str) -> set[str]:
    """The group's states seen while ``wait`` runs for :data:`HOLD` seconds."""
    seen: set[str] = set()
    deadline = time.monotonic() + HOLD
    while time.monotonic() < deadline:
        await wait()
        seen.add(await asyncio.to_thread(group_state, bootstrap, group))
    return seen


async def poll_until(subscription: Subscription, count: int, timeout: float = 20.0) -> list[Record]:
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        records += await subscription.poll(timeout=0.5)
    return records


@contextlib.asynccontextmanager
async def member(bootstrap: str) -> AsyncIterator[tuple[KafkaBus, str, str, Subscription]]:
    """A bus that drops a member after :data:`MAX_POLL` seconds without a poll, a fresh topic
    of two partitions holding two records, and a member of a fresh group that has read them."""
    settings = KafkaSettings(bootstrap, session_timeout=6.0, max_poll_interval=MAX_POLL)
    topic = f"idle.{uuid.uuid4().hex[:8]}"
    group = f"idle-{uuid.uuid4().hex[:8]}"
    async with KafkaBus(settings, partitions=2) as bus:
        await bus.topic(topic).publish_many([(b"a", b"1"), (b"b", b"2")])
        async with bus.subscribe(group, [topic]) as subscription:
            first = await poll_until(subscription, 2)
            assert sorted(r.value for r in first) == [b"1", b"2"]
            yield bus, topic, group, subscription


async def test_an_idling_member_stays_in_its_group_and_goes_on_where_it_was(
    kafka_bootstrap: str,
) -> None:
    async with member(kafka_bootstrap) as (bus, topic, group, subscription):
        await bus.topic(topic).publish_many([(b"a", b"3"), (b"b", b"4")])
        held = await states_while(lambda: subscription.idle(0.25), kafka_bootstrap, group)
        assert held == {"Stable"}  # three max poll intervals long, never left
        rest = await poll_until(subscription, 2)
    assert sorted(r.value for r in rest) == [b"3", b"4"]  # taken now, once: nothing lost


async def test_a_member_that_neither_polls_nor_idles_is_dropped_from_its_group(
    kafka_bootstrap: str,
) -> None:
    """What the idle prevents (and that the test above can see it)."""
    async with member(kafka_bootstrap) as (_, _, group, _):
        seen = await states_while(lambda: asyncio.sleep(0.25), kafka_bootstrap, group)
    assert seen - {"Stable"}
