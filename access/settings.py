"""How a service checks access tokens: :class:`TokenSettings`, the one list of those settings
(the history and trading APIs' token gate, :mod:`web.tokens`, and the WebSocket gateway's
authenticator, :mod:`ws_gateway.tokens`, both take it)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from access.jwks import JwksCache
from access.keyset import KeySet
from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from core.auth_events import PlanClaims


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """How a service checks tokens: ``jwks_url``, the auth service's key set, fetched every
    ``jwks_refresh_s`` seconds, or ``keys``, a fixed key set (tests); with neither, nothing is
    checked. ``issuer`` and ``audience`` a token must name; ``anonymous``: the claims of the
    plan of a request without a token (None: such a request is refused, 401);
    ``token_cache``: tokens remembered once verified (0: every request verifies its
    signature); ``clock``: the wall clock, UTC nanoseconds."""

    jwks_url: str | None = None
    jwks_refresh_s: float = 30.0
    keys: KeySet | None = field(default=None, repr=False)
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    anonymous: PlanClaims | None = None
    token_cache: int = 4096
    clock: Callable[[], int] = field(default=time.time_ns, repr=False)
    tls: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    """What an ``https`` key set is fetched with (mutual TLS, ``docs/security.md``)."""

    @property
    def checks_tokens(self) -> bool:
        return self.jwks_url is not None or self.keys is not None

    def key_cache(self) -> JwksCache | None:
        """The key set these settings name, as a cache to open (None: tokens are not
        checked)."""
        if self.keys is not None:
            return JwksCache.fixed(
                self.keys, issuer=self.issuer, audience=self.audience, cache_size=self.token_cache
            )
        if self.jwks_url is not None:
            return JwksCache(
                self.jwks_url, self.jwks_refresh_s, issuer=self.issuer, audience=self.audience,
                cache_size=self.token_cache, tls=self.tls,
            )  # fmt: skip
        return None
