"""Refresh-token families: rotation on use, reuse revokes the whole family, lifetimes."""

from __future__ import annotations

import itertools

import pytest

from auth.families import FamilyPolicy, Outcome, RefreshFamily, new_token, token_hash

POLICY = FamilyPolicy(token_ttl_s=100, family_ttl_s=250)


def _hashes(count: int) -> list[bytes]:
    return [token_hash(new_token()) for _ in range(count)]


def test_each_use_rotates_to_the_next_token() -> None:
    first, second, third = _hashes(3)
    family = RefreshFamily.start("f", 1, first, now=0, policy=POLICY)
    family, outcome = family.use(first, second, now=10, policy=POLICY)
    assert outcome is Outcome.ROTATED
    assert family.current_hash == second
    assert family.token_expires_at == 110
    family, outcome = family.use(second, third, now=20, policy=POLICY)
    assert outcome is Outcome.ROTATED
    assert family.current_hash == third


def test_a_spent_token_used_again_revokes_the_family_and_its_newest_token() -> None:
    first, second, third, fourth = _hashes(4)
    family = RefreshFamily.start("f", 1, first, now=0, policy=POLICY)
    family, _ = family.use(first, second, now=1, policy=POLICY)
    family, outcome = family.use(first, third, now=2, policy=POLICY)  # the thief, or the owner
    assert outcome is Outcome.REUSED
    assert family.revoked == "reuse"
    family, outcome = family.use(second, fourth, now=3, policy=POLICY)  # the other party
    assert outcome is Outcome.REVOKED
    assert family.current_hash == second


def test_a_token_unused_for_its_lifetime_has_expired() -> None:
    first, second = _hashes(2)
    family = RefreshFamily.start("f", 1, first, now=0, policy=POLICY)
    same, outcome = family.use(first, second, now=100, policy=POLICY)
    assert outcome is Outcome.EXPIRED
    assert same == family


def test_a_family_ends_at_its_own_lifetime_however_often_it_is_used() -> None:
    hashes = _hashes(5)
    family = RefreshFamily.start("f", 1, hashes[0], now=0, policy=POLICY)
    for step, (spent, following) in enumerate(itertools.pairwise(hashes[:3])):
        family, outcome = family.use(spent, following, now=90 * (step + 1), policy=POLICY)
        assert outcome is Outcome.ROTATED
    assert family.token_expires_at == 250  # capped by the family's end, not 180 + 100
    _, outcome = family.use(hashes[2], hashes[3], now=250, policy=POLICY)
    assert outcome is Outcome.EXPIRED


def test_a_revoked_family_refuses_its_current_token() -> None:
    first, second = _hashes(2)
    family = RefreshFamily.start("f", 1, first, now=0, policy=POLICY).revoke("logout")
    assert family.use(first, second, now=1, policy=POLICY)[1] is Outcome.REVOKED
    assert family.revoke("admin").revoked == "logout"


def test_lifetimes_are_checked() -> None:
    with pytest.raises(ValueError, match="refresh token lifetimes"):
        FamilyPolicy(token_ttl_s=10, family_ttl_s=5)


def test_tokens_are_distinct_and_never_print() -> None:
    token = new_token()
    assert token.reveal() != new_token().reveal()
    assert token.reveal() not in f"{token} {token!r}"
