"""What the outbox publishes: one stored event with its notification id, as MessagePack.

The record's key is the aggregate's partition key (all of an account's events on one
partition, in order); the value carries the notification id, the event's position in the whole
log, so that a consumer recognises a record it has seen (:class:`Deduplicator`).
"""

from __future__ import annotations

from typing import Final

import msgspec

from trading.store.errors import UndecodableEventError


class Published(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event as published: ``event`` is the event codec's bytes of type ``topic``."""

    notification_id: int
    aggregate_id: str
    version: int
    topic: str
    event: bytes


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Published)


def encode_published(message: Published) -> bytes:
    return _ENCODER.encode(message)


def decode_published(data: bytes) -> Published:
    """The message in ``data`` (:class:`UndecodableEventError` when it is not one)."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise UndecodableEventError(f"not a published trading event: {exc}") from None


class Deduplicator:
    """A consumer's filter: a record whose notification id it has seen is a repeat.

    The outbox publishes in notification order, so on one key the ids only rise: remembering
    the highest per key is enough (bounded by the number of keys).
    """

    def __init__(self) -> None:
        self._highest: dict[bytes, int] = {}

    def is_new(self, key: bytes, message: Published) -> bool:
        if message.notification_id <= self._highest.get(key, 0):
            return False
        self._highest[key] = message.notification_id
        return True
