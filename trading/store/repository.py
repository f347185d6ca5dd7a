"""Load and save aggregates: the fold of their events, from the latest snapshot.

A snapshot is the aggregate's state at a version, stored in the snapshots table (the library's
aggregate recorder) under the same id and version. One is taken each time a save crosses a
multiple of ``snapshot_every``; loading folds only the events after the latest one. A snapshot
is an optimisation, never the truth: losing one (or all) changes no loaded state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Generic, NamedTuple, TypeVar

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from trading.store.aggregates import Aggregate, Apply, fold, numbered, snapshot_due
from trading.store.codec import StateCodec
from trading.store.database import Database
from trading.store.errors import StoreUnavailableError
from trading.store.events import Append, EventStore, Unavailable

E = TypeVar("E")
S = TypeVar("S")

_log = logging.getLogger(__name__)


class Save(NamedTuple, Generic[S, E]):
    """One aggregate's save: the aggregate as loaded, its new events, and a reader's position
    to store with them (None: none)."""

    aggregate: Aggregate[S]
    events: Sequence[E]
    tracking: Tracking | None = None


class Repository(Generic[S, E]):
    """Aggregates of one kind: their events in ``events``, their state by ``apply``."""

    def __init__(
        self,
        database: Database,
        events: EventStore[E],
        apply: Apply[S, E],
        state_codec: StateCodec[S],
    ) -> None:
        self.events = events
        self._apply = apply
        self._snapshots = database.snapshots
        self._state = state_codec
        self._every = database.settings.snapshot_every

    def load(self, aggregate_id: str) -> Aggregate[S]:
        """The aggregate now (version 0 and no state if it has no events)."""
        start = self.latest_snapshot(aggregate_id)
        return fold(self._apply, start, self.events.read(aggregate_id, start.version))

    def replay(self, aggregate_id: str) -> Aggregate[S]:
        """The aggregate folded from its first event, ignoring snapshots."""
        return fold(self._apply, Aggregate(aggregate_id, 0, None), self.events.read(aggregate_id))

    def save(
        self, aggregate: Aggregate[S], new_events: Sequence[E], tracking: Tracking | None = None
    ) -> Aggregate[S]:
        """Append ``new_events`` to ``aggregate`` (at its version, else
        :class:`~trading.store.errors.ConcurrencyConflict`), with a reader's position
        ``tracking`` when given (:meth:`EventStore.append`); return the aggregate after them."""
        return self.save_many([Save(aggregate, new_events, tracking)])[0]

    def save_many(
        self, saves: Sequence[Save[S, E]], *, snapshots: bool = True
    ) -> list[Aggregate[S]]:
        """Several aggregates' saves in one transaction, all or none (a group commit: see
        :meth:`~trading.store.events.EventStore.append_many`); the aggregates after them.
        The snapshots they make due are taken after the commit, unless ``snapshots`` is off
        (the caller takes them later: :meth:`due_snapshots`, :meth:`take_snapshots`)."""
        after = self._after(saves)
        self.events.append_many(_appends(saves))
        if snapshots:
            self.take_snapshots(self.due_snapshots(saves, after))
        return after

    def _after(self, saves: Sequence[Save[S, E]]) -> list[Aggregate[S]]:
        """The aggregates after ``saves`` (folded; nothing stored)."""
        return [
            fold(
                self._apply,
                save.aggregate,
                numbered(save.aggregate.id, save.aggregate.version, save.events),
            )
            for save in saves
        ]

    def due_snapshots(
        self, saves: Sequence[Save[S, E]], after: Sequence[Aggregate[S]]
    ) -> list[Aggregate[S]]:
        """The aggregates after ``saves`` whose save crossed a multiple of ``snapshot_every``."""
        return [
            saved
            for save, saved in zip(saves, after, strict=True)
            if snapshot_due(self._every, save.aggregate.version, saved.version)
        ]

    def take_snapshots(self, aggregates: Sequence[Aggregate[S]]) -> None:
        """A snapshot of each of ``aggregates``, in one transaction (when one is there already,
        each on its own); one that fails is logged and skipped: the events are stored, the
        save counts, and a load folds a few more events."""
        records = [
            self._record(aggregate) for aggregate in aggregates if aggregate.state is not None
        ]
        if len(records) > 1:
            try:
                self._snapshots.insert_events(records)
                return
            except IntegrityError:
                pass  # one of them is there already: the others one by one
            except Unavailable as exc:
                _log.warning("no snapshot of %d aggregates: %s", len(records), exc)
                return
        for aggregate in aggregates:
            try:
                self.take_snapshot(aggregate)
            except StoreUnavailableError as exc:
                _log.warning(
                    "no snapshot of %s at version %d: %s", aggregate.id, aggregate.version, exc
                )

    def take_snapshot(self, aggregate: Aggregate[S]) -> None:
        """Store ``aggregate``'s state at its version (a second one at that version is kept
        out: the first is as good)."""
        if aggregate.state is None:
            return
        try:
            self._snapshots.insert_events([self._record(aggregate)])
        except IntegrityError:
            return
        except Unavailable as exc:
            raise StoreUnavailableError(f"snapshot of {aggregate.id!r} failed: {exc}") from None

    def _record(self, aggregate: Aggregate[S]) -> StoredEvent:
        """``aggregate``'s state as a row of the snapshots table (it has a state)."""
        assert aggregate.state is not None
        return StoredEvent(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            topic=self._state.topic,
            state=self._state.encode(aggregate.state),
        )

    def latest_snapshot(self, aggregate_id: str) -> Aggregate[S]:
        try:
            rows = self._snapshots.select_events(aggregate_id, desc=True, limit=1)
        except Unavailable as exc:
            raise StoreUnavailableError(
                f"snapshot read of {aggregate_id!r} failed: {exc}"
            ) from None
        if not rows:
            return Aggregate(aggregate_id, 0, None)
        row = rows[0]
        return Aggregate(
            aggregate_id, row.originator_version, self._state.decode(row.topic, row.state)
        )


def _appends(saves: Sequence[Save[S, E]]) -> list[Append[E]]:
    return [
        Append(save.aggregate.id, save.aggregate.version, save.events, save.tracking)
        for save in saves
    ]
