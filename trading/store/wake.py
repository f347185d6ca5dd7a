"""Wake-ups from the log: the library sends a PostgreSQL ``NOTIFY`` on the events table's
channel in every append; a follower LISTENs for it on a connection of its own.

A notification only sets an event: a burst of them is one wake-up, and the follower reads
the log as it would have on a poll. The listening connection is made again after it drops
(a database restart), and the event is set at each (re)connection, since an append made while
nobody listened sends nothing. A notification can still be missed without the connection
seeming to drop, which is why the follower keeps a (long) fallback poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg
from psycopg.sql import SQL, Identifier

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogChannel:
    """Where to LISTEN: the database's URL and the events table's channel."""

    url: str = field(repr=False)  # its password never prints
    channel: str
    retry_s: float = 0.5
    """How long to wait before connecting again after the connection failed."""
    ping_s: float = 5.0
    """How often a quiet connection is checked (a dead one is made again)."""
    connect_timeout_s: int = 2


async def listen(channel: LogChannel, woken: asyncio.Event) -> None:
    """Set ``woken`` at each notification on ``channel`` and at each (re)connection, until
    cancelled."""
    failing = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                channel.url, autocommit=True, connect_timeout=channel.connect_timeout_s
            ) as conn:
                await conn.execute(SQL("LISTEN {}").format(Identifier(channel.channel)))
                if failing:
                    _log.info("listening on %s again", channel.channel)
                failing = False
                woken.set()
                while True:
                    async for _ in conn.notifies(timeout=channel.ping_s):
                        woken.set()
                    await conn.execute("SELECT 1")
        except psycopg.Error as exc:
            if not failing:
                _log.warning(
                    "listening on %s: %s; retrying every %.1f s", channel.channel, exc,
                    channel.retry_s,
                )  # fmt: skip
            failing = True
            await asyncio.sleep(channel.retry_s)


@contextlib.asynccontextmanager
async def wakeups(channel: LogChannel | None) -> AsyncIterator[asyncio.Event | None]:
    """An event set on each notification on ``channel`` while the block runs (``None``
    without a channel: the follower only polls)."""
    if channel is None:
        yield None
        return
    woken = asyncio.Event()
    task = asyncio.create_task(listen(channel, woken), name=f"listen:{channel.channel}")
    try:
        yield woken
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
