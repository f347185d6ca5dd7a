"""ES256 access tokens: signed with the newest key, verified by the JWKS, refused when forged,
of another algorithm, expired or for someone else; a retired key verifies until its tokens
expire."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time

import jwt
import pytest

from access.grant import Grant
from access.verify import TokenRefused, TokenVerifier
from auth.claims import AccessClaims, access_claims
from auth.plans import load_plans
from auth.signing import Keyring, generate_key

ISS, AUD, TTL = "https://auth.test", "ganntec", 300


def _claims(now: int, **changes: object) -> AccessClaims:
    book = load_plans()
    claims = access_claims(
        issuer=ISS, audience=AUD, kind="account", principal=1, account_id=1, session="s",
        scopes=("read", "trade"), plan=book.get(book.signup), now=now, ttl_s=TTL,
    )  # fmt: skip
    return dataclasses.replace(claims, **changes)  # type: ignore[arg-type]


def _verify(ring: Keyring, token: str, now: int) -> Grant:
    return TokenVerifier(ring.key_set(now), issuer=ISS, audience=AUD).verify(token, now)


def test_a_token_verifies_with_the_published_jwk_alone() -> None:
    now = int(time.time())
    key = generate_key(now)
    ring = Keyring((key,), TTL)
    token = ring.sign(_claims(now))
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    (jwk,) = ring.jwks(now)["keys"]
    assert (jwk["kid"], jwk["alg"], jwk["kty"], jwk["crv"]) == (key.kid, "ES256", "EC", "P-256")
    assert "d" not in jwk
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["ES256"], audience=AUD, issuer=ISS)
    assert claims["sub"] == "account:1"
    assert _verify(ring, token, now).plan == claims["plan"]


def _forge(token: str, **payload_changes: object) -> str:
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    edited = json.dumps(payload | payload_changes).encode()
    return ".".join([head, base64.urlsafe_b64encode(edited).rstrip(b"=").decode(), signature])


def test_forged_and_foreign_tokens_are_refused_in_our_words() -> None:
    now = int(time.time())
    key = generate_key(now - 10 * TTL)
    ring = Keyring((key,), TTL)
    token = ring.sign(_claims(now))
    public_pem = key.public_pem.encode()
    cases = {
        "signature": [
            _forge(token, plan="pro", rpm=10**6),
            _signed_by_another_key_as(key.kid, _claims(now)),
        ],
        "issuer": [Keyring((key,), TTL).sign(_claims(now, issuer="https://evil"))],
        "audience": [Keyring((key,), TTL).sign(_claims(now, audience="other"))],
        "algorithm": [
            jwt.encode(_claims(now).payload(), "", algorithm="none", headers={"kid": key.kid}),
            _hs256_with_public_key(_claims(now).payload(), public_pem, key.kid),
        ],
        "expired": [ring.sign(_claims(now - 2 * TTL))],
        "not_yet_valid": [ring.sign(_claims(now + TTL))],
        "malformed": ["not-a-token"],
        "unknown_key": [Keyring((generate_key(now),), TTL).sign(_claims(now))],
    }
    for code, tokens in cases.items():
        for bad in tokens:
            with pytest.raises(TokenRefused) as refused:
                _verify(ring, bad, now)
            assert refused.value.code == code


def _signed_by_another_key_as(kid: str, claims: AccessClaims) -> str:
    other = generate_key(0).private_pem.reveal()
    return jwt.encode(claims.payload(), other, algorithm="ES256", headers={"kid": kid})


def _hs256_with_public_key(payload: dict[str, object], secret: bytes, kid: str) -> str:
    """The algorithm-confusion attack, built by hand (PyJWT refuses to sign it)."""

    def part(data: dict[str, object]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(payload)
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def test_a_retired_key_verifies_its_tokens_until_they_expire_then_leaves_the_jwks() -> None:
    now = int(time.time())
    old = generate_key(now - 10)
    old_token = Keyring((old,), TTL).sign(_claims(now - 5))
    new = generate_key(now)
    ring = Keyring((new, dataclasses.replace(old, retired_at=now)), TTL)
    assert ring.signer(now) == new
    assert jwt.get_unverified_header(ring.sign(_claims(now)))["kid"] == new.kid
    assert {jwk["kid"] for jwk in ring.jwks(now)["keys"]} == {new.kid, old.kid}
    assert _verify(ring, old_token, now).subject == "account:1"
    later = now + TTL + 60
    assert {jwk["kid"] for jwk in ring.jwks(later)["keys"]} == {new.kid}


def test_a_key_made_with_a_lead_is_published_before_it_signs() -> None:
    now = int(time.time())
    old = generate_key(now - 100)
    new = generate_key(now, lead_s=60)
    ring = Keyring((new, dataclasses.replace(old, retired_at=new.signs_from)), TTL)
    assert {jwk["kid"] for jwk in ring.jwks(now)["keys"]} == {old.kid, new.kid}
    assert ring.signer(now) == dataclasses.replace(old, retired_at=now + 60)
    assert ring.signer(now + 60) == new
    assert jwt.get_unverified_header(ring.sign(_claims(now)))["kid"] == old.kid
    assert jwt.get_unverified_header(ring.sign(_claims(now + 60)))["kid"] == new.kid


def test_signing_without_a_live_key_says_what_to_do() -> None:
    now = int(time.time())
    ring = Keyring((dataclasses.replace(generate_key(now), retired_at=now),), TTL)
    with pytest.raises(RuntimeError, match="rotate-keys"):
        ring.sign(_claims(now))


def test_a_private_key_never_prints() -> None:
    key = generate_key(0)
    assert "PRIVATE" in key.private_pem.reveal()
    assert "PRIVATE" not in f"{key} {key!r}"
