"""The gateway's wire format: requests from clients, messages to them (``docs/protocol.md``).

Every frame is a JSON text frame. Requests are validated here field by field, so that an error
can name the offending field; server messages are built as bytes, and everything shared by all
clients of a channel (a candle update, a tick batch) is encoded once, not once per client.
Decimals travel as exact strings, times as integers: candle open times in epoch milliseconds,
tick times in epoch nanoseconds; the candle and tick objects are :mod:`core.present.live`'s.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import msgspec

from core.gaps import FeedGap
from core.instruments import canonical_instrument
from core.present.live import NS_PER_MS, live_candle_json, live_tick_json

MAX_ID: Final = 2**53 - 1
"""Request ids are integers a JavaScript number holds exactly (or short strings)."""
MAX_ID_TEXT: Final = 64
MAX_DEPTH: Final = 8
"""The deepest arrays and objects may nest in a request (requests are flat objects: depth 1)."""

CANDLES: Final = "candles"
TICKS: Final = "ticks"
ORDERS: Final = "orders"
FILLS: Final = "fills"
POSITIONS: Final = "positions"
ALERTS: Final = "alerts"
TRADING_KINDS: Final = (ORDERS, FILLS, POSITIONS)
"""The trading account's private channels: its orders, fills and positions."""
PRIVATE_KINDS: Final = (*TRADING_KINDS, ALERTS)
"""The private channels: the connection's own account's orders, fills, positions and fired
alerts."""
CHANNEL_KINDS: Final = (CANDLES, TICKS, *PRIVATE_KINDS)


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``error`` message."""

    BAD_REQUEST = "bad_request"
    """Not JSON, not an object, an unknown op or channel, a field missing or of the wrong type."""
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    BAD_INTERVAL = "bad_interval"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    NOT_SUBSCRIBED = "not_subscribed"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    """A token refused (then the connection closes with 4401), or a channel the principal
    may not read."""
    FORBIDDEN = "forbidden"
    """Outside the principal's plan: an instrument it does not cover, ticks on a delayed plan."""
    TOO_MANY_CONNECTIONS = "too_many_connections"
    """The principal holds its plan's connections already (then the connection closes)."""
    UNAVAILABLE = "unavailable"
    """The gateway could not answer now (e.g. storage failed); retrying later may work."""
    NOT_ENTITLED = "not_entitled"
    """A private channel asked for by a principal without an account (or, for ``orders``,
    ``fills`` and ``positions``, without the ``trade`` scope)."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses beyond RFC 6455's own (1000, 1001, 1009...)."""

    SLOW_CONSUMER = 4008
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    RATE_LIMITED = 4429


class ChannelKey(NamedTuple):
    """One channel: ``("candles", instrument, interval)`` or ``("ticks", instrument, None)``;
    a private one ``("orders", "", None)`` (its account is the connection's)."""

    kind: str
    instrument: str
    interval: str | None = None

    @property
    def private(self) -> bool:
        return self.kind in PRIVATE_KINDS

    def describe(self) -> str:
        if self.private:
            return self.kind
        parts = [self.kind, self.instrument] + ([self.interval] if self.interval else [])
        return "/".join(parts)


RequestId = int | str | None


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: RequestId
    channel: ChannelKey
    snapshot: int | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: RequestId
    channel: ChannelKey


@dataclass(frozen=True, slots=True)
class Resume:
    """``seq``: the last sequence number the client saw on the channel; ``epoch``: the epoch
    its snapshot carried (None when the client did not send it)."""

    id: RequestId
    channel: ChannelKey
    seq: int
    epoch: str | None
    snapshot: int | None


@dataclass(frozen=True, slots=True)
class Ping:
    id: RequestId


@dataclass(frozen=True, slots=True)
class Auth:
    """The token of a connection opened without one (its first frame)."""

    id: RequestId
    token: str = field(repr=False)


