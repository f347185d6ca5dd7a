"""What the auth service publishes on ``auth.events`` (:data:`core.topics.AUTH_EVENTS`).

One JSON object per event, keyed by its subject (so one subject's events keep their order on
one partition):

- ``key-revoked``: an API key (subject ``key:<id>``) was revoked; its tokens must stop now;
- ``session-revoked``: a session (``session:<family id>``: a logout, a reused refresh token,
  an administrator) ended; the access tokens with that ``sid`` must stop;
- ``account-disabled``: an account (``account:<id>``) and everything of it must stop;
- ``entitlements-changed``: an account's plan changed to ``plan``; its open sessions keep the
  old claims until their tokens expire unless a gateway applies the new plan at once.

``until`` (UNIX seconds) is when every token the event concerns has expired: a denylist may
drop the entry then. ``id`` grows with every event of one database.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

EventKind = Literal["key-revoked", "session-revoked", "account-disabled", "entitlements-changed"]
VERSION: Final = 1


class AuthEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: EventKind
    subject: str
    account_id: int
    plan: str | None
    reason: str
    at: int
    until: int
    v: int = VERSION

    def key(self) -> bytes:
        return self.subject.encode()


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(AuthEvent)


def encode_event(event: AuthEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> AuthEvent:
    """The event in ``data`` (``msgspec.ValidationError`` or ``DecodeError`` when malformed)."""
    return _decoder.decode(data)
