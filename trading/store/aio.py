"""The async shell of the store, for the service's event loop.

The ``eventsourcing`` library is synchronous (psycopg 3 in blocking mode, its own connection
pool), so each call runs in a worker thread (``asyncio.to_thread``): the event loop never
blocks on the database, and the library's pool bounds the concurrent database work. The cost
of the hop is measured by ``bench/event_store.py``. The group commits ran on psycopg's
async connection on the event loop once, as a benchmark contender: less CPU, but slower on a
busy loop (each step of the exchange waits for a turn of the loop), so the thread stayed and
the contender was removed (``docs/trading.md``, "Speed").

Saves are group-committed: the saves of different aggregates that wait while one commit runs
go together in the next, one transaction (:meth:`~trading.store.repository.Repository.save_many`),
so a busy service pays one round of statements for many accounts' appends, and an idle one
waits for nobody. A group that fails on a conflict is retried one save at a time, so only the
save at fault sees the conflict; an unreachable database fails every save of the group.

The snapshots a group makes due are taken after its saves have their answer, by a task of
their own beside the commits (all those due meanwhile in one transaction): taken in the
commit's thread, a burst of them (every account crossing ``snapshot_every`` at once) held the
next group back by tens to hundreds of milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final, Generic, TypeVar

from eventsourcing.persistence import Tracking

from trading.store.aggregates import Aggregate, Versioned
from trading.store.errors import AlreadyTracked, ConcurrencyConflict, InvalidAppendError
from trading.store.loop import follow_log
from trading.store.projector import Projector
from trading.store.repository import Repository, Save

E = TypeVar("E")
S = TypeVar("S")

_log = logging.getLogger(__name__)


MAX_GROUP: Final = 64
"""The most saves one group commit holds."""

_Waiting = tuple[Save[S, E], "asyncio.Future[Aggregate[S]]"]


class AsyncRepository(Generic[S, E]):
    """:class:`~trading.store.repository.Repository`'s calls, awaitable; saves group-committed
    (at most ``max_group`` to a transaction)."""

    def __init__(
        self,
        repository: Repository[S, E],
        max_group: int = MAX_GROUP,
    ) -> None:
        self.sync = repository
        self.max_group = max_group
        self.commits = 0
        """Group commits run (a group of one included)."""
        self._waiting: list[_Waiting[S, E]] = []
        self._committer: asyncio.Task[None] | None = None
        self._snapshots_due: list[Aggregate[S]] = []
        self._snapshotter: asyncio.Task[None] | None = None

    async def load(self, aggregate_id: str) -> Aggregate[S]:
        return await asyncio.to_thread(self.sync.load, aggregate_id)

    async def save(
        self, aggregate: Aggregate[S], new_events: Sequence[E], tracking: Tracking | None = None
    ) -> Aggregate[S]:
        """Append ``new_events`` to ``aggregate`` (with the reader's position ``tracking``),
        in the next group commit."""
        done: asyncio.Future[Aggregate[S]] = asyncio.get_running_loop().create_future()
        self._waiting.append((Save(aggregate, new_events, tracking), done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_all(), name="group-commit")
        return await done

    async def _commit_all(self) -> None:
        group: list[_Waiting[S, E]] = []
        try:
            while self._waiting:
                group = self._next_group()
                self.commits += 1
                await self._commit(group)
        finally:  # cancelled (the loop is closing): no one waits for ever
            left, self._waiting = [*group, *self._waiting], []
            for _, done in left:
                done.cancel()

    def _next_group(self) -> list[_Waiting[S, E]]:
        """The oldest waiting saves, one per aggregate (a second save of one waits for the
        next group: it must see the first one's version)."""
        group: list[_Waiting[S, E]] = []
        ids: set[str] = set()
        for waiting in self._waiting:
            if len(group) == self.max_group:
                break
            if waiting[0].aggregate.id not in ids:
                ids.add(waiting[0].aggregate.id)
                group.append(waiting)
        taken = set(map(id, group))
        self._waiting = [waiting for waiting in self._waiting if id(waiting) not in taken]
        return group

    async def _commit(self, group: list[_Waiting[S, E]]) -> None:
        saves = [save for save, _ in group]
        try:
            saved = await asyncio.to_thread(self.sync.save_many, saves, snapshots=False)
        except (ConcurrencyConflict, AlreadyTracked, InvalidAppendError) as exc:
            if len(group) == 1:
                _settle(group[0][1], exc)
                return
            for one in group:  # find the save at fault: each on its own
                await self._commit([one])
            return
        except Exception as exc:  # every save of the group failed the same way
            for _, done in group:
                _settle(done, exc)
            return
        for (_, done), after in zip(group, saved, strict=True):
            if not done.done():
                done.set_result(after)
        self._snapshot(self.sync.due_snapshots(saves, saved))

    def _snapshot(self, due: list[Aggregate[S]]) -> None:
        """Take the snapshots ``due`` beside the commits, never before the next one (a
        snapshot is an optimisation: the saves it follows have their answer already)."""
        if not due:
            return
        self._snapshots_due.extend(due)
        if self._snapshotter is None or self._snapshotter.done():
            self._snapshotter = asyncio.create_task(self._snapshot_all(), name="snapshots")

    async def _snapshot_all(self) -> None:
        while self._snapshots_due:
            due, self._snapshots_due = self._snapshots_due, []
            try:
                await asyncio.to_thread(self.sync.take_snapshots, due)
            except Exception:  # a snapshot never fails a save: the next load folds more events
                _log.exception("snapshots of %d aggregates failed", len(due))

    async def snapshots_taken(self) -> None:
        """Until the snapshots due so far are taken (or failed)."""
        while self._snapshotter is not None and not self._snapshotter.done():
            await asyncio.shield(self._snapshotter)

    async def append(
        self, aggregate_id: str, expected_version: int, events: Sequence[E]
    ) -> list[int]:
        return await asyncio.to_thread(
            self.sync.events.append, aggregate_id, expected_version, events
        )

    async def read(self, aggregate_id: str, after_version: int = 0) -> list[Versioned[E]]:
        return await asyncio.to_thread(self.sync.events.read, aggregate_id, after_version)


def _settle(done: asyncio.Future[Aggregate[S]], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)


async def follow(
    projector: Projector[E],
    stop: asyncio.Event,
    idle_s: float = 2.0,
    retry_s: float = 0.5,
    *,
    listen: bool = True,
    ready_check: str | None = None,
) -> None:
    """Keep ``projector``'s read model caught up with the log until ``stop`` is set: woken by
    the log's notification of each append (unless ``listen`` is off), polling every
    ``idle_s`` in case one is lost; a failed catch-up is tried again with backoff, and the
    readiness check ``ready_check`` reads ``unavailable`` meanwhile (:func:`follow_log`)."""
    await asyncio.to_thread(projector.start)

    async def step() -> int:
        return await asyncio.to_thread(projector.catch_up)

    name = Projector.reader(projector.model.schema)
    channel = projector.channel(retry_s) if listen else None
    await follow_log(
        name, step, stop, idle_s=idle_s, retry_s=retry_s, channel=channel, ready_check=ready_check
    )
