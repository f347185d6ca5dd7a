"""The body POSTed to a webhook for an alert firing (pure): built once, when the firing is
recorded, and kept, so every attempt and replay sends the same bytes (only the signature's
time changes)."""

from __future__ import annotations

from typing import Final

import msgspec

from core.alerts import AlertFired
from main_api.views import FiringFields

ALERT_FIRED: Final = "alert.fired"


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What a webhook receives: ``id`` (the firing's ``fire_id``, also in ``Ganntec-Event-Id``:
    drop a repeat), ``type``, ``created_at`` (UTC nanoseconds, when the firing was recorded)
    and the firing."""

    id: str
    type: str
    created_at: int
    data: FiringFields


_encoder: Final = msgspec.json.Encoder()


def event_body(event: AlertFired, now_ns: int) -> bytes:
    """The JSON body of ``event``'s webhook (decimals as strings)."""
    data = FiringFields(
        fire_id=event.fire_id, alert_id=event.alert_id, instrument=event.instrument,
        condition=event.condition, threshold=event.threshold, price=event.price, ts=event.ts,
        trade_id=event.trade_id, candle_open_time=event.candle_open_time, gap=event.gap,
    )  # fmt: skip
    return _encoder.encode(
        WebhookEvent(id=event.fire_id, type=ALERT_FIRED, created_at=now_ns, data=data)
    )
