"""The edge's revocation state without I/O: events in, map entries and changes out."""

from __future__ import annotations

from core.auth_events import AuthEvent
from edge.revocations import MAX_ENTRIES, Change, RevokedSubjects


def event(kind: str, subject: str, until: int) -> AuthEvent:
    return AuthEvent(
        id=1, kind=kind, subject=subject, account_id=7, plan=None, reason="", at=0, until=until,  # type: ignore[arg-type]
    )  # fmt: skip


def test_revocations_become_entries_until_their_time() -> None:
    state = RevokedSubjects()
    first = state.apply(event("key-revoked", "key:k_1", 200), now=100)
    assert first == Change("key:k_1", 200, new=True)
    assert state.apply(event("key-revoked", "key:k_1", 200), now=100) is None  # a repeat
    assert state.apply(event("key-revoked", "key:k_1", 150), now=100) is None  # an earlier end
    assert state.apply(event("key-revoked", "key:k_1", 300), now=100) == Change("key:k_1", 300)
    assert state.apply(event("session-revoked", "session:f_1", 120), now=100) is not None
    assert state.apply(event("account-disabled", "account:7", 90), now=100) is None  # past
    assert state.apply(event("entitlements-changed", "account:7", 900), now=100) is None
    assert state.text() == "key:k_1 300\nsession:f_1 120\n"
    assert state.next_expiry() == 120
    assert state.expire(now=120) == [Change("session:f_1", None)]
    assert state.entries == {"key:k_1": 300}


def test_subjects_that_could_be_commands_or_another_kind_are_refused() -> None:
    state = RevokedSubjects()
    for kind, subject in [
        ("key-revoked", "key:k_1 ; clear map x"),
        ("key-revoked", "key:k_1\nadd map"),
        ("key-revoked", "account:7"),
        ("session-revoked", "session:"),
        ("account-disabled", "account:" + "7" * 129),
    ]:
        assert state.apply(event(kind, subject, 200), now=100) is None, subject
    assert state.entries == {}


def test_a_map_file_is_read_back_without_what_has_expired_or_is_not_an_entry() -> None:
    text = "key:k_1 300\nsession:f_1 100\nnonsense\nkey:k_2 soon\naccount:7 400\n"
    assert RevokedSubjects.parse(text, now=100).entries == {"key:k_1": 300, "account:7": 400}


def test_the_number_of_entries_is_bounded() -> None:
    state = RevokedSubjects({f"key:k_{n}": 200 for n in range(MAX_ENTRIES)})
    assert state.apply(event("key-revoked", "key:k_new", 200), now=100) is None
    assert state.apply(event("key-revoked", "key:k_1", 300), now=100) is not None