Request = Subscribe | Unsubscribe | Resume | Ping | Auth
OPS: Final = ("subscribe", "unsubscribe", "resume", "ping", "auth")
MAX_TOKEN: Final = 4096
"""The longest token taken, in characters (an access token has about 700)."""


@dataclass(frozen=True, slots=True)
class RequestError(Exception):
    """A request refused: the error message to send back (the connection carries on)."""

    code: ErrorCode
    message: str
    field: str | None = None
    id: RequestId = None

    def __str__(self) -> str:
        return self.message

    def payload(self) -> bytes:
        return error(self.id, self.code, self.message, self.field)


# -- requests --------------------------------------------------------------------------------

_JSON_DECODER: Final = msgspec.json.Decoder()
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
"""A JSON string (or an unterminated one, to the end): brackets inside do not nest."""
_BRACKET: Final = re.compile(r"[][{}]")


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON ``text``, found without decoding it.

    A decoder recurses once per level, so a small frame of brackets could exhaust the
    stack; this scan is flat. It counts brackets outside strings; for text that is no JSON
    the figure means nothing, but then the decoder refuses it anyway.
    """
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(frame: str | bytes) -> dict[str, Any]:
    """The JSON object of a text frame; raises :class:`RequestError` when it is not one."""
    if isinstance(frame, bytes):
        raise RequestError(ErrorCode.BAD_REQUEST, "send requests as JSON text frames, not binary")
    if nesting_depth(frame) > MAX_DEPTH:
        raise RequestError(
            ErrorCode.BAD_REQUEST, f"JSON nested deeper than {MAX_DEPTH} levels: requests are flat"
        )
    try:
        value = _JSON_DECODER.decode(frame)
    except msgspec.DecodeError as exc:
        raise RequestError(ErrorCode.BAD_REQUEST, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "a request must be a JSON object")
    return value


def request_id(body: dict[str, Any]) -> RequestId:
    """The request's ``id`` when it is a usable one (errors echo it), else None."""
    value = body.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= MAX_ID:
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_TEXT:
        return value
    return None


def parse_request(body: dict[str, Any]) -> Request:
    """The request of a JSON object, checked field by field (not yet against any state)."""
    rid = _id(body)
    op = body.get("op")
    if op is None:
        raise RequestError(ErrorCode.BAD_REQUEST, "missing field `op`", "op", rid)
    if not isinstance(op, str) or op not in OPS:
        raise RequestError(
            ErrorCode.BAD_REQUEST, f"unknown op {op!r}: expected one of {', '.join(OPS)}", "op", rid
        )
    if op == "ping":
        return Ping(rid)
    if op == "auth":
        return Auth(rid, token_text(_text(body, "token", rid), rid))
    channel = _channel(body, rid)
    if op == "unsubscribe":
        return Unsubscribe(rid, channel)
    snapshot = _optional_int(body, "snapshot", rid)
    if op == "subscribe":
        return Subscribe(rid, channel, snapshot)
    seq = body.get("seq")
    if seq is None:
        raise RequestError(ErrorCode.BAD_REQUEST, "missing field `seq`", "seq", rid)
    if not _is_int(seq) or seq < 0:
        raise RequestError(
            ErrorCode.BAD_REQUEST, "`seq` must be a non-negative integer", "seq", rid
        )
    epoch = body.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise RequestError(ErrorCode.BAD_REQUEST, "`epoch` must be a string", "epoch", rid)
    return Resume(rid, channel, seq, epoch, snapshot)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id(body: dict[str, Any]) -> RequestId:
    if "id" not in body or body["id"] is None:
        return None
    rid = request_id(body)
    if rid is None:
        raise RequestError(
            ErrorCode.BAD_REQUEST,
            f"`id` must be an integer within 0..{MAX_ID} or a string of at most"
            f" {MAX_ID_TEXT} characters",
            "id",
        )
    return rid


def _optional_int(body: dict[str, Any], name: str, rid: RequestId) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise RequestError(
            ErrorCode.BAD_REQUEST, f"`{name}` must be a non-negative integer", name, rid
        )
    result: int = value
    return result


