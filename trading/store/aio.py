"""The async shell of the store, for the service's event loop.

The ``eventsourcing`` library is synchronous (psycopg 3 in blocking mode, its own connection
pool), so each call runs in a worker thread (``asyncio.to_thread``): the event loop never
blocks on the database, and the library's pool bounds the concurrent database work. The cost
of the hop is measured by ``bench/event_store.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

from trading.store.aggregates import Aggregate, Versioned
from trading.store.loop import follow_log
from trading.store.projector import Projector
from trading.store.repository import Repository

E = TypeVar("E")
S = TypeVar("S")


class AsyncRepository(Generic[S, E]):
    """:class:`~trading.store.repository.Repository`'s calls, awaitable."""

    def __init__(self, repository: Repository[S, E]) -> None:
        self.sync = repository

    async def load(self, aggregate_id: str) -> Aggregate[S]:
        return await asyncio.to_thread(self.sync.load, aggregate_id)

    async def save(self, aggregate: Aggregate[S], new_events: Sequence[E]) -> Aggregate[S]:
        return await asyncio.to_thread(self.sync.save, aggregate, new_events)

    async def append(
        self, aggregate_id: str, expected_version: int, events: Sequence[E]
    ) -> list[int]:
        return await asyncio.to_thread(
            self.sync.events.append, aggregate_id, expected_version, events
        )

    async def read(self, aggregate_id: str, after_version: int = 0) -> list[Versioned[E]]:
        return await asyncio.to_thread(self.sync.events.read, aggregate_id, after_version)


async def follow(
    projector: Projector[E],
    stop: asyncio.Event,
    idle_s: float = 2.0,
    retry_s: float = 0.5,
    *,
    listen: bool = True,
) -> None:
    """Keep ``projector``'s read model caught up with the log until ``stop`` is set: woken by
    the log's notification of each append (unless ``listen`` is off), polling every
    ``idle_s`` in case one is lost."""
    await asyncio.to_thread(projector.start)

    async def step() -> int:
        return await asyncio.to_thread(projector.catch_up)

    name = Projector.reader(projector.model.schema)
    channel = projector.channel(retry_s) if listen else None
    await follow_log(name, step, stop, idle_s=idle_s, retry_s=retry_s, channel=channel)
