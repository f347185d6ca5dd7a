"""Access tokens for tests: a test key pair and its JWKS, tokens as the auth service issues
them (:func:`issue`), and the forgers of every token a service must refuse.

The tokens are made by the auth service's own code (``auth.claims``, ``auth.signing``), so a
service under test sees exactly what it would see in production. :func:`refused_tokens` gives
one token per refusal case, keyed by the code :class:`access.verify.TokenRefused` carries, so
the 401 tests of every service (the history API, the gateway) run the same cases.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Final

import jwt

from access.keyset import KeySet
from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from auth.claims import AccessClaims, PrincipalKind, access_claims
from auth.plans import load_plans
from auth.signing import Keyring, SigningKey, generate_key

TTL_S: Final = 300
PLANS: Final = load_plans()
KEY: Final = generate_key(0)
"""The test key pair; its public half is in :func:`jwks`."""
OTHER_KEY: Final = generate_key(0)
"""A key pair the services do not know."""


def jwks(*keys: SigningKey) -> bytes:
    """The JWKS document publishing ``keys`` (default: :data:`KEY`)."""
    return json.dumps({"keys": [key.public_jwk() for key in keys or (KEY,)]}).encode()


def keyset(*keys: SigningKey) -> KeySet:
    return KeySet.from_jwks(jwks(*keys))


def claims(
    *,
    plan: str = "pro",
    now: int | None = None,
    ttl_s: int = TTL_S,
    kind: PrincipalKind = "account",
    principal: str | int = 1,
    account_id: int = 1,
    session: str = "session-1",
    scopes: tuple[str, ...] = ("read", "trade"),
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> AccessClaims:
    """The claims the auth service would sign for a principal on ``plan`` at ``now``."""
    return access_claims(
        issuer=issuer,
        audience=audience,
        kind=kind,
        principal=principal,
        account_id=account_id,
        session=session if kind == "account" else "",
        scopes=scopes,
        plan=PLANS.get(plan),
        now=int(time.time()) if now is None else now,
        ttl_s=ttl_s,
    )


def sign(payload: AccessClaims, key: SigningKey = KEY) -> str:
    return Keyring((key,), TTL_S).sign(payload)


def issue(key: SigningKey = KEY, **claim_options: Any) -> str:
    """A valid token (``claim_options``: those of :func:`claims`)."""
    return sign(claims(**claim_options), key)


def key_token(key_id: str = "k_00000000000000000001", **claim_options: Any) -> str:
    """A valid token of an API key (subject ``key:<key_id>``)."""
    return issue(kind="key", principal=key_id, **claim_options)


# -- forgers --------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(document: dict[str, Any]) -> str:
    return _b64(json.dumps(document).encode())


def edited(token: str, **payload_changes: Any) -> str:
    """``token`` with its payload changed and its signature kept (now invalid)."""
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    return ".".join([head, _part(payload | payload_changes), signature])


def escalated(now: int | None = None) -> str:
    """A free plan's token whose claims were edited to the pro plan's."""
    pro = PLANS.get("pro")
    return edited(
        issue(plan="free", now=now),
        plan="pro",
        delay=0,
        instruments="*",
        history_days=pro.history_days,
        rpm=pro.requests_per_minute,
    )


def forged_signature(now: int | None = None) -> str:
    """Our claims, signed by another key under our key's ``kid``."""
    payload = claims(now=now).payload()
    private = OTHER_KEY.private_pem.reveal()
    return jwt.encode(payload, private, algorithm="ES256", headers={"kid": KEY.kid})


def alg_none(now: int | None = None) -> str:
    """Unsigned: ``alg: none`` and an empty signature."""
    header = {"alg": "none", "typ": "JWT", "kid": KEY.kid}
    return f"{_part(header)}.{_part(claims(now=now).payload())}."


def hs256_with_public_key(now: int | None = None) -> str:
    """The algorithm-confusion attack: HS256 keyed with our public key's PEM."""
    header = {"alg": "HS256", "typ": "JWT", "kid": KEY.kid}
    signing_input = f"{_part(header)}.{_part(claims(now=now).payload())}"
    mac = hmac.new(KEY.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def expired(now: int | None = None) -> str:
    moment = int(time.time()) if now is None else now
    return issue(now=moment - 2 * TTL_S - 60)


def not_yet_valid(now: int | None = None) -> str:
    moment = int(time.time()) if now is None else now
    return issue(now=moment + TTL_S)


def wrong_issuer(now: int | None = None) -> str:
    return issue(now=now, issuer="https://evil.example")


def wrong_audience(now: int | None = None) -> str:
    return issue(now=now, audience="another-service")


def unknown_key(now: int | None = None) -> str:
    return issue(OTHER_KEY, now=now)


def refused_tokens(now: int | None = None) -> dict[str, str]:
    """One token per refusal case, by the code it must be refused with (``revoked`` is not
    among them: it needs a revocation on ``auth.events``)."""
    return {
        "malformed": "not-a-token",
        "algorithm": alg_none(now),
        "algorithm:hs256": hs256_with_public_key(now),
        "signature": forged_signature(now),
        "signature:escalated": escalated(now),
        "expired": expired(now),
        "not_yet_valid": not_yet_valid(now),
        "issuer": wrong_issuer(now),
        "audience": wrong_audience(now),
        "unknown_key": unknown_key(now),
    }


def code_of(case: str) -> str:
    """The refusal code of a :func:`refused_tokens` case (``algorithm:hs256`` → ``algorithm``)."""
    return case.partition(":")[0]


__all__ = [
    "KEY",
    "OTHER_KEY",
    "PLANS",
    "TTL_S",
    "alg_none",
    "claims",
    "code_of",
    "edited",
    "escalated",
    "expired",
    "forged_signature",
    "hs256_with_public_key",
    "issue",
    "jwks",
    "key_token",
    "keyset",
    "not_yet_valid",
    "refused_tokens",
    "sign",
    "unknown_key",
    "wrong_audience",
    "wrong_issuer",
]
