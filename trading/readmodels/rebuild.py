"""Rebuild the read models: replay the whole event log into fresh tables and swap them in for
the live ones (:meth:`~trading.store.projector.Projector.rebuild`), on the database at a URL.
What ``mdp trading rebuild`` runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trading.readmodels.tables import DEFAULT_SCHEMA, model
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC

Progress = Callable[[int, int], None]
"""Told (position, last notification id) after each batch."""


@dataclass(frozen=True, slots=True)
class Rebuilt:
    position: int
    """The notification id the rebuilt read models are at (0: the log is empty)."""
    schema: str


def rebuild(
    url: str, schema: str = DEFAULT_SCHEMA, progress: Progress | None = None, batch: int = 500
) -> Rebuilt:
    """Replay the log at ``url`` into fresh read models in place of those in ``schema``
    (made when missing, as are the event store's tables)."""
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        projector = Projector(
            database, EventStore(database, EVENT_CODEC), model(schema), batch=batch
        )
        last = NotificationLog(database).last_id()

        def told(position: int) -> None:
            if progress is not None:
                progress(position, max(last, position))

        return Rebuilt(projector.rebuild(told), schema)
