"""The one way a service verifies an access token: :class:`TokenVerifier` (sans-I/O).

The order is fixed, and nothing of the token is trusted before its signature is checked:

1. at most :data:`MAX_TOKEN_CHARS`, three base64url parts, a JSON header (``malformed``);
2. ``alg`` is ES256, and nothing else: ``none``, HS256 and every other algorithm are
   refused before any key is looked at (``algorithm``);
3. ``kid`` names a key of the key set (``unknown_key``: fetch the set again, see
   :class:`access.jwks.JwksCache`);
4. the ES256 signature over the header and payload verifies with that key (``signature``);
5. the payload holds every claim a grant needs, typed (``claims``);
6. ``iss`` and ``aud`` are ours (``issuer``, ``audience``); ``now`` lies within ``nbf`` and
   ``exp``, give or take ``leeway_s`` (``not_yet_valid``, ``expired``).

A token that passes becomes a :class:`~access.grant.Grant`. A verifier may remember the last
``cache_size`` tokens it verified (an LRU keyed by the token's text): a token seen again
skips the signature check, the one costly step, and is still checked against ``now``. Only
tokens that verified are remembered, so a forged one is never in it; a verifier holds one
key set, and a new key set means a new verifier, an empty memory.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, Literal

import jwt
import msgspec

from access.grant import Grant, GrantError, TokenClaims
from access.keyset import ALGORITHM, KeySet

RefusalCode = Literal[
    "malformed",
    "algorithm",
    "unknown_key",
    "signature",
    "expired",
    "not_yet_valid",
    "issuer",
    "audience",
    "claims",
    "revoked",
]
DEFAULT_ISSUER: Final = "ganntec-auth"
DEFAULT_AUDIENCE: Final = "ganntec"
LEEWAY_S: Final = 30
"""Clock difference tolerated between the auth service and a verifier, in seconds."""
MAX_TOKEN_CHARS: Final = 4096
"""A token is a few hundred characters; anything above this is refused unread."""


class TokenRefused(Exception):  # noqa: N818 (the contract's name)
    """A token that must be refused: ``code`` (one of :data:`RefusalCode`) and our message."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code: RefusalCode = code
        self.message = message


_claims_decoder: Final = msgspec.json.Decoder(TokenClaims)
_jws: Final = jwt.PyJWS(algorithms=[ALGORITHM])


class TokenVerifier:
    """Verifies tokens against ``keys`` for ``issuer`` and ``audience``."""

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        leeway_s: int = LEEWAY_S,
        cache_size: int = 0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[TokenClaims, Grant]] = OrderedDict()

    def verify(self, token: str, now: int) -> Grant:
        """The grant of ``token`` at ``now`` (UNIX seconds), or :class:`TokenRefused`."""
        known = self._verified.get(token)
        if known is not None:
            self._verified.move_to_end(token)
            self._check_times(known[0], now)
            return known[1]
        claims = self._signed_claims(token)
        if claims.iss != self.issuer:
            raise TokenRefused("issuer", "the token is of another issuer")
        if claims.aud != self.audience:
            raise TokenRefused("audience", "the token is for another audience")
        self._check_times(claims, now)
        try:
            grant = Grant.of_token(claims)
        except GrantError as exc:
            raise TokenRefused("claims", f"the token's claims are malformed: {exc}") from None
        if self._cache_size:
            self._verified[token] = (claims, grant)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return grant

    def _signed_claims(self, token: str) -> TokenClaims:
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise TokenRefused("malformed", "the token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed", "the token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRefused("algorithm", f"the token's algorithm must be {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self.keys:
            raise TokenRefused("unknown_key", "the token's key is unknown")
        try:
            payload = _jws.decode(token, self.keys[kid], algorithms=[ALGORITHM])
        except jwt.InvalidTokenError:
            raise TokenRefused("signature", "the token's signature is invalid") from None
        try:
            return _claims_decoder.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise TokenRefused("claims", f"the token's claims are malformed: {exc}") from None

    def _check_times(self, claims: TokenClaims, now: int) -> None:
        if now >= claims.exp + self.leeway_s:
            raise TokenRefused("expired", "the token has expired")
        if now < claims.nbf - self.leeway_s:
            raise TokenRefused("not_yet_valid", "the token is not valid yet")