def _text(body: dict[str, Any], name: str, rid: RequestId) -> str:
    value = body.get(name)
    if value is None:
        raise RequestError(ErrorCode.BAD_REQUEST, f"missing field `{name}`", name, rid)
    if not isinstance(value, str):
        raise RequestError(ErrorCode.BAD_REQUEST, f"`{name}` must be a string", name, rid)
    return value


def token_text(token: str, rid: RequestId = None) -> str:
    """``token`` if it is a plausible token (not empty, at most :data:`MAX_TOKEN`
    characters); the signature is the authenticator's to check."""
    if not token or len(token) > MAX_TOKEN:
        raise RequestError(
            ErrorCode.BAD_REQUEST,
            f"`token` must have 1 to {MAX_TOKEN} characters",
            "token",
            rid,
        )
    return token


def _channel(body: dict[str, Any], rid: RequestId) -> ChannelKey:
    kind = _text(body, "channel", rid)
    if kind not in CHANNEL_KINDS:
        raise RequestError(
            ErrorCode.BAD_REQUEST,
            f"unknown channel {kind[:40]!r}: expected {', '.join(CHANNEL_KINDS)}",
            "channel",
            rid,
        )
    if kind in PRIVATE_KINDS:
        for name in ("instrument", "interval"):
            if name in body:
                raise RequestError(
                    ErrorCode.BAD_REQUEST,
                    f"the {kind} channel takes no `{name}`: it is the account's own",
                    name,
                    rid,
                )
        return ChannelKey(kind, "")
    instrument = canonical_instrument(_text(body, "instrument", rid))
    if kind == TICKS:
        return ChannelKey(TICKS, instrument)
    return ChannelKey(CANDLES, instrument, _text(body, "interval", rid))


# -- server messages --------------------------------------------------------------------------

_ENCODER: Final = msgspec.json.Encoder()


def _channel_fields(channel: ChannelKey) -> dict[str, Any]:
    if channel.private:
        return {"channel": channel.kind}
    fields: dict[str, Any] = {"channel": channel.kind, "instrument": channel.instrument}
    if channel.interval is not None:
        fields["interval"] = channel.interval
    return fields


def _encode(message: dict[str, Any]) -> bytes:
    return _ENCODER.encode(message)


def subscribed(rid: RequestId, channel: ChannelKey, epoch: str) -> bytes:
    return _encode({"type": "subscribed", "id": rid, **_channel_fields(channel), "epoch": epoch})


def private_subscribed(rid: RequestId, kind: str, account: int, epoch: str) -> bytes:
    """The answer to a subscribe (or resume) of a private channel."""
    return _encode(
        {"type": "subscribed", "id": rid, "channel": kind, "account": account, "epoch": epoch}
    )


def unsubscribed(rid: RequestId, channel: ChannelKey) -> bytes:
    return _encode({"type": "unsubscribed", "id": rid, **_channel_fields(channel)})


def pong(rid: RequestId) -> bytes:
    return _encode({"type": "pong", "id": rid})


def heartbeat(ts_ms: int) -> bytes:
    return _encode({"type": "heartbeat", "ts": ts_ms})


def error(
    rid: RequestId,
    code: ErrorCode,
    message: str,
    field: str | None = None,
    channel: ChannelKey | None = None,
) -> bytes:
    """An ``error`` message; ``channel``: the channel it concerns, when the error is the
    gateway's own doing rather than an answer (an entitlement change dropped it)."""
    fields = {} if channel is None else _channel_fields(channel)
    return _encode(
        {
            "type": "error",
            "id": rid,
            "code": code.value,
            "field": field,
            "message": message,
            **fields,
        }
    )


def authenticated(rid: RequestId, plan: str | None, delay_s: int, expires_s: int | None) -> bytes:
    """The answer to an ``auth`` frame: the plan, its delay (s) and the token's expiry."""
    return _encode(
        {"type": "authenticated", "id": rid, "plan": plan, "delay": delay_s, "expires": expires_s}
    )


