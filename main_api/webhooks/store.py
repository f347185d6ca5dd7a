"""The webhooks' SQL shell, on the main API's store (its pool, its clock): endpoints,
deliveries and dead letters, every query naming its account; and the worker's claim and
finish (:mod:`main_api.webhooks.worker`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Final

from psycopg.rows import DictRow

from main_api.errors import ConflictError, NotFoundError, RefusedError
from main_api.store import MainStore, new_id
from main_api.webhooks.schedule import DeliveryState, Next, Outcome
from main_api.webhooks.tables import (
    CHANNEL,
    CLAIM,
    FINISH,
    NEXT_DUE,
    PRUNE,
    REPLAY,
    delivery_of,
    webhook_of,
)
from main_api.webhooks.views import Delivery, Webhook

SECRET_PREFIX: Final = "whsec_"
MAX_ERROR_CHARS: Final = 200
CLAIM_SCAN_FACTOR: Final = 4
"""A claim looks at this many times ``limit`` due deliveries to find ``limit`` endpoints."""


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe base64, prefixed ``whsec_``."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken for one attempt (its ``attempts`` counts this one), with what it is
    sent with, and until when it and its endpoint are held (``lease_until``, UTC ns). The
    secrets are kept out of its ``repr``."""

    fire_id: str
    webhook_id: str
    body: bytes
    attempts: int
    url: str = field(repr=False)  # a receiver's URL may carry its token
    lease_until: int
    secrets: tuple[str, ...] = field(repr=False)


