"""What the webhook routes answer (a secret is never in a view: it is answered once, beside
one, when made or rotated)."""

from __future__ import annotations

import msgspec

from main_api.webhooks.schedule import DeliveryState


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    webhook_id: str
    url: str
    created_at: int
    updated_at: int
    previous_secret_until: int | None
    """After a rotation: until when the previous secret still signs too."""


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event for one endpoint: its state, its attempts and what the last one got, and the
    event as sent (``event``)."""

    seq: int
    webhook_id: str
    fire_id: str
    state: DeliveryState
    attempts: int
    next_at: int | None
    """Pending: when it is due."""
    last_status: int | None
    last_error: str | None
    replays: int
    created_at: int
    updated_at: int
    delivered_at: int | None
    event: msgspec.Raw
