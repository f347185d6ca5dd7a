"""A partition given up (real PostgreSQL): every round stepped of it is stored before it is
dropped, so that its next owner's claim neither fences one (a fenced round rolls back and the
member's whole loop starts again) nor starts before what it fired. Without a rebalance hook
(the in-process bus) that happens at the member's next poll; with one (Kafka's,
``runner.Handover``) inside the rebalance, before another member may be given the partition.
The rounds' transactions are held back by a lock on the partition's state row, so that one
is in flight and the next pending when the partition goes. The real broker's test is in
``test_kafka_evaluators``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from core.topic_codecs import TICKS_CODEC
from core.topics import TICKS
from main_api.alerts.runner import Evaluating, EvaluatorService
from main_api.alerts.states import claim
from main_api.store import MainStore
from streams.bus import Offsets, Record
from streams.memory import MemoryBus
from streams.processor import decode_batch
from tests.main_api.alerts.factories import ticks

BOTH = [(TICKS, 0), (TICKS, 1)]


@pytest.fixture
async def store(schema: tuple[str, str]) -> AsyncIterator[MainStore]:
    async with MainStore.open(*schema) as opened:
        yield opened


@contextmanager
def row_locked(schema: tuple[str, str], partition: int) -> Iterator[None]:
    """The state row of ``md.ticks[partition]`` locked (a round storing it waits) until the
    block ends."""
    url, name = schema
    with psycopg.connect(url) as conn:
        conn.execute(
            sql.SQL(
                "SELECT 1 FROM {}.main_api_evaluator_states WHERE topic = %s AND partition = %s"
                " FOR UPDATE"
            ).format(sql.Identifier(name)),
            (TICKS, partition),
        )
        yield
        conn.rollback()


def step(hook: Evaluating, partition: int, offsets: range) -> None:
    """A round of one tick batch a record at ``offsets`` of ``md.ticks[partition]``, as
    the processor loop takes it (what ``fresh`` keeps, stepped)."""
    records = []
    for offset in offsets:
        key, value = TICKS_CODEC.record(ticks(["100", "101"], first_id=1 + 2 * offset))
        records.append(Record(TICKS, partition, offset, key, value, 0))
    hook.step(decode_batch(hook.fresh(records), "test"), 0, False)


async def next_owner(store: MainStore, hook: Evaluating, partition: int) -> int:
    """The offset the partition's next owner starts from (its claim)."""
    async with store.transaction() as conn:
        return (await claim(conn, hook.owner, TICKS, partition, 3)).next_offset


async def hooked(store: MainStore, bus: MemoryBus, schema: tuple[str, str]) -> Evaluating:
    """An evaluator's hook told by a rebalance hook that it has both partitions, claimed."""
    hook = Evaluating(EvaluatorService(store, bus, schema[0]), bus)
    await hook.reassigned(BOTH)
    await hook.own(hook.assigned or ())
    return hook


async def test_without_a_hook_a_partition_gone_is_dropped_once_its_rounds_are_stored(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = Evaluating(EvaluatorService(store, bus, schema[0]), bus)
        await hook.own(BOTH)
        with row_locked(schema, 1):
            step(hook, 1, range(5))  # in flight, held by the lock
            await asyncio.sleep(0.05)
            step(hook, 1, range(5, 7))  # pending behind it
            giving_up = asyncio.create_task(hook.own([(TICKS, 0)]))  # the poll after a rebalance
            await asyncio.sleep(0.05)
            waited = (giving_up.done(), sorted(hook.states))
        await giving_up
        assert waited == (False, BOTH)
        assert sorted(hook.states) == [(TICKS, 0)]
        assert await next_owner(store, hook, 1) == 7  # not fenced: both rounds stored
        assert await hook.finish(True) == {(TICKS, 1): 7}


async def test_the_rebalance_hook_stores_every_round_of_a_revoked_partition_before_it_goes(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        committed: list[Offsets] = []

        async def commit(offsets: Offsets) -> None:
            committed.append(offsets)

        with row_locked(schema, 1):
            step(hook, 0, range(3))
            step(hook, 1, range(4))  # in flight with the first, held by the lock
            await asyncio.sleep(0.05)
            step(hook, 1, range(4, 9))  # pending behind them
            revoking = asyncio.create_task(hook.revoked({(TICKS, 1)}, commit))
            await asyncio.sleep(0.05)
            waited = revoking.done()
        await revoking  # only now may the rebalance go on and another member claim it
        assert waited is False
        assert await next_owner(store, hook, 1) == 9
        assert committed == [{(TICKS, 1): 9}]  # inside the hook, the revoked partition's
        assert sorted(hook.states) == [(TICKS, 0)]
        await hook.reassigned([(TICKS, 0)])  # it went to another member: dropped
        await hook.own(hook.assigned or ())
        assert sorted(hook.states) == [(TICKS, 0)]
        assert await hook.finish(True) == {(TICKS, 0): 3}  # the kept one's, for the loop


async def test_a_partition_revoked_and_given_back_keeps_its_state(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        kept = hook.states[(TICKS, 1)]
        step(hook, 1, range(2))

        async def commit(offsets: Offsets) -> None:
            pass

        await hook.revoked(set(BOTH), commit)  # an eager rebalance revokes everything
        assert hook.states == {}
        step(hook, 1, range(2, 4))  # polled before the revocation: not this member's now
        await hook.reassigned(BOTH)
        await hook.own(hook.assigned or ())
        assert hook.states[(TICKS, 1)] is kept  # not claimed again
        assert kept.next_offset == 2
        async with store.transaction() as conn:
            cursor = await conn.execute("SELECT max(epoch) AS epoch FROM main_api_evaluator_states")
            assert (await cursor.fetchone() or {}).get("epoch") == 1
