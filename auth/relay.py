"""The outbox relay: revocations stored in ``auth_revocations`` go out on ``auth.events``.

Each change that revokes something writes its row in the transaction of the change, whoever
made it (the service, or ``mdp auth revoke`` in another process). The relay publishes the
rows not yet published, in order, then marks them: an event goes out after it is stored,
never before, and at least once (a crash between publishing and marking publishes it again;
consumers tell repeats by ``id``). It wakes when the service records a change, and every
``poll_s`` seconds for the changes of other processes. While the database or the bus is
away it waits and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from auth.events import encode_event
from auth.store import AuthStore
from storage.unavailable import DatabaseUnavailableError
from streams.bus import BusError, Topic

log = logging.getLogger(__name__)
RETRY_S: Final = 1.0


async def relay_events(store: AuthStore, topic: Topic, wake: asyncio.Event, poll_s: float) -> None:
    """Publish the stored revocations for ever (cancel the task to stop)."""
    while True:
        try:
            while events := await store.unpublished():
                for event in events:
                    await topic.publish(event.key(), encode_event(event))
                await store.mark_published([event.id for event in events])
        except (DatabaseUnavailableError, BusError) as exc:
            log.warning("auth.events: cannot relay revocations now (%s); retrying", exc)
            await asyncio.sleep(RETRY_S)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_s)
        wake.clear()
