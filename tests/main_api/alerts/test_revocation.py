"""A partition given up on a rebalance (real PostgreSQL): the round in flight, which stores
it, commits before the partition is dropped, so that its next owner's claim does not fence
it (a fenced round rolls back and the member's whole loop starts again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.topics import TICKS
from main_api.alerts.runner import Covered, Evaluating, EvaluatorService
from main_api.alerts.states import claim, save
from main_api.store import MainStore
from streams.memory import MemoryBus


@pytest.fixture
async def store(schema: tuple[str, str]) -> AsyncIterator[MainStore]:
    async with MainStore.open(*schema) as opened:
        yield opened


async def test_a_revoked_partition_is_given_up_once_its_round_has_committed(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        service = EvaluatorService(store, bus, schema[0])
        hook = Evaluating(service, bus)
        both = [(TICKS, 0), (TICKS, 1)]
        await hook.own(both)
        revoked = hook.states[(TICKS, 1)]
        revoked.next_offset = 7  # the round in flight stored it up to offset 7
        saved = [hook._saved(revoked)]
        release = asyncio.Event()

        async def in_flight() -> Covered:  # a round's transaction, still committing
            await release.wait()
            async with store.transaction() as conn:
                await save(conn, hook.owner, saved, 2)
            return {(TICKS, 1): 7}

        hook._storing = asyncio.create_task(in_flight())
        # the poll that revokes TICKS[1] returned; its next owner claims it once it is given up
        giving_up = asyncio.create_task(hook.own([(TICKS, 0)]))

        async def next_owner() -> int:
            await giving_up
            async with store.transaction() as conn:
                return (await claim(conn, hook.owner, TICKS, 1, 3)).next_offset

        claiming = asyncio.create_task(next_owner())
        await asyncio.sleep(0.05)
        waited = (giving_up.done(), sorted(hook.states))
        release.set()
        await giving_up
        # the round committed (not fenced): its offsets go to the loop, the next owner
        # starts where it ended
        assert await hook.finish(True) == {(TICKS, 1): 7}
        assert await claiming == 7
        assert waited == (False, both)
        assert sorted(hook.states) == [(TICKS, 0)]
