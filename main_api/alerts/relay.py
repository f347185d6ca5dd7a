"""The relay from the fired history to ``alerts.events`` (a transactional outbox).

The evaluator records its firings in ``main_api_fired`` in the transaction that stores its
state and offsets; the relay publishes the rows committed there, in ``seq`` order, and keeps
how far it got in ``main_api_relay``. Rows take their ``seq`` under the change feed's lock held
to their commit (:func:`main_api.store.record_firings_in`), so they commit in ``seq`` order and
a reader that saw ``n`` saw everything before it.

A round (:meth:`FiredRelay.publish_pending`) takes the position row ``FOR UPDATE SKIP
LOCKED`` (one relay at a time over every instance; another one busy: this one skips),
publishes up to ``batch`` rows and moves the position in the same transaction. A crash after
the publish and before the commit publishes those rows again: the same ``fire_id``, which
consumers drop. Nothing uncommitted is ever published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Final

from core.topic_codecs import ALERTS_EVENTS_CODEC
from core.topics import ALERTS_EVENTS
from main_api.errors import StoreUnavailableError
from main_api.store import MainStore
from main_api.tables import fired_of
from streams.bus import Bus, BusError
from streams.outage import Backoff
from streams.rounds import RoundFailures

log = logging.getLogger(__name__)

RELAY_NAME: Final = "alerts.events"
POLL_S: Final = 0.5
"""How often the relay looks anyway (another instance's firings; a wake-up missed)."""


@dataclass(slots=True)
class FiredRelay:
    """Publishes committed firings on ``alerts.events`` (see the module text)."""

    store: MainStore
    bus: Bus
    name: str = RELAY_NAME
    batch: int = 500
    published: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the evaluator after a commit with new firings."""
    backoff: Backoff = field(default_factory=Backoff)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop``; a failed round (the database or the bus away, or anything
        else) is told and tried again with backoff (:class:`~streams.rounds.RoundFailures`)."""
        failures = RoundFailures(
            "alerts.events relay: database or bus", log,
            expected=(StoreUnavailableError, BusError), backoff=self.backoff,
        )  # fmt: skip
        while not stop.is_set():
            try:
                while await self.publish_pending() == self.batch:
                    pass
            except Exception as exc:  # the database, the bus, or a bug: try again later
                await _pause(stop, failures.failed(exc))
                continue
            failures.succeeded()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self.wake.wait()
            self.wake.clear()

    async def publish_pending(self) -> int:
        """Publish the next committed firings (at most ``batch``); how many."""
        async with self.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO main_api_relay (name, seq) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (self.name,),
            )
            cursor = await conn.execute(
                "SELECT seq FROM main_api_relay WHERE name = %s FOR UPDATE SKIP LOCKED",
                (self.name,),
            )
            position = await cursor.fetchone()
            if position is None:
                return 0  # another relay is at it
            cursor = await conn.execute(
                "SELECT * FROM main_api_fired WHERE seq > %s ORDER BY seq LIMIT %s",
                (position["seq"], self.batch),
            )
            rows = await cursor.fetchall()
            if not rows:
                return 0
            codec = ALERTS_EVENTS_CODEC
            events = [fired_of(row) for row in rows]
            await self.bus.topic(ALERTS_EVENTS).publish_many(
                [codec.record(event) for event in events]
            )
            await conn.execute(
                "UPDATE main_api_relay SET seq = %s WHERE name = %s", (rows[-1]["seq"], self.name)
            )
        self.published += len(rows)
        return len(rows)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