class WebhookStore:
    """Webhooks in the main API's ``store``."""

    def __init__(self, store: MainStore) -> None:
        self.main = store

    def clock(self) -> int:
        return self.main.clock()

    # -- endpoints --------------------------------------------------------------------------

    async def create(self, account: int, url: str, limit: int, plan: str) -> tuple[Webhook, str]:
        """A new endpoint at ``url`` (checked) and its secret, if the plan allows one more."""
        async with self.main.locked(account) as conn:
            cursor = await conn.execute(
                "SELECT count(*) AS n FROM main_api_webhooks WHERE account = %s", (account,)
            )
            counted = await cursor.fetchone()
            assert counted is not None
            if counted["n"] >= limit:
                raise RefusedError(
                    "plan-limit", "webhooks", f"the {plan} plan allows {limit} webhooks",
                    limit=limit, plan=plan,
                )  # fmt: skip
            secret, now = new_secret(), self.clock()
            cursor = await conn.execute(
                "INSERT INTO main_api_webhooks (webhook_id, account, url, secret, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (new_id("h"), account, url, secret, now, now),
            )
            row = await cursor.fetchone()
            assert row is not None
            return webhook_of(row), secret

    async def webhooks(self, account: int) -> list[Webhook]:
        rows = await self.main.rows(
            "SELECT * FROM main_api_webhooks WHERE account = %s ORDER BY seq", (account,)
        )
        return [webhook_of(row) for row in rows]

    async def delete(self, account: int, webhook_id: str) -> None:
        """Delete the endpoint and its deliveries, dead letters included."""
        rows = await self.main.rows(
            "DELETE FROM main_api_webhooks WHERE account = %s AND webhook_id = %s"
            " RETURNING webhook_id",
            (account, webhook_id),
        )
        if not rows:
            raise _no_webhook(webhook_id)

    async def rotate(self, account: int, webhook_id: str, overlap_s: int) -> tuple[Webhook, str]:
        """A new secret for the endpoint; the one it replaces still signs for ``overlap_s``
        seconds (both signatures are sent meanwhile)."""
        secret, now = new_secret(), self.clock()
        rows = await self.main.rows(
            "UPDATE main_api_webhooks SET previous_secret = secret, secret = %s,"
            " previous_until = %s, updated_at = %s WHERE account = %s AND webhook_id = %s"
            " RETURNING *",
            (secret, now + overlap_s * 10**9, now, account, webhook_id),
        )
        if not rows:
            raise _no_webhook(webhook_id)
        return webhook_of(rows[0]), secret

    # -- deliveries -------------------------------------------------------------------------

    async def deliveries(
        self,
        account: int,
        *,
        state: DeliveryState | None,
        webhook_id: str | None,
        limit: int,
        after: int,
    ) -> list[Delivery]:
        """A page of the account's deliveries, oldest first (``state``, ``webhook_id``: only
        those)."""
        rows = await self.main.rows(
            "SELECT * FROM main_api_webhook_deliveries WHERE account = %(account)s"
            " AND seq > %(after)s AND (%(state)s::text IS NULL OR state = %(state)s)"
            " AND (%(webhook_id)s::text IS NULL OR webhook_id = %(webhook_id)s)"
            " ORDER BY seq LIMIT %(limit)s",
            {"account": account, "after": after, "limit": limit, "webhook_id": webhook_id,
             "state": None if state is None else state.value},
        )  # fmt: skip
        return [delivery_of(row) for row in rows]

    async def replay(self, account: int, webhook_id: str, fire_id: str) -> Delivery:
        """The dead letter pending again, due now, its attempts counted from 0."""
        replayed = await self._replay(account, webhook_id, fire_id)
        if replayed:
            return replayed[0]
        found = await self._delivery(account, webhook_id, fire_id)  # 404 if none
        raise ConflictError(
            "not-dead", "fire_id", f"the delivery of {fire_id[:64]} is {found.state}, not dead"
        )

    async def replay_all(self, account: int, webhook_id: str | None) -> int:
        """Every dead letter of the account (of one endpoint) pending again; how many."""
        if webhook_id is not None:
            await self._webhook(account, webhook_id)
        return len(await self._replay(account, webhook_id, None))

    async def _replay(
        self, account: int, webhook_id: str | None, fire_id: str | None
    ) -> list[Delivery]:
        async with self.main.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                REPLAY,
                {"account": account, "webhook_id": webhook_id, "fire_id": fire_id,
                 "now": self.clock()},
            )  # fmt: skip
            rows = await cursor.fetchall()
            if rows:
                await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            return [delivery_of(row) for row in rows]

    async def _delivery(self, account: int, webhook_id: str, fire_id: str) -> Delivery:
        rows = await self.main.rows(
            "SELECT * FROM main_api_webhook_deliveries WHERE account = %s AND webhook_id = %s"
            " AND fire_id = %s",
            (account, webhook_id, fire_id),
        )
        if not rows:
            raise NotFoundError("unknown-delivery", "fire_id", f"no delivery of {fire_id[:64]}")
        return delivery_of(rows[0])

    async def _webhook(self, account: int, webhook_id: str) -> None:
        rows = await self.main.rows(
            "SELECT 1 FROM main_api_webhooks WHERE account = %s AND webhook_id = %s",
            (account, webhook_id),
        )
        if not rows:
            raise _no_webhook(webhook_id)

    # -- the worker's -----------------------------------------------------------------------

    async def claim(self, limit: int, hold_s: float) -> list[Claimed]:
        """Take up to ``limit`` due deliveries for one attempt each, at most one per endpoint
        and none of an endpoint with an attempt in flight, held ``hold_s`` seconds (those
        another worker holds are skipped)."""
        now = self.clock()
        lease_until = now + int(hold_s * 1e9)
        rows = await self.main.rows(
            CLAIM,
            {"now": now, "lease_until": lease_until, "limit": limit,
             "scan": limit * CLAIM_SCAN_FACTOR},
        )  # fmt: skip
        return [_claimed(row, lease_until) for row in rows]

    async def finish(self, claimed: Claimed, outcome: Outcome, then: Next) -> bool:
        """Record the attempt's ``outcome`` and what follows; whether the delivery was still
        this attempt's."""
        error = outcome.describe()
        rows = await self.main.rows(
            FINISH + " RETURNING fire_id",
            {"state": then.state.value, "next_at": then.at_ns, "status": outcome.status,
             "error": None if error is None else error[:MAX_ERROR_CHARS], "now": self.clock(),
             "fire_id": claimed.fire_id, "webhook_id": claimed.webhook_id,
             "attempts": claimed.attempts, "lease_until": claimed.lease_until},
        )  # fmt: skip
        return bool(rows)

    async def next_due(self) -> int | None:
        """When a pending delivery may next be taken (UTC ns; None: nothing to wait for): the
        first due of an endpoint with no attempt in flight, or the soonest end of a hold."""
        rows = await self.main.rows(NEXT_DUE, {"now": self.clock()})
        at: int | None = rows[0]["at"]
        return at

    async def prune(self, delivered_before: int, dead_before: int, limit: int) -> int:
        """Delete up to ``limit`` deliveries delivered before ``delivered_before`` and up to
        ``limit`` dead letters dead since before ``dead_before`` (UTC ns); how many went."""
        async with self.main.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                PRUNE,
                {"delivered_before": delivered_before, "dead_before": dead_before,
                 "limit": limit},
            )  # fmt: skip
            return cursor.rowcount


def _claimed(row: DictRow, lease_until: int) -> Claimed:
    return Claimed(
        fire_id=row["fire_id"], webhook_id=row["webhook_id"], body=bytes(row["body"]),
        attempts=row["attempts"], url=row["url"], lease_until=lease_until,
        secrets=tuple(s for s in (row["secret"], row["previous_secret"]) if s),
    )  # fmt: skip


def _no_webhook(webhook_id: str) -> NotFoundError:
    return NotFoundError("unknown-webhook", "webhook_id", f"no webhook {webhook_id[:64]}")
