"""The outbox relay: revocations stored in ``auth_revocations`` go out on ``auth.events``.

Each change that revokes something writes its row in the transaction of the change, whoever
made it (the service, or ``mdp auth revoke`` in another process). The relay publishes the
rows not yet published, in order, then marks them: an event goes out after it is stored,
never before, and at least once (a crash between publishing and marking publishes it again;
consumers tell repeats by ``id``). It wakes when the service records a change, and every
``poll_s`` seconds for the changes of other processes. While the database or the bus is
away, or after any other failure (a read-only transaction after a failover, a statement
timeout), it logs it once, waits with backoff and tries again: it ends only when
cancelled. An ``entitlements-changed`` event goes out with the new plan's claims
(``claims``), read from the service's plans, so consumers need no plan table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec

from auth.claims import Entitlements
from auth.plans import PlanBook
from auth.store import AuthStore
from core.auth_events import AuthEvent, encode_event
from storage.unavailable import DatabaseUnavailableError
from streams.bus import BusError, Topic
from streams.rounds import RoundFailures

log = logging.getLogger(__name__)


def with_claims(event: AuthEvent, plans: PlanBook) -> AuthEvent:
    """``event`` with its plan's claims when it is a plan change to a plan of ``plans``."""
    if event.kind != "entitlements-changed" or event.plan not in plans.plans:
        return event
    claims = Entitlements.of(plans.get(event.plan)).plan_claims()
    return msgspec.structs.replace(event, claims=claims)


async def relay_events(
    store: AuthStore, topic: Topic, wake: asyncio.Event, poll_s: float, plans: PlanBook
) -> None:
    """Publish the stored revocations for ever (cancel the task to stop); after a failure,
    whatever it was, again with backoff until it works."""
    failures = RoundFailures(
        "auth.events relay: database or bus", log, expected=(DatabaseUnavailableError, BusError)
    )
    while True:
        try:
            while events := await store.unpublished():
                for event in events:
                    await topic.publish(event.key(), encode_event(with_claims(event, plans)))
                await store.mark_published([event.id for event in events])
        except Exception as exc:
            await asyncio.sleep(failures.failed(exc))
            continue
        failures.succeeded()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_s)
        wake.clear()
