"""Access tokens of the auth service, checked by the gateway itself: :class:`AccessTokens`.

The :class:`~ws_gateway.auth.Authenticator` of a gateway given the auth service's key set
(``mdp gateway --jwks-url URL``). Tokens are verified by :mod:`access` (ES256 only, the key
named by ``kid``, issuer, audience, ``nbf`` and ``exp``) against a
:class:`~access.jwks.JwksCache`, which keeps the last good key set through an auth outage.
A verified token's principal carries its :class:`~access.grant.Grant`; a refused one is an
:class:`~ws_gateway.auth.AuthenticationError` whose message starts with the refusal's code
(``expired: the token has expired``). A client without a token gets the anonymous plan's
grant, or is refused when there is none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from access.grant import Grant
from access.jwks import JwksCache
from access.verify import TokenRefused
from ws_gateway.auth import AuthenticationError, Principal
from ws_gateway.settings import ANONYMOUS_PERMISSIONS

NS_PER_S: Final = 1_000_000_000
READ_SCOPE: Final = "read"


def principal_of(grant: Grant) -> Principal:
    """The principal of a grant: it reads every channel when its scopes hold ``read``."""
    permissions = ANONYMOUS_PERMISSIONS if READ_SCOPE in grant.scopes else frozenset()
    expires = None if grant.expires_at is None else grant.expires_at * NS_PER_S
    return Principal(grant.subject, permissions, expires, grant)


class AccessTokens:
    """Checks access tokens against ``keys``; ``anonymous``: the grant of clients without a
    token (None: they must present one). ``clock`` gives UNIX seconds."""

    def __init__(
        self,
        keys: JwksCache,
        anonymous: Grant | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.anonymous = None if anonymous is None else principal_of(anonymous)
        self.clock = clock

    async def authenticate(self, token: str | None) -> Principal:
        if token is None:
            if self.anonymous is None:
                raise AuthenticationError("a token is required: anonymous access is off")
            return self.anonymous
        try:
            grant = await self.keys.verify(token, int(self.clock()))
        except TokenRefused as refused:
            raise AuthenticationError(f"{refused.code}: {refused.message}") from None
        return principal_of(grant)