def conflated(channel: ChannelKey, dropped: int) -> bytes:
    return _encode({"type": "conflated", **_channel_fields(channel), "dropped": dropped})


class ChannelFrames:
    """The bytes every message of one channel starts with, built once per channel."""

    def __init__(self, channel: ChannelKey, epoch: str) -> None:
        self.channel = channel
        fields = _encode(_channel_fields(channel))[1:-1]  # "channel":..,"instrument":..
        self._update = b'{"type":"' + (b"candle" if channel.kind == CANDLES else b"tick") + b'",'
        self._update += fields + b',"seq":'
        self._field = b',"candle":' if channel.kind == CANDLES else b',"ticks":'
        self._snapshot = b'{"type":"snapshot",' + fields + b',"epoch":' + _ENCODER.encode(epoch)
        self._snapshot += b',"seq":'

    def update(self, seq: int, body: bytes) -> bytes:
        """A ``candle`` message (``body``: a candle object) or ``tick`` one (a tick array)."""
        return b"".join((self._update, str(seq).encode(), self._field, body, b"}"))

    def snapshot(self, seq: int, reset: bool, items: list[bytes]) -> bytes:
        """A ``snapshot`` of candles or ticks (each item already encoded)."""
        field = b',"candles":[' if self.channel.kind == CANDLES else b',"ticks":['
        return b"".join(
            (
                self._snapshot,
                str(seq).encode(),
                b',"reset":',
                b"true" if reset else b"false",
                field,
                b",".join(items),
                b"]}",
            )
        )


_PRIVATE_MESSAGES: Final = {
    ORDERS: (b"order", b"event", b"orders"),
    FILLS: (b"fill", b"fill", b"fills"),
    POSITIONS: (b"position", b"position", b"positions"),
    ALERTS: (b"alert", b"alert", b"alerts"),
}
"""Per private channel: its update's ``type``, the field of its item, its snapshot's list."""


class PrivateFrames(ChannelFrames):
    """The bytes every message of one account's private channel starts with:
    ``{"type":"fill","channel":"fills","account":7,"seq":N,"fill":FILL}`` and its
    ``snapshot`` with a list of ``fills`` (``orders``, ``positions``, ``alerts``)."""

    def __init__(self, kind: str, account: int, epoch: str) -> None:
        self.channel = ChannelKey(kind, "")
        kind_type, item, listed = _PRIVATE_MESSAGES[kind]
        fields = _encode({"channel": kind, "account": account})[1:-1]
        self._update = b'{"type":"' + kind_type + b'",' + fields + b',"seq":'
        self._field = b',"' + item + b'":'
        self._list = b',"' + listed + b'":['
        self._snapshot = b'{"type":"snapshot",' + fields + b',"epoch":' + _ENCODER.encode(epoch)
        self._snapshot += b',"seq":'

    def snapshot(self, seq: int, reset: bool, items: list[bytes], extra: bytes = b"") -> bytes:
        """The ``snapshot``; ``extra``: more fields, each as ``,"name":value``."""
        return b"".join(
            (
                self._snapshot,
                str(seq).encode(),
                b',"reset":',
                b"true" if reset else b"false",
                extra,
                self._list,
                b",".join(items),
                b"]}",
            )
        )


candle_json: Final = live_candle_json
"""The protocol's CANDLE object of a candle (:func:`core.present.live.live_candle_json`)."""
tick_json: Final = live_tick_json
"""A tick batch's rows as the protocol's tick objects (:func:`core.present.live.live_tick_json`)."""


def gap_message(gap: FeedGap) -> bytes:
    """The ``gap`` message of a feed gap: its span in epoch ms, widened to whole milliseconds
    (start floored, end rounded up) so that it never covers less than the gap."""
    return _encode(
        {
            "type": "gap",
            "instrument": gap.instrument,
            "start": gap.start_ns // NS_PER_MS,
            "end": -(-gap.end_ns // NS_PER_MS),
            "reason": gap.reason.value,
            "detail": gap.detail,
        }
    )
