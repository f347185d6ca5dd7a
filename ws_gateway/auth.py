"""Who a client is: a token checked by a pluggable :class:`Authenticator`.

The token comes as the query parameter ``token``, an ``Authorization: Bearer`` header, the
subprotocol ``mdp.token.<token>`` beside ``mdp.v1``, or the connection's first frame
(``{"op":"auth",...}``; ``docs/protocol.md``, "Connecting"). The gateway asks its
authenticator, which returns a :class:`Principal` or raises :class:`AuthenticationError`. A
principal whose token expires is closed with 4401 when its time is up. With the auth service's
key set, :class:`~ws_gateway.tokens.AccessTokens` checks access tokens and gives each
principal its :class:`~access.grant.Grant` (the plan's entitlements); embedded mode without one uses
:class:`StaticTokens`.

Permissions are strings: ``read:candles`` and ``read:ticks`` for the market-data channels,
``read:*`` for every channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

from access.grant import Grant
from ws_gateway.settings import ANONYMOUS_PERMISSIONS


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client (or the anonymous one): a name, permissions, an expiry, and
    the grant of its token's plan.

    ``grant`` None: no plan (a :class:`StaticTokens` principal): every instrument, in real
    time, within the gateway's own limits.
    """

    name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    expires_at_ns: int | None = None
    """UTC nanoseconds after which the connection is closed (4401); None: never."""
    grant: Grant | None = None

    def may_read(self, channel: str) -> bool:
        return f"read:{channel}" in self.permissions or "read:*" in self.permissions

    def expired(self, now_ns: int) -> bool:
        return self.expires_at_ns is not None and now_ns >= self.expires_at_ns

    def covers(self, instrument: str) -> bool:
        """Whether the plan lets the principal see ``instrument``."""
        return self.grant is None or self.grant.covers(instrument)

    @property
    def plan(self) -> str | None:
        return None if self.grant is None else self.grant.plan

    @property
    def delay_s(self) -> int:
        """How far the principal's data lags, in seconds (0: real time)."""
        return 0 if self.grant is None else self.grant.delay_s

    def subscriptions(self, limit: int) -> int:
        """The subscriptions one connection may hold: the plan's, within ``limit``."""
        return limit if self.grant is None else min(limit, self.grant.ws_subscriptions)

    @property
    def counted(self) -> str | None:
        """The subject whose connections count against the plan's ``ws_connections`` (None:
        uncounted: no plan, or anonymous, whose connections are capped per address)."""
        grant = self.grant
        if grant is None or grant.is_anonymous:
            return None
        return grant.subject


ANONYMOUS = Principal("anonymous", ANONYMOUS_PERMISSIONS)


class AuthenticationError(Exception):
    """A token refused: ``status`` is the HTTP answer (401 unknown or missing, 403 forbidden)."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.UNAUTHORIZED) -> None:
        super().__init__(message)
        self.status = status


class Authenticator(Protocol):
    """Checks the token a client connects with (``None`` when it sent none)."""

    async def authenticate(self, token: str | None) -> Principal:
        """The principal of ``token``; raises :class:`AuthenticationError` to refuse it."""
        ...


@dataclass(frozen=True, slots=True)
class StaticTokens:
    """A fixed table of tokens, and optionally an anonymous principal for clients without one.

    With an empty table and ``anonymous`` set, this is the embedded default: anyone may read
    the public channels, and any token is refused (nothing here could check it).
    """

    tokens: Mapping[str, Principal] = field(default_factory=dict)
    anonymous: Principal | None = ANONYMOUS

    async def authenticate(self, token: str | None) -> Principal:
        if token is None:
            if self.anonymous is None:
                raise AuthenticationError("a token is required (?token=... or Authorization)")
            return self.anonymous
        principal = self.tokens.get(token)
        if principal is None:
            raise AuthenticationError("unknown token")
        return principal


def bearer_token(query_token: str | None, authorization: str | None) -> str | None:
    """The token of a connection request: ``?token=`` first, else ``Authorization: Bearer``.

    Raises :class:`AuthenticationError` for an ``Authorization`` header of another scheme.
    """
    if query_token:
        return query_token
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthenticationError("the Authorization header must be `Bearer <token>`")
    return credentials.strip()
