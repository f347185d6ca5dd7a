"""Typed publishing for internal producers: messages in, records out, through the topic's
codec of :data:`core.topic_codecs.REGISTRY` (so the key and the value are made as every
consumer of the topic reads them).

``await send(bus, TRADING_COMMANDS_CODEC, [PlaceOrder(...), CancelOrder(...)])`` puts the
commands on ``trading.commands``, each under its account's key, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from core.topic_codecs import TopicCodec
from streams.bus import Bus, Record

M = TypeVar("M")


async def send(bus: Bus, codec: TopicCodec[M], messages: Iterable[M]) -> list[Record]:
    """Publish ``messages`` on ``codec``'s topic, each encoded and keyed by ``codec``, in
    order; the records as the bus stored them. The bus's errors are the caller's
    (:class:`~streams.bus.MessageTooLargeError`, :class:`~streams.bus.BusClosedError`)."""
    return await bus.topic(codec.name).publish_many(codec.record(m) for m in messages)
