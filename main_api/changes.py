"""The alerts' change feed, for the alert evaluator: every change of an alert, in order, as
what the evaluator must now hold.

Each change (created, replaced, deleted, fired for good) gives the alert the next
``change_seq`` and ``NOTIFY``s :data:`~main_api.tables.NOTIFY_CHANNEL` with it, in the
change's transaction. An evaluator keeps the last number it applied, ``LISTEN``s (or polls
every half second) and asks :meth:`AlertChanges.changes_after` for what came since: it
follows within a second (:func:`follow` does both). Only each alert's latest change is kept,
so a reader from 0 gets the whole current set, once per alert.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Final

import msgspec
import psycopg

from core.alerts import AlertSpec
from main_api.errors import StoreUnavailableError
from main_api.store import MainStore
from main_api.tables import NOTIFY_CHANNEL, spec_of

MAX_CHANGES: Final = 10_000


class AlertGone(msgspec.Struct, frozen=True, kw_only=True):
    """The alert no longer fires: deleted, or a ``once`` alert that fired."""

    alert_id: str
    account: int
    status: str


class AlertChanges:
    """The change feed, read from the main API's ``store``."""

    def __init__(self, store: MainStore) -> None:
        self.store = store

    async def changes_after(
        self, seq: int, limit: int = 1000
    ) -> tuple[list[AlertSpec | AlertGone], int]:
        """The changes numbered after ``seq`` (at most ``limit``) and the number of the last
        one (``seq`` when there is none). An active alert is its :class:`AlertSpec` (with its
        ``expires_at``: past it, it no longer fires); any other is :class:`AlertGone`."""
        if not 1 <= limit <= MAX_CHANGES:
            raise ValueError(f"limit is 1 to {MAX_CHANGES}")
        rows = await self.store.changed_rows(seq, limit)
        changes: list[AlertSpec | AlertGone] = [
            spec_of(row)
            if row["status"] == "active"
            else AlertGone(alert_id=row["alert_id"], account=row["account"], status=row["status"])
            for row in rows
        ]
        return changes, rows[-1]["change_seq"] if rows else seq


POLL_S: Final = 0.5
"""How often :func:`follow` asks anyway, should a notification be missed (a reconnect)."""


async def follow(
    changes: AlertChanges, url: str, after: int, stop: asyncio.Event, *, limit: int = 1000
) -> AsyncGenerator[tuple[list[AlertSpec | AlertGone], int], None]:
    """Each batch of changes after ``after``, as they come, until ``stop`` is set: woken by
    ``NOTIFY main_api_alerts`` on a connection of its own (``url``), and every
    :data:`POLL_S` seconds regardless; while the database is away it keeps trying."""
    last = after
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not stop.is_set():
                    batch, last_now = await changes.changes_after(last, limit)
                    if batch:
                        last = last_now
                        yield batch, last
                        continue  # there may be more
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(POLL_S):
                            async for _ in conn.notifies():
                                break
        except (psycopg.OperationalError, StoreUnavailableError):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
