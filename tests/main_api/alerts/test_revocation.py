"""A partition given up on a rebalance (real PostgreSQL): the round in flight, which stores
it, commits before the partition is dropped, so that its next owner's claim does not fence
it (a fenced round rolls back and the member's whole loop starts again). With a rebalance
hook (Kafka's), that happens inside the rebalance, and a round stepped but not yet stored
forgets the revoked partition; the real broker's test is in ``test_kafka_evaluators``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import pytest

from core.alerts import fired
from core.topics import TICKS
from main_api.alerts.processing import Evaluated
from main_api.alerts.runner import Covered, Evaluating, EvaluatorService, Handover
from main_api.alerts.states import claim, save
from main_api.store import MainStore
from streams.bus import Offsets, Subscription, TopicPartition
from streams.memory import MemoryBus
from tests.main_api.alerts.factories import T0, alert


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


BOTH = [(TICKS, 0), (TICKS, 1)]


async def hooked(store: MainStore, bus: MemoryBus, schema: tuple[str, str]) -> Evaluating:
    """An evaluator's hook told by a rebalance hook that it has both partitions, claimed."""
    hook = Evaluating(EvaluatorService(store, bus, schema[0]), bus)
    await hook.reassigned(BOTH)
    await hook.own(hook.assigned or ())
    return hook


async def test_the_rebalance_hook_commits_the_round_in_flight_before_the_partition_goes(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        revoked = hook.states[(TICKS, 1)]
        revoked.next_offset = 7
        saved = [hook._saved(revoked)]
        release = asyncio.Event()

        async def in_flight() -> Covered:
            await release.wait()
            async with store.transaction() as conn:
                await save(conn, hook.owner, saved, 2)
            return {(TICKS, 0): 3, (TICKS, 1): 7}

        hook._storing = asyncio.create_task(in_flight())
        committed: list[Offsets] = []

        async def commit(offsets: Offsets) -> None:
            committed.append(offsets)

        revoking = asyncio.create_task(hook.revoked({(TICKS, 1)}, commit))
        await asyncio.sleep(0.05)
        waited = revoking.done()
        release.set()
        await revoking  # the rebalance goes on only now: the next owner may claim
        async with store.transaction() as conn:
            claimed = await claim(conn, hook.owner, TICKS, 1, 3)
        assert (waited, claimed.next_offset, claimed.epoch) == (False, 7, 2)
        assert committed == [{(TICKS, 1): 7}]  # the revoked partition's, inside the hook
        assert sorted(hook.states) == [(TICKS, 0)]
        await hook.reassigned([(TICKS, 0)])
        await hook.own(hook.assigned or ())
        assert sorted(hook.states) == [(TICKS, 0)]
        assert await hook.finish(True) == {(TICKS, 0): 3}  # the kept one's, for the loop


async def test_a_round_stepped_before_a_revocation_stores_nothing_of_the_revoked_partition(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        kept, gone = hook.states[(TICKS, 0)], hook.states[(TICKS, 1)]
        firings = [fired(alert(name, "above", "10"), 1, Decimal("11"), T0, False) for name in "ab"]
        # stepped, its transaction not started (the loop waits in behind for the lock)
        stepped = Evaluated(firings, {kept.key: 4, gone.key: 9}, 0, [kept.key, gone.key])
        hook._stepped = stepped

        async def commit(offsets: Offsets) -> None:
            raise AssertionError(f"nothing of it was stored: {offsets}")

        await hook.revoked({gone.key}, commit)
        assert (stepped.moved, stepped.fired) == ({kept.key: 4}, firings[:1])
        # the revoked state is not parked: it comes back from what is stored
        await hook.reassigned(BOTH)
        assert sorted(hook.states) == [kept.key]
        await hook.own(hook.assigned or ())
        back = hook.states[gone.key]
        assert (back is gone, back.next_offset, back.epoch) == (False, 0, 2)


async def no_commit(offsets: Offsets) -> None:
    raise AssertionError(f"nothing is committed here: {offsets}")


async def test_a_claim_queued_behind_a_revocation_reads_the_assignment_it_left(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        claims = hook.service.stats.claims
        await hook._lock.acquire()  # behind(), waiting for the round in flight
        revoking = asyncio.create_task(hook.revoked({(TICKS, 1)}, no_commit))
        await asyncio.sleep(0)  # the revocation waits for the lock first
        # the loop's next poll, with the assignment it read before the revocation took TICKS[1]
        owning = asyncio.create_task(hook.own(BOTH))
        await asyncio.sleep(0.01)
        hook._lock.release()
        await revoking
        await owning
        assert (sorted(hook.states), sorted(hook._parked)) == ([(TICKS, 0)], [(TICKS, 1)])
        assert hook.service.stats.claims == claims  # TICKS[1] not claimed again
        await hook.reassigned(BOTH)  # given back: the parked state is kept, its epoch still 1
        await hook.own(hook.assigned or ())
        back = hook.states[(TICKS, 1)]
        assert (hook.service.stats.claims, back.epoch) == (claims, 1)
        async with store.transaction() as conn:  # still the row's owner: not fenced
            await save(conn, hook.owner, [hook._saved(back)], 4)


async def test_a_revocation_stuck_on_the_database_gives_its_partitions_up_in_time(
    store: MainStore, schema: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)

        async def in_flight() -> Covered:  # a round's transaction the database never ends
            await asyncio.Event().wait()
            return {}

        storing = hook._storing = asyncio.create_task(in_flight())
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, "main_api.alerts.runner"):
            await hook.revoked({(TICKS, 1)}, no_commit, 0.1)
        waited = time.monotonic() - began
        assert 0.1 <= waited < 1
        assert f"{TICKS}[1] not settled within 0.1 s" in caplog.text
        # dropped, not parked; the round left in flight for abandon(), the loop failed
        assert (sorted(hook.states), hook._parked) == ([(TICKS, 0)], {})
        assert hook._storing is storing
        assert not storing.done()
        with pytest.raises(TimeoutError, match=r"a revocation waited 0\.1 s"):
            await hook.finish(True)  # the loop's next settle
        await hook.abandon()
        assert storing.cancelled()


async def test_a_revocation_waits_for_the_lock_no_longer_than_its_limit(
    store: MainStore, schema: tuple[str, str]
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        await hook._lock.acquire()  # a claim or a round stuck on the database
        await hook.revoked({(TICKS, 1)}, no_commit, 0.05)
        hook._lock.release()
        # the states are the lock holder's: untouched; the loop fails at its next settle
        assert sorted(hook.states) == BOTH
        with pytest.raises(TimeoutError, match=r"a revocation waited 0\.05 s"):
            await hook.finish(True)


class Unanswered:
    """A subscription whose commits the broker never answers."""

    async def commit(self, offsets: Offsets) -> None:
        await asyncio.Event().wait()


async def test_the_revoked_offsets_commit_is_given_up_after_its_limit(
    store: MainStore, schema: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async with MemoryBus(partitions=2) as bus:
        hook = await hooked(store, bus, schema)
        hook._stored = {(TICKS, 1): 7}  # a stored round's offsets, not yet committed
        handover = Handover(hook, 0.1)
        handover.subscription = cast(Subscription, Unanswered())
        with caplog.at_level(logging.WARNING, "main_api.alerts.runner"):
            await asyncio.wait_for(handover.revoked({TopicPartition(TICKS, 1)}), 1)
        assert "offsets stored but not committed on the bus: no answer within 0.1 s" in caplog.text
        # only told: the state is parked as usual, the loop goes on
        assert (sorted(hook._parked), hook._failure, hook._stored) == ([(TICKS, 1)], None, {})
