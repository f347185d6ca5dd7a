"""``auth.events`` is a typed topic: its codec is registered, a plan change carries the new
plan's claims, and anything that is not an event is our CodecError."""

from __future__ import annotations

import pytest

from core.auth_events import MAX_EVENT_BYTES, AuthEvent, PlanClaims
from core.codecs import CodecError
from core.topic_codecs import REGISTRY, codec_for
from core.topics import AUTH_EVENTS

CLAIMS = PlanClaims(plan="free", instruments="*", delay=900, history_days=30, ws_subs=10,
                    ws_conns=2, rpm=120, trade=False)  # fmt: skip


def test_auth_events_has_a_codec_that_round_trips_a_plan_change() -> None:
    codec = codec_for(AUTH_EVENTS)
    event = AuthEvent(
        id=3, kind="entitlements-changed", subject="account:7", account_id=7, plan="free",
        reason="plan changed", at=10, until=20, claims=CLAIMS,
    )  # fmt: skip
    key, value = codec.record(event)
    assert (key, codec.decode(value)) == (b"account:7", event)
    assert AUTH_EVENTS in REGISTRY


@pytest.mark.parametrize(
    "value",
    [
        b"{",
        b'{"id": 1}',
        b'{"id": 1, "kind": "party", "subject": "s", "account_id": 1, "plan": null,'
        b' "reason": "", "at": 0, "until": 0}',
        b" " * (MAX_EVENT_BYTES + 1),
    ],
)
def test_what_is_not_an_event_is_refused_as_ours(value: bytes) -> None:
    with pytest.raises(CodecError):
        codec_for(AUTH_EVENTS).decode(value)
