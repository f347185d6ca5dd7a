"""How events become stored bytes and back: msgspec only, never pickle.

A stored event is a *topic* (the event type's name, kept in its own column so that readers can
filter on it) and *state* (the event's msgspec bytes). :class:`EventCodec` is what the store
needs; :class:`StructCodec` serves any union of tagged ``msgspec.Struct`` types (the topic is
the struct's tag), and the domain's own ``encode_event``/``decode_event`` can stand behind the
same protocol.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import msgspec

from trading.store.errors import UndecodableEventError

E = TypeVar("E")
S = TypeVar("S")


class EventCodec(Protocol[E]):
    """Topic and bytes of an event, and the event of a topic and bytes."""

    def topic(self, event: E) -> str: ...

    def encode(self, event: E) -> bytes: ...

    def decode(self, topic: str, data: bytes) -> E:
        """The event; :class:`UndecodableEventError` when ``data`` is not one of ``topic``."""
        ...


def struct_tag(cls: type[msgspec.Struct]) -> str:
    """The tag of a tagged struct type (its ``kind``): what names it on the wire."""
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} needs a string tag (msgspec tag=...)")
    return tag


class StructCodec(Generic[E]):
    """Tagged msgspec structs as MessagePack; the topic is the tag.

    ``union`` is the event type (a tagged struct or a union of them).
    """

    def __init__(self, union: Any) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[E] = msgspec.msgpack.Decoder(union)

    def topic(self, event: E) -> str:
        return struct_tag(type(event))  # type: ignore[arg-type]

    def encode(self, event: E) -> bytes:
        return self._encoder.encode(event)

    def decode(self, topic: str, data: bytes) -> E:
        try:
            event = self._decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise UndecodableEventError(f"a {topic!r} record does not decode: {exc}") from None
        if self.topic(event) != topic:
            raise UndecodableEventError(f"a {topic!r} record holds a {self.topic(event)!r} event")
        return event


class StateCodec(Generic[S]):
    """An aggregate's state as MessagePack, for snapshots (any type msgspec can encode)."""

    def __init__(self, state_type: type[S], topic: str) -> None:
        self.topic = topic
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[S] = msgspec.msgpack.Decoder(state_type)

    def encode(self, state: S) -> bytes:
        return self._encoder.encode(state)

    def decode(self, topic: str, data: bytes) -> S:
        if topic != self.topic:
            raise UndecodableEventError(f"a snapshot of {topic!r} is not a {self.topic!r} snapshot")
        try:
            return self._decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise UndecodableEventError(f"a {topic!r} snapshot does not decode: {exc}") from None
