"""The transactional outbox: publish the notification log to a bus topic, after it is stored.

An event reaches the topic only from the log, so never before its transaction commits. The
publisher reads the notifications after its tracked position, publishes each (in id order,
each awaited before the next), then records the last id as its position. A crash before the
position is recorded publishes the same notifications again on restart: delivery is at least
once, and a repeat carries the same notification id, which consumers drop
(:class:`core.trading_events.Deduplicator`). What a notification becomes on the topic is the
publisher's :data:`~trading.store.wire.Wire` (``trading.events``' record by default). Nothing
is lost: the position never passes an id that was not published.

A publisher may ``keep`` only some notifications (one partition's accounts, ``docs/trading.md``,
"Partitions"): it still reads every one and moves its position past those it leaves to the
other partitions' publishers, so each notification is published by exactly one of them.

The library is synchronous; its calls run in a worker thread (``asyncio.to_thread``), the
publishing on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from eventsourcing.persistence import Notification

from streams.bus import BusError, Topic
from trading.store.log import NotificationLog
from trading.store.loop import follow_log
from trading.store.wire import Wire, trading_wire

Keep = Callable[[Notification], bool]
"""Whether this publisher publishes a notification (the others are another's)."""

Hook = Callable[[int], Awaitable[None]]
"""A fault hook, called with a notification id (tests crash the publisher there)."""


async def _no_hook(_: int) -> None:
    return None


def _every(_: Notification) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    name: str = "outbox:trading.events"
    """The publisher's tracking name; instances with one name take turns."""
    batch: int = 500
    idle_s: float = 2.0
    """How long :meth:`OutboxPublisher.run` waits at most when the log has nothing new: it
    wakes on the log's notification of an append, and polls after this in case one is lost."""
    listen: bool = True
    """Wake on the log's notifications (else only poll, every ``idle_s``)."""
    retry_s: float = 0.5
    """How long it waits after the database or the bus failed, before trying again."""
    publish_timeout_s: float = 60.0
    """How long one batch may take to be acknowledged before it is given up."""


class OutboxPublisher:
    def __init__(
        self,
        log: NotificationLog,
        topic: Topic,
        *,
        wire: Wire = trading_wire,
        settings: OutboxSettings | None = None,
        after_publish: Hook = _no_hook,
        keep: Keep = _every,
    ) -> None:
        self._log = log
        self._topic = topic
        self._wire = wire
        self.settings = settings or OutboxSettings()
        self._after_publish = after_publish
        self._keep = keep

    async def publish_pending(self) -> int:
        """Publish one batch of what the log holds after the position; return how many it
        read (those it keeps are published, the others passed over).

        The batch is one claim of the log (a transaction holding this publisher's lock, run
        in a worker thread): another instance of the publisher waits for it to commit, then
        starts after it, so concurrent instances never publish a notification twice. Each
        record is published on this event loop, awaited before the next.
        """
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self._publish_batch, loop)

    def _publish_batch(self, loop: asyncio.AbstractEventLoop) -> int:
        with self._log.transaction() as curs:
            claim = self._log.claim(curs, self.settings.name)
            batch = self._log.after(claim.position, self.settings.batch)
            if batch:
                ours = [notification for notification in batch if self._keep(notification)]
                sent = asyncio.run_coroutine_threadsafe(self._send(ours), loop)
                try:
                    sent.result(self.settings.publish_timeout_s)
                except concurrent.futures.TimeoutError:
                    sent.cancel()
                    raise BusError(
                        f"outbox {self.settings.name}: a batch was not acknowledged within "
                        f"{self.settings.publish_timeout_s} s"
                    ) from None
                claim.advance(batch[-1].id)
        return len(batch)

    async def _send(self, batch: Sequence[Notification]) -> None:
        """On the event loop: each record of ``batch`` published, in order, each awaited."""
        for notification in batch:
            key, value = self._wire(notification)
            await self._topic.publish(key, value)
            await self._after_publish(notification.id)

    async def drain(self) -> int:
        """Publish until the log has nothing after the position; return how many."""
        total = 0
        while count := await self.publish_pending():
            total += count
        return total

    async def run(self, stop: asyncio.Event, ready_check: str | None = None) -> None:
        """Publish until ``stop`` is set, riding out database and bus outages (and any other
        failure: ``ready_check`` reads ``unavailable`` meanwhile, :func:`follow_log`)."""
        settings = self.settings
        await follow_log(
            settings.name,
            self.publish_pending,
            stop,
            idle_s=settings.idle_s,
            retry_s=settings.retry_s,
            channel=self._log.channel(settings.retry_s) if settings.listen else None,
            ready_check=ready_check,
        )
