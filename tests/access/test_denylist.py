"""Revocations from auth.events: a revoked key, session or account refuses its tokens until
the entry's ``until``; repeats change nothing; plan changes move a grant to the new plan."""

from __future__ import annotations

import time

from access.denylist import PRUNE_EVERY_S, Denylist
from access.grant import Grant
from core.auth_events import AuthEvent, EventKind, PlanClaims
from tests.support import tokens


def _event(kind: EventKind, subject: str, until: int, **more: object) -> AuthEvent:
    return AuthEvent(
        id=1, kind=kind, subject=subject, account_id=1, plan=None, reason="", at=0,
        until=until, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def _grants(now: int) -> tuple[Grant, Grant]:
    account = Grant.from_claims(tokens.claims(now=now, session="s9").payload())
    key = Grant.from_claims(tokens.claims(now=now, kind="key", principal="k_9").payload())
    return account, key


def test_each_kind_of_revocation_refuses_its_tokens_until_its_end() -> None:
    now = int(time.time())
    account, key = _grants(now)
    cases = [
        (_event("key-revoked", "key:k_9", now + 100), {key}),
        (_event("session-revoked", "session:s9", now + 100), {account}),
        (_event("account-disabled", "account:1", now + 100), {account, key}),
    ]
    for event, refused in cases:
        denylist = Denylist()
        denylist.apply(event, now)
        denylist.apply(event, now)  # a repeat
        assert {grant for grant in (account, key) if denylist.refuses(grant, now)} == refused
        assert not any(denylist.refuses(grant, now + 100) for grant in (account, key))


def test_entries_are_dropped_after_their_end() -> None:
    now = int(time.time())
    denylist = Denylist()
    denylist.apply(_event("key-revoked", "key:a", now + 10), now)
    denylist.apply(_event("key-revoked", "key:b", now - 1), now)  # over already
    assert len(denylist) == 1
    denylist.apply(_event("key-revoked", "key:c", now + 10 * PRUNE_EVERY_S), now + PRUNE_EVERY_S)
    assert len(denylist) == 1


def test_an_anonymous_grant_is_never_refused() -> None:
    denylist = Denylist()
    denylist.apply(_event("key-revoked", "anonymous", 10**10), 0)
    anonymous = Grant.anonymous(
        PlanClaims(plan="demo", instruments="*", delay=0, history_days=1, ws_subs=1,
                   ws_conns=1, rpm=1, trade=False)
    )  # fmt: skip
    assert not denylist.refuses(anonymous, 0)


def test_a_plan_change_moves_the_account_s_grants_to_the_new_plan() -> None:
    now = int(time.time())
    account, _ = _grants(now)
    free = PlanClaims(plan="free", instruments="*", delay=900, history_days=30, ws_subs=10,
                      ws_conns=2, rpm=120, trade=False)  # fmt: skip
    denylist = Denylist()
    denylist.apply(_event("entitlements-changed", "account:1", now + 100, claims=free), now)
    assert not denylist.refuses(account, now)
    assert (denylist.plan_of(account, now).plan, denylist.plan_of(account, now).delay_s) == (
        "free", 900,
    )  # fmt: skip
    assert denylist.plan_of(account, now + 100) == account
