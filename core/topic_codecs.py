"""The typed topic registry: each topic with a schema maps to its message type and codec.

A consumer decodes a record with the codec of its topic, looked up here once per topic and
batch (``streams.processor`` does it for every processor); a producer encodes with the same
entry, so a topic's key, value and type are spelled in one place. Names are in
:mod:`core.topics`, wire formats in :mod:`core.codecs`, :mod:`core.auth_events`,
:mod:`core.trading_events`, :mod:`core.trading_commands` and :mod:`core.alerts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from core import alerts, auth_events, codecs, trading_commands, trading_events
from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import (
    ALERTS_EVENTS,
    AUTH_EVENTS,
    CANDLES,
    TICKS,
    TICKS_REJECTED,
    TRADING_COMMANDS,
    TRADING_EVENTS,
)

M = TypeVar("M")

TicksMessage = TickBatch | FeedGap
"""What ``md.ticks`` carries: micro-batches of one instrument's ticks, and feed gaps."""


@dataclass(frozen=True, slots=True)
class TopicCodec(Generic[M]):
    """A topic's message type(s) and how its records' keys and values are made and read.

    ``decode`` raises :class:`~core.codecs.CodecError` (and nothing else) for a value that
    is not a message of this topic.
    """

    name: str
    types: tuple[type, ...]
    decode: Callable[[bytes], M]
    encode: Callable[[M], bytes]
    key: Callable[[M], bytes]

    def record(self, message: M) -> tuple[bytes, bytes]:
        """The ``(key, value)`` of a record carrying ``message``."""
        return self.key(message), self.encode(message)


def _encode_ticks(message: TicksMessage) -> bytes:
    if isinstance(message, FeedGap):
        return codecs.encode_feed_gap(message)
    return codecs.encode_tick_batch(message)


def _instrument_key(message: TicksMessage) -> bytes:
    return codecs.instrument_key(message.instrument)


def _rejected_key(message: codecs.RejectedMessage) -> bytes:
    return message.key


TICKS_CODEC: Final[TopicCodec[TicksMessage]] = TopicCodec(
    TICKS, (TickBatch, FeedGap), codecs.decode_ticks_message, _encode_ticks, _instrument_key
)
CANDLES_CODEC: Final[TopicCodec[Candle]] = TopicCodec(
    CANDLES, (Candle,), codecs.decode_candle, codecs.encode_candle, codecs.candle_key
)
REJECTED_CODEC: Final[TopicCodec[codecs.RejectedMessage]] = TopicCodec(
    TICKS_REJECTED,
    (codecs.RejectedMessage,),
    codecs.decode_rejected,
    codecs.encode_rejected,
    _rejected_key,
)

AUTH_EVENTS_CODEC: Final[TopicCodec[auth_events.AuthEvent]] = TopicCodec(
    AUTH_EVENTS,
    (auth_events.AuthEvent,),
    auth_events.decode_event,
    auth_events.encode_event,
    auth_events.event_key,
)

TRADING_EVENTS_CODEC: Final[TopicCodec[trading_events.TradingRecord]] = TopicCodec(
    TRADING_EVENTS,
    (trading_events.TradingRecord,),
    trading_events.decode_record,
    trading_events.encode_record,
    trading_events.record_key,
)

TRADING_COMMANDS_CODEC: Final[TopicCodec[trading_commands.TradingCommand]] = TopicCodec(
    TRADING_COMMANDS,
    trading_commands.COMMANDS,
    trading_commands.decode_command,
    trading_commands.encode_command,
    trading_commands.command_key,
)

ALERTS_EVENTS_CODEC: Final[TopicCodec[alerts.AlertFired]] = TopicCodec(
    ALERTS_EVENTS, (alerts.AlertFired,), alerts.decode_fired, alerts.encode_fired, alerts.fired_key
)

REGISTRY: Final[Mapping[str, TopicCodec[Any]]] = MappingProxyType(
    {
        codec.name: codec
        for codec in (
            TICKS_CODEC,
            CANDLES_CODEC,
            REJECTED_CODEC,
            AUTH_EVENTS_CODEC,
            TRADING_COMMANDS_CODEC,
            TRADING_EVENTS_CODEC,
            ALERTS_EVENTS_CODEC,
        )
    }
)
"""Every topic with a schema, by name."""


def codec_for(topic: str, registry: Mapping[str, TopicCodec[Any]] = REGISTRY) -> TopicCodec[Any]:
    """The codec of ``topic``; a ``KeyError`` naming the topics known when it has none."""
    try:
        return registry[topic]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise KeyError(f"topic {topic!r} has no codec (topics with one: {known})") from None
