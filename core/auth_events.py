"""What the auth service publishes on ``auth.events`` (:data:`core.topics.AUTH_EVENTS`).

One JSON object per event, keyed by its subject (so one subject's events keep their order on
one partition):

- ``key-revoked``: an API key (subject ``key:<id>``) was revoked; its tokens must stop now;
- ``session-revoked``: a session (``session:<family id>``: a logout, a reused refresh token,
  an administrator) ended; the access tokens with that ``sid`` must stop;
- ``account-disabled``: an account (``account:<id>``) and everything of it must stop;
- ``entitlements-changed``: an account's plan changed to ``plan``; ``claims`` carries the new
  plan's entitlements as a token carries them, so a consumer needs no plan table. Open
  sessions keep the old claims until their tokens expire unless a service applies the new
  ones at once.

``until`` (UNIX seconds) is when every token the event concerns has expired: a denylist may
drop the entry then. ``id`` grows with every event of one database. The topic's codec is
registered in :mod:`core.topic_codecs`; every consumer decodes with it.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from core.codecs import CodecError

EventKind = Literal["key-revoked", "session-revoked", "account-disabled", "entitlements-changed"]
VERSION: Final = 1


class PlanClaims(msgspec.Struct, frozen=True, kw_only=True):
    """A plan's entitlements, by the names an access token carries them under (flat, so
    HAProxy's ``jwt_payload_query`` reads them): ``instruments`` is a space-separated list of
    patterns, ``delay`` seconds (0: real time), ``trade`` whether trading is allowed."""

    plan: str
    instruments: str
    delay: int
    history_days: int
    ws_subs: int
    ws_conns: int
    rpm: int
    trade: bool


class AuthEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: EventKind
    subject: str
    account_id: int
    plan: str | None
    reason: str
    at: int
    until: int
    claims: PlanClaims | None = None
    v: int = VERSION

    def key(self) -> bytes:
        return self.subject.encode()


MAX_EVENT_BYTES: Final = 16 * 1024
"""An event is small; a larger record is refused before it is parsed."""

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(AuthEvent)


def encode_event(event: AuthEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> AuthEvent:
    """The event in ``data`` (:class:`~core.codecs.CodecError` when it is not one)."""
    if len(data) > MAX_EVENT_BYTES:
        raise CodecError(f"an auth event is at most {MAX_EVENT_BYTES} bytes")
    try:
        return _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CodecError(f"not an auth event: {exc}") from None


def event_key(event: AuthEvent) -> bytes:
    return event.key()
