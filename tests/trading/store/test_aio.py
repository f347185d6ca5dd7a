"""The async shell: the store's calls awaited from an event loop, a projector followed."""

from __future__ import annotations

import asyncio

import pytest

from tests.trading.store import read_model, toy
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
