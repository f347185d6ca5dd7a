"""The one way to verify: a token of the auth service becomes a grant; every forged, foreign,
stale or mangled token is refused with its own code, before anything of it is trusted."""

from __future__ import annotations

import time

import jwt
import pytest

from access.verify import MAX_TOKEN_CHARS, TokenRefused, TokenVerifier
from tests.support import tokens


def _verifier(cache_size: int = 0) -> TokenVerifier:
    return TokenVerifier(tokens.keyset(), cache_size=cache_size)


def test_a_token_of_the_auth_service_becomes_its_plan_s_grant() -> None:
    now = int(time.time())
    grant = _verifier().verify(tokens.issue(plan="free", now=now), now)
    free = tokens.PLANS.get("free")
    assert (grant.subject, grant.account_id, grant.session) == ("account:1", 1, "session-1")
    assert (grant.plan, grant.delay_s, grant.history_days) == ("free", 900, free.history_days)
    assert grant.instruments == free.instruments
    assert (grant.ws_subscriptions, grant.requests_per_minute) == (
        free.ws_subscriptions,
        free.requests_per_minute,
    )
    assert grant.trading is False
    assert grant.expires_at == now + tokens.TTL_S
    assert grant.scopes == ("read", "trade")


def test_a_key_s_token_names_the_key() -> None:
    now = int(time.time())
    grant = _verifier().verify(tokens.key_token("k_1", now=now, scopes=("read",)), now)
    assert (grant.subject, grant.session, grant.scopes) == ("key:k_1", "", ("read",))


@pytest.mark.parametrize("case", list(tokens.refused_tokens()))
def test_each_bad_token_is_refused_with_its_code(case: str) -> None:
    now = int(time.time())
    bad = tokens.refused_tokens(now)[case]
    with pytest.raises(TokenRefused) as refused:
        _verifier().verify(bad, now)
    assert refused.value.code == tokens.code_of(case)


def test_the_leeway_is_thirty_seconds_either_side() -> None:
    now = int(time.time())
    token = tokens.issue(now=now)
    verifier = _verifier()
    assert verifier.verify(token, now - 29).subject == "account:1"
    assert verifier.verify(token, now + tokens.TTL_S + 29).subject == "account:1"
    with pytest.raises(TokenRefused, match=r"^the token has expired$"):
        verifier.verify(token, now + tokens.TTL_S + 30)
    with pytest.raises(TokenRefused, match=r"^the token is not valid yet$"):
        verifier.verify(token, now - 31)


def test_an_oversized_token_is_refused_unread() -> None:
    with pytest.raises(TokenRefused) as refused:
        _verifier().verify("a." + "b" * MAX_TOKEN_CHARS + ".c", 0)
    assert refused.value.code == "malformed"


def test_a_signed_token_lacking_a_grant_s_claims_is_refused() -> None:
    now = int(time.time())
    payload = tokens.claims(now=now).payload()
    del payload["delay"]
    token = jwt.encode(
        payload, tokens.KEY.private_pem.reveal(), algorithm="ES256", headers={"kid": tokens.KEY.kid}
    )
    with pytest.raises(TokenRefused) as refused:
        _verifier().verify(token, now)
    assert refused.value.code == "claims"


def test_remembered_tokens_are_still_checked_against_the_clock() -> None:
    now = int(time.time())
    token = tokens.issue(now=now)
    verifier = _verifier(cache_size=2)
    first = verifier.verify(token, now)
    assert verifier.verify(token, now) is first
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(token, now + tokens.TTL_S + 30)
    assert refused.value.code == "expired"


def test_the_memory_is_bounded_and_never_holds_a_refused_token() -> None:
    now = int(time.time())
    verifier = _verifier(cache_size=2)
    for account in range(5):
        verifier.verify(tokens.issue(now=now, account_id=account), now)
    assert len(verifier._verified) == 2
    for bad in tokens.refused_tokens(now).values():
        with pytest.raises(TokenRefused):
            verifier.verify(bad, now)
    assert len(verifier._verified) == 2
    forged = tokens.forged_signature(now)
    with pytest.raises(TokenRefused):
        verifier.verify(forged, now)
    with pytest.raises(TokenRefused):  # refused again: it was never remembered
        verifier.verify(forged, now)
