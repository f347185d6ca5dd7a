"""What the outbox publishes on ``trading.events``: each stored event as a
:class:`core.trading_events.TradingRecord`, through the topic's registered codec.

The record carries the notification id, the event's position in the whole log, so that a
consumer recognises a repeat (:class:`core.trading_events.Deduplicator`); its key is the
event's account, so one account's events keep their order on one partition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from eventsourcing.persistence import Notification

from core.topic_codecs import TRADING_EVENTS_CODEC
from core.trading_events import TradingEvent, TradingRecord
from trading.store.codec import StructCodec

Wire = Callable[[Notification], tuple[bytes, bytes]]
"""The ``(key, value)`` of the record that publishes one notification."""

EVENT_CODEC: Final[StructCodec[TradingEvent]] = StructCodec(TradingEvent)
"""How the trading service's events are stored: the same MessagePack map as on the wire."""


def trading_record(notification: Notification) -> TradingRecord:
    """The record of a stored trading event (:class:`UndecodableEventError` when it is not)."""
    return TradingRecord(
        notification_id=notification.id,
        aggregate_id=str(notification.originator_id),
        version=notification.originator_version,
        event=EVENT_CODEC.decode(notification.topic, notification.state),
    )


def trading_wire(notification: Notification) -> tuple[bytes, bytes]:
    """The ``trading.events`` record of a notification, keyed by its event's account."""
    return TRADING_EVENTS_CODEC.record(trading_record(notification))
