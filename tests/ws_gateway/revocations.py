"""Access tokens and ``auth.events`` for the gateway's tests, over any bus."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from access.grant import Grant
from access.jwks import JwksCache
from auth.claims import Entitlements
from core.auth_events import AuthEvent, EventKind, PlanClaims, encode_event
from core.topics import AUTH_EVENTS
from streams.bus import Bus
from streams.memory import MemoryBus
from tests.support.tokens import PLANS, keyset
from ws_gateway import Gateway
from ws_gateway.tokens import AccessTokens

from .harness import TIMEOUT, running

KEY_ID = "k_00000000000000000001"


def plan_claims(name: str, **changes: Any) -> PlanClaims:
    claims = Entitlements.of(PLANS.get(name)).claims() | changes
    return PlanClaims(**claims)


def tokens(anonymous: str | None = "demo") -> AccessTokens:
    grant = None if anonymous is None else Grant.anonymous(plan_claims(anonymous))
    return AccessTokens(JwksCache.fixed(keyset()), grant)


@contextlib.asynccontextmanager
async def gateway_with_tokens(
    anonymous: str | None = "demo", **options: Any
) -> AsyncIterator[tuple[MemoryBus, Gateway]]:
    async with running(authenticator=tokens(anonymous), **options) as (bus, gateway):
        yield bus, gateway


async def revoke(
    bus: Bus,
    kind: EventKind,
    subject: str,
    account_id: int = 1,
    claims: PlanClaims | None = None,
    event_id: int = 1,
) -> None:
    now = int(time.time())
    event = AuthEvent(
        id=event_id,
        kind=kind,
        subject=subject,
        account_id=account_id,
        plan=None if claims is None else claims.plan,
        reason="",
        at=now,
        until=now + 600,
        claims=claims,
    )
    await asyncio.wait_for(
        bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event)), TIMEOUT
    )
