"""The async shell: the store's calls awaited from an event loop, a projector followed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from tests.trading.store import read_model, toy
from tests.trading.store.test_snapshots import snapshot_versions
from trading.store.aggregates import Aggregate
from trading.store.aio import AsyncRepository, follow
from trading.store.database import Database
from trading.store.errors import ConcurrencyConflict
from trading.store.events import EventStore
from trading.store.projector import Projector
from trading.store.repository import Repository


async def test_saves_and_loads_are_awaitable_and_keep_the_conflict_rule(
    repository: Repository[toy.Balance, toy.ToyEvent],
) -> None:
    store = AsyncRepository(repository)
    opened = await store.save(Aggregate("account:1", 0, None), [toy.Opened(1)])
    saved = await store.save(opened, [toy.Deposited(1, 7)])
    assert await store.load("account:1") == saved
    assert [item.version for item in await store.read("account:1")] == [1, 2]
    with pytest.raises(ConcurrencyConflict):
        await store.append("account:1", 1, [toy.Deposited(1, 1)])


async def test_saves_waiting_together_are_one_group_commit_with_one_result_each(
    repository: Repository[toy.Balance, toy.ToyEvent],
) -> None:
    store = AsyncRepository(repository)
    opened: list[Aggregate[toy.Balance]] = [
        Aggregate(f"account:{n}", 0, None) for n in range(1, 21)
    ]
    saved = await asyncio.gather(
        *(store.save(a, [toy.Opened(n), toy.Deposited(n, n)]) for n, a in enumerate(opened, 1))
    )
    assert store.commits == 1  # all twenty waited for the same commit
    assert [(a.id, a.version, a.state) for a in saved] == [
        (f"account:{n}", 2, toy.Balance(n, n, 1)) for n in range(1, 21)
    ]
    for aggregate in saved:
        assert await store.load(aggregate.id) == aggregate


async def test_a_conflict_in_a_group_fails_only_its_own_save(
    repository: Repository[toy.Balance, toy.ToyEvent],
) -> None:
    store = AsyncRepository(repository)
    first = await store.save(Aggregate("account:1", 0, None), [toy.Opened(1)])
    await store.save(first, [toy.Deposited(1, 5)])  # "first" is now stale
    stale = store.save(first, [toy.Deposited(1, 1)])
    fresh = [store.save(Aggregate(f"account:{n}", 0, None), [toy.Opened(n)]) for n in (2, 3)]
    results = await asyncio.gather(stale, *fresh, return_exceptions=True)
    assert isinstance(results[0], ConcurrencyConflict)
    assert [r.version for r in results[1:] if isinstance(r, Aggregate)] == [1, 1]
    assert (await store.load("account:1")).state == toy.Balance(1, 5, 1)


async def test_two_saves_of_one_aggregate_never_share_a_group(
    repository: Repository[toy.Balance, toy.ToyEvent],
) -> None:
    store = AsyncRepository(repository)
    opened = await store.save(Aggregate("account:1", 0, None), [toy.Opened(1)])
    again = await asyncio.gather(
        store.save(opened, [toy.Deposited(1, 1)]),
        store.save(opened, [toy.Deposited(1, 2)]),
        return_exceptions=True,
    )
    assert isinstance(again[0], Aggregate)
    assert again[0].version == 2
    assert isinstance(again[1], ConcurrencyConflict)  # it expected version 1 too: the rule holds


class HeldSnapshots(Repository[toy.Balance, toy.ToyEvent]):
    """Snapshots wait for ``release`` (in their worker thread)."""

    release = threading.Event()

    def take_snapshots(self, aggregates: Sequence[Aggregate[toy.Balance]]) -> None:
        assert self.release.wait(10), "the snapshots were never released"
        super().take_snapshots(aggregates)


async def test_saves_are_answered_and_the_next_group_commits_before_their_snapshots(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    held = HeldSnapshots(database, events, toy.apply, toy.STATE_CODEC)
    store = AsyncRepository(held)
    held.release.clear()
    try:
        saved = await asyncio.gather(  # snapshot_every=5: each of the three crosses it
            *(store.save(Aggregate(f"account:{n}", 0, None), toy.history(n, 4)) for n in (1, 2, 3))
        )
        after = await store.save(saved[0], [toy.Deposited(1, 1)])  # the next group
        assert (store.commits, after.version) == (2, saved[0].version + 1)
        assert [snapshot_versions(database, f"account:{n}") for n in (1, 2, 3)] == [[], [], []]
    finally:
        held.release.set()
    await store.snapshots_taken()
    assert [snapshot_versions(database, f"account:{n}") for n in (1, 2, 3)] == [[5], [5], [5]]
    for aggregate in saved[1:]:
        assert await store.load(aggregate.id) == aggregate  # from the snapshot


async def test_a_followed_projector_keeps_up_with_new_events(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    projector = Projector(database, events, read_model.model(f"{database.schema}_live"))
    stop = asyncio.Event()
    following = asyncio.create_task(follow(projector, stop, idle_s=0.01))
    ids = await asyncio.to_thread(events.append, "account:1", 0, toy.history(1, 3))
    for _ in range(500):
        if await asyncio.to_thread(projector.position) == ids[-1]:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(following, 10)
    rows = read_model.contents(database.settings.url, projector.model.schema)
    assert rows["balances"] == [(1, 1 + 2 - 3, 3)]
