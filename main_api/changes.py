"""The alerts' change feed, for the alert evaluator: every change of an alert, in order, as
what the evaluator must now hold.

Each change (created, replaced, deleted, fired for good) gives the alert the next
``change_seq`` and ``NOTIFY``s :data:`~main_api.tables.NOTIFY_CHANNEL` with it, in the
change's transaction. An evaluator keeps the last number it applied, ``LISTEN``s (or polls
every half second) and asks :meth:`AlertChanges.changes_after` for what came since: it follows
within a second. Only each alert's latest change is kept, so a reader from 0 gets the whole
current set, once per alert.
"""

from __future__ import annotations

from typing import Final

import msgspec

from core.alerts import AlertSpec
from main_api.store import MainStore
from main_api.tables import spec_of

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
