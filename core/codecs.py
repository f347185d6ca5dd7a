"""Wire codecs: tick batches, feed gaps, candles and rejects to and from the bus's bytes.

Every value is a MessagePack map (msgspec) whose first field ``v`` is its schema version. A
reader accepts exactly the versions it knows; adding an optional field keeps the version, any
other change bumps it. Tick batches travel as columns: each numpy column is one MessagePack
``bin`` of raw little-endian values, never one object per tick. ``md.ticks`` also carries feed
gaps, told apart by their ``kind`` field (a tick batch has none); a consumer of that topic
reads it with :func:`decode_ticks_message`.

Decoding never trusts its input: whatever is wrong (bytes that are not MessagePack, a missing
or unknown version, a column of the wrong length, a value the domain type refuses), the decoder
raises :class:`CodecError`, a ``ValueError`` that names the problem, and nothing else. A consumer
catches ``CodecError`` and sends the message to ``md.ticks.rejected`` with
:meth:`RejectedMessage.undecodable`. Keys and topics: ``docs/topics.md``.
"""

from __future__ import annotations

import enum
import functools
import re
from decimal import Decimal
from typing import Annotated, Any, Final, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from core.candles import Candle, CandleStatus
from core.gaps import FeedGap, GapReason
from core.instruments import validate_instrument
from core.intervals import Interval
from core.numbers import MAX_SCALE, parse_decimal
from core.rejects import RejectedTick
from core.text import clipped, printable
from core.ticks import Side, Tick, TickBatch

TICK_BATCH_VERSION: Final = 1
FEED_GAP_VERSION: Final = 1
CANDLE_VERSION: Final = 1
REJECTED_VERSION: Final = 1

MAX_REJECTED_PAYLOAD: Final = 64 * 1024
"""The most bytes of refused input that a reject carries (the rest is cut)."""
MAX_REJECTED_DETAIL: Final = 1024
"""The most characters of a reject's ``detail`` and ``origin`` (the rest is cut, and the text
says so): a reason quoting a 3 MB field still makes a reject that fits on the bus."""

TICK_ROW_BYTES: Final = 7 * 8 + 1
"""Wire bytes per tick in a tick batch (six int64 columns and the int8 side), before framing."""

FEED_GAP_KIND: Final = "gap"
"""The ``kind`` of a feed-gap message on ``md.ticks`` (tick batches carry no ``kind``)."""


class CodecError(ValueError):
    """A message that cannot be decoded; the text says what is wrong with it.

    ``reason`` is one of our own codes, stable whatever msgspec's version says in its detail:
    ``not_bytes``, ``malformed`` (not MessagePack: truncated, a bad byte, invalid UTF-8),
    ``too_deep`` (nested past what a decoder will follow), ``schema`` (MessagePack, but not
    this message's shape), ``version`` (a missing or unknown schema version), ``too_large``
    (past what a codec reads at all) and ``invalid`` (the shape is right, a value is not).
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


# -- keys -----------------------------------------------------------------------------------


def instrument_key(instrument: str) -> bytes:
    """The message key of ``md.ticks`` (and of rejects): the instrument id."""
    return instrument.encode()


def candle_key(candle: Candle) -> bytes:
    """The message key of ``md.candles``: ``INSTRUMENT|interval``, e.g. ``BINANCE:BTCUSDT|1m``."""
    return f"{candle.instrument}|{candle.interval.label}".encode()


# -- shared decoding ------------------------------------------------------------------------

_Message = TypeVar("_Message", bound=msgspec.Struct)
_ENCODER: Final = msgspec.msgpack.Encoder()


class _Versioned(msgspec.Struct):
    v: int | None = None


_DECODE_ERRORS: Final = (msgspec.DecodeError, ValueError, RecursionError)
"""What msgspec raises on bad input: invalid UTF-8 is a ValueError, deep nesting recursion."""


_PEEK: Final = msgspec.msgpack.Decoder(_Versioned)


def decode_versioned(
    decoder: msgspec.msgpack.Decoder[_Message],
    data: object,
    what: str,
    version: int,
    *,
    v_has_default: bool = False,
) -> _Message:
    """Decode ``data`` with ``decoder``, turning every failure into a :class:`CodecError`.

    The message must carry the schema version ``version`` in its field ``v``; ``what`` names
    the message in the error (``bad <what> message: ...``). Every versioned MessagePack codec
    of the platform decodes through here, so its reason codes are the same everywhere. For a
    type whose ``v`` has a default (so that code may build it without one), ``v_has_default``
    makes sure the bytes carry ``v`` themselves.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(
            f"bad {what} message: expected bytes, got {type(data).__name__}", "not_bytes"
        )
    try:
        message = decoder.decode(data)
    except _DECODE_ERRORS as exc:
        reason, text = _explain(data, exc, version)
        raise CodecError(f"bad {what} message: {text}", reason) from exc
    found: object = getattr(message, "v", None)
    if found != version:
        raise CodecError(f"bad {what} message: {_unknown(found, version)}", "version")
    if v_has_default and _PEEK.decode(data).v is None:
        raise CodecError(f"bad {what} message: no schema version field `v`", "version")
    return message


_FAILURES: Final = {
    "too_deep": "nested too deeply",
    "schema": "not the shape of this message",
    "malformed": "not valid MessagePack",
}


def _failure(exc: Exception) -> tuple[str, str]:
    """Our reason code for what msgspec raised, and its text with msgspec's detail after it."""
    if isinstance(exc, RecursionError):
        reason = "too_deep"
    elif isinstance(exc, msgspec.ValidationError):
        reason = "schema"
    else:
        reason = "malformed"
    detail = str(exc) or type(exc).__name__
    return reason, f"{_FAILURES[reason]} ({detail})"


def _explain(data: bytes | bytearray | memoryview, exc: Exception, version: int) -> tuple[str, str]:
    """The most useful reason: a foreign version beats a shape error it probably caused."""
    try:
        found = _PEEK.decode(data).v
    except _DECODE_ERRORS:
        return _failure(exc)
    if found is None:
        reason, text = _failure(exc)
        return "version" if reason == "schema" else reason, f"no schema version field `v`: {text}"
    if found != version:
        return "version", _unknown(found, version)
    return _failure(exc)


def _unknown(found: object, version: int) -> str:
    return f"unknown schema version {found!r} (this reader knows version {version})"


_DECIMAL_TEXT: Final = re.compile(r"-?[0-9]{1,4000}")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_Wide = int | str
"""An exact integer: MessagePack int when it fits 64 bits, else its decimal text."""


def _wide(value: int) -> _Wide:
    return value if _INT64_MIN <= value <= _INT64_MAX else str(value)


def _narrow(value: _Wide, field: str, what: str) -> int:
    if isinstance(value, int):
        return value
    if _DECIMAL_TEXT.fullmatch(value) is None:
        raise CodecError(f"bad {what} message: {field} is not an integer: {value[:40]!r}")
    return int(value)


# -- tick batches ---------------------------------------------------------------------------

_LE_I64: Final = np.dtype("<i8")
_LE_I8: Final = np.dtype("i1")
_I64_COLUMNS: Final = ("trade_id", "price", "size", "ts_event", "ts_recv", "trades")

_NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class _TickBatchV1(msgspec.Struct, omit_defaults=True):
    v: int
    instrument: str
    price_scale: int
    size_scale: int
    rows: _NonNegative
    trade_id: bytes
    price: bytes
    size: bytes
    side: bytes
    ts_event: bytes
    ts_recv: bytes
    trades: bytes
    kind: object = None  # absent in a tick batch; present, the message is of another kind


_TICK_BATCH_DECODER: Final = msgspec.msgpack.Decoder(_TickBatchV1)


def _raw(column: npt.NDArray[np.generic], dtype: np.dtype[np.generic]) -> bytes:
    return column.astype(dtype, copy=False).tobytes()


def encode_tick_batch(batch: TickBatch) -> bytes:
    """A ``md.ticks`` value: the batch's columns as raw little-endian bytes."""
    return _ENCODER.encode(
        _TickBatchV1(
            v=TICK_BATCH_VERSION,
            instrument=batch.instrument,
            price_scale=batch.price_scale,
            size_scale=batch.size_scale,
            rows=len(batch),
            trade_id=_raw(batch.trade_id, _LE_I64),
            price=_raw(batch.price, _LE_I64),
            size=_raw(batch.size, _LE_I64),
            side=_raw(batch.side, _LE_I8),
            ts_event=_raw(batch.ts_event, _LE_I64),
            ts_recv=_raw(batch.ts_recv, _LE_I64),
            trades=_raw(batch.trades, _LE_I64),
        )
    )


def _column(message: _TickBatchV1, name: str, dtype: np.dtype[np.generic]) -> npt.NDArray[Any]:
    raw: bytes = getattr(message, name)
    wanted = message.rows * dtype.itemsize
    if len(raw) != wanted:
        raise CodecError(
            f"bad tick batch message: column {name} has {len(raw)} bytes,"
            f" but {message.rows} rows of {dtype.name} need {wanted}"
        )
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="), copy=False)


def decode_tick_batch(data: bytes) -> TickBatch:
    """The batch of a ``md.ticks`` value; raises :class:`CodecError` naming what is wrong.

    A feed gap is refused too (the error says so): a consumer that may meet one reads the
    topic with :func:`decode_ticks_message`. The columns are read-only views of the decoded
    bytes (no copy).
    """
    message = _decode_batch_or_kind(data, "tick batch")
    if isinstance(message, str):
        if message == FEED_GAP_KIND:
            raise CodecError(
                "bad tick batch message: got a feed gap (kind 'gap'); read md.ticks with"
                " decode_ticks_message"
            )
        raise CodecError(f"bad tick batch message: {_unknown_kind(message)}")
    return _batch_of(message)


def decode_ticks_message(data: bytes) -> TickBatch | FeedGap:
    """A ``md.ticks`` value: a tick batch (no ``kind``) or a feed gap (``kind`` ``gap``).

    Raises :class:`CodecError` naming what is wrong, as :func:`decode_tick_batch` does; a
    tick batch costs exactly one decode, as there.
    """
    message = _decode_batch_or_kind(data, "md.ticks")
    if isinstance(message, str):
        if message == FEED_GAP_KIND:
            return _decode_feed_gap(data)
        raise CodecError(f"bad md.ticks message: {_unknown_kind(message)}")
    return _batch_of(message)


class _Kind(msgspec.Struct):
    kind: object = None


_KIND: Final = msgspec.msgpack.Decoder(_Kind)


def _kind_of(data: bytes | bytearray | memoryview) -> object:
    """The ``kind`` field of a MessagePack map, or ``None`` when it has none or is no map."""
    try:
        return _KIND.decode(data).kind
    except _DECODE_ERRORS:
        return None


def _unknown_kind(kind: str) -> str:
    return f"unknown kind {kind[:40]!r} (this reader knows {FEED_GAP_KIND!r} and tick batches)"


def _decode_batch_or_kind(data: bytes, what: str) -> _TickBatchV1 | str:
    """The tick-batch envelope, or the ``kind`` of a message that is something else.

    The tick batch is decoded first and the ``kind`` looked at only when that fails or finds
    one, so the common message pays for one decode.
    """
    try:
        message = decode_versioned(_TICK_BATCH_DECODER, data, "tick batch", TICK_BATCH_VERSION)
    except CodecError:
        kind = _kind_of(data) if isinstance(data, bytes | bytearray | memoryview) else None
        if kind is None:
            raise
    else:
        if message.kind is None:
            return message
        kind = message.kind
    if not isinstance(kind, str):
        raise CodecError(f"bad {what} message: kind must be a string, got {kind!r:.40}")
    return kind


def _batch_of(message: _TickBatchV1) -> TickBatch:
    i64 = [_column(message, name, _LE_I64) for name in _I64_COLUMNS]
    side = _column(message, "side", _LE_I8)
    trade_id, price, size, ts_event, ts_recv, trades = i64
    try:
        return TickBatch(
            message.instrument,
            message.price_scale,
            message.size_scale,
            trade_id,
            price,
            size,
            side,
            ts_event,
            ts_recv,
            trades,
        )
    except ValueError as exc:
        raise CodecError(f"bad tick batch message: {exc}") from exc


# -- feed gaps ------------------------------------------------------------------------------


class _FeedGapV1(msgspec.Struct):
    v: int
    kind: str
    instrument: str
    start_ns: int
    end_ns: int
    reason: GapReason
    detail: str = ""
    ts_recv: int = 0


_FEED_GAP_DECODER: Final = msgspec.msgpack.Decoder(_FeedGapV1)


def encode_feed_gap(gap: FeedGap) -> bytes:
    """A ``md.ticks`` value marking a span the feed may have missed (key: the instrument)."""
    return _ENCODER.encode(
        _FeedGapV1(
            v=FEED_GAP_VERSION,
            kind=FEED_GAP_KIND,
            instrument=gap.instrument,
            start_ns=gap.start_ns,
            end_ns=gap.end_ns,
            reason=gap.reason,
            detail=gap.detail,
            ts_recv=gap.ts_recv,
        )
    )


def _decode_feed_gap(data: bytes) -> FeedGap:
    m = decode_versioned(_FEED_GAP_DECODER, data, "feed gap", FEED_GAP_VERSION)
    try:
        return FeedGap(
            instrument=m.instrument,
            start_ns=m.start_ns,
            end_ns=m.end_ns,
            reason=m.reason,
            detail=m.detail,
            ts_recv=m.ts_recv,
        )
    except ValueError as exc:
        raise CodecError(f"bad feed gap message: {exc}") from exc


# -- candles --------------------------------------------------------------------------------


class _CandleV1(msgspec.Struct, omit_defaults=True):
    v: int
    instrument: str
    interval: str
    open_time: int
    price_scale: int
    size_scale: int
    open: _Wide
    high: _Wide
    low: _Wide
    close: _Wide
    volume: _Wide
    quote_volume: _Wide
    taker_buy_volume: _Wide
    trades: _Wide
    first_trade_id: int | None
    last_trade_id: int | None
    revision: int
    status: CandleStatus
    gap: bool = False  # optional: written only when true; older messages lack it


_CANDLE_DECODER: Final = msgspec.msgpack.Decoder(_CandleV1)


def encode_candle(candle: Candle) -> bytes:
    """A ``md.candles`` value: the candle's exact integers (decimal text past 64 bits)."""
    return _ENCODER.encode(
        _CandleV1(
            v=CANDLE_VERSION,
            instrument=candle.instrument,
            interval=candle.interval.label,
            open_time=candle.open_time,
            price_scale=candle.price_scale,
            size_scale=candle.size_scale,
            open=_wide(candle.open_raw),
            high=_wide(candle.high_raw),
            low=_wide(candle.low_raw),
            close=_wide(candle.close_raw),
            volume=_wide(candle.volume_raw),
            quote_volume=_wide(candle.quote_volume_raw),
            taker_buy_volume=_wide(candle.taker_buy_volume_raw),
            trades=_wide(candle.trades),
            first_trade_id=candle.first_trade_id,
            last_trade_id=candle.last_trade_id,
            revision=candle.revision,
            status=candle.status,
            gap=candle.gap,
        )
    )


@functools.lru_cache(maxsize=256)
def _interval(label: str) -> Interval:
    try:
        interval = Interval.parse(label)
    except ValueError as exc:
        raise CodecError(f"bad candle message: {exc}") from exc
    if interval.label != label:
        raise CodecError(
            f"bad candle message: interval {label!r} is not canonical (use {interval})"
        )
    return interval


def decode_candle(data: bytes) -> Candle:
    """The candle of a ``md.candles`` value; raises :class:`CodecError` naming what is wrong."""
    m = decode_versioned(_CANDLE_DECODER, data, "candle", CANDLE_VERSION)
    what = "candle"
    interval = _interval(m.interval)
    try:
        return Candle(
            instrument=_instrument(m.instrument, what),
            interval=interval,
            open_time=m.open_time,
            price_scale=_scale(m.price_scale, "price_scale", what),
            size_scale=_scale(m.size_scale, "size_scale", what),
            open_raw=_narrow(m.open, "open", what),
            high_raw=_narrow(m.high, "high", what),
            low_raw=_narrow(m.low, "low", what),
            close_raw=_narrow(m.close, "close", what),
            volume_raw=_narrow(m.volume, "volume", what),
            quote_volume_raw=_narrow(m.quote_volume, "quote_volume", what),
            taker_buy_volume_raw=_narrow(m.taker_buy_volume, "taker_buy_volume", what),
            trades=_narrow(m.trades, "trades", what),
            first_trade_id=m.first_trade_id,
            last_trade_id=m.last_trade_id,
            revision=m.revision,
            status=m.status,
            gap=m.gap,
        )
    except CodecError:
        raise
    except ValueError as exc:
        raise CodecError(f"bad candle message: {exc}") from exc


@functools.lru_cache(maxsize=16384)
def _instrument(instrument: str, what: str) -> str:
    try:
        return validate_instrument(instrument)
    except ValueError as exc:
        raise CodecError(f"bad {what} message: {exc}") from exc


def _scale(scale: int, field: str, what: str) -> int:
    if not 0 <= scale <= MAX_SCALE:
        raise CodecError(f"bad {what} message: {field} must be within 0..{MAX_SCALE}, got {scale}")
    return scale


# -- rejects --------------------------------------------------------------------------------


class RejectCode(enum.StrEnum):
    """The reason codes the platform uses; a :class:`RejectedMessage` may carry newer ones."""

    LATE_BEYOND_HORIZON = "late_beyond_horizon"
    """The candle engine: a tick older than the lateness horizon."""
    BAD_ROW = "bad_row"
    """Ingest: a tick-file row that failed validation."""
    BAD_VENUE_MESSAGE = "bad_venue_message"
    """Ingest: a live venue message that failed validation."""
    UNDECODABLE = "undecodable"
    """A bus message its codec refused (the raw bytes travel in ``payload``)."""


_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


class RejectedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """Anything refused on its way in, with why: the value of ``md.ticks.rejected``.

    - ``reason``: a snake_case code (see :class:`RejectCode`); ``detail``: for people.
    - ``source``: who refused it (``engine``, ``ingest``, a consumer group name...).
    - ``instrument`` and ``trade_id`` when known, the ``tick`` when there was a valid one.
    - ``payload``: the offending bytes when the input could not be read (file row, venue
      message, undecodable bus message); ``origin`` where they came from (``x.csv:17``,
      ``md.ticks/3/1234`` for topic/partition/offset).

    Whoever builds one (or decodes one), the outside input it quotes is made safe here: in
    ``detail`` and ``origin`` control characters are escaped (``\\x00``: PostgreSQL refuses
    NUL in text) and the text is cut to :data:`MAX_REJECTED_DETAIL` characters; ``payload`` is
    cut to :data:`MAX_REJECTED_PAYLOAD` bytes, and the detail says so. A reject therefore
    always fits on the bus (a record holds 1 MiB), and the storage writer can always store it.
    """

    reason: str
    detail: str
    source: str
    instrument: str | None = None
    trade_id: int | None = None
    tick: Tick | None = None
    payload: bytes | None = None
    origin: str | None = None

    def __post_init__(self) -> None:
        if _CODE.fullmatch(self.reason) is None:
            raise ValueError(f"reason must be a snake_case code, got {self.reason!r}")
        if self.tick is not None and (
            self.instrument != self.tick.instrument or self.trade_id != self.tick.trade_id
        ):
            raise ValueError("instrument and trade_id must be the tick's")
        payload, note = self.payload, ""
        if payload is not None and len(payload) > MAX_REJECTED_PAYLOAD:
            note = f" (payload cut from {len(payload)} to {MAX_REJECTED_PAYLOAD} bytes)"
            msgspec.structs.force_setattr(self, "payload", bytes(payload[:MAX_REJECTED_PAYLOAD]))
        detail = clipped(printable(self.detail), MAX_REJECTED_DETAIL - len(note)) + note
        msgspec.structs.force_setattr(self, "detail", detail)
        if self.origin is not None:
            origin = clipped(printable(self.origin), MAX_REJECTED_DETAIL)
            msgspec.structs.force_setattr(self, "origin", origin)

    @classmethod
    def of_tick(cls, tick: Tick, reason: str, detail: str, source: str) -> RejectedMessage:
        """A valid tick refused (e.g. by the engine)."""
        return cls(
            reason=reason,
            detail=detail,
            source=source,
            instrument=tick.instrument,
            trade_id=tick.trade_id,
            tick=tick,
        )

    @classmethod
    def of_rejected_tick(cls, rejected: RejectedTick, source: str = "engine") -> RejectedMessage:
        """The engine's :class:`~core.rejects.RejectedTick` as a message."""
        return cls.of_tick(rejected.tick, rejected.reason.value, rejected.detail, source)

    @classmethod
    def undecodable(
        cls, payload: bytes, error: Exception, source: str, origin: str | None = None
    ) -> RejectedMessage:
        """A message that could not be decoded (its payload cut as any reject's is)."""
        return cls(
            reason=RejectCode.UNDECODABLE.value,
            detail=str(error) or type(error).__name__,
            source=source,
            payload=bytes(payload),
            origin=origin,
        )

    @property
    def key(self) -> bytes:
        """The message key on ``md.ticks.rejected``: the instrument, or empty when unknown."""
        return b"" if self.instrument is None else instrument_key(self.instrument)


class _TickV1(msgspec.Struct, array_like=True):
    instrument: str
    trade_id: int
    price: str
    size: str
    side: int
    ts_event: int
    ts_recv: int
    trades: int


class _RejectedV1(msgspec.Struct, omit_defaults=True):
    v: int
    reason: str
    detail: str
    source: str
    instrument: str | None = None
    trade_id: int | None = None
    tick: _TickV1 | None = None
    payload: bytes | None = None
    origin: str | None = None


_REJECTED_DECODER: Final = msgspec.msgpack.Decoder(_RejectedV1)


def encode_rejected(message: RejectedMessage) -> bytes:
    """A ``md.ticks.rejected`` value (key: :attr:`RejectedMessage.key`)."""
    tick = message.tick
    return _ENCODER.encode(
        _RejectedV1(
            v=REJECTED_VERSION,
            reason=message.reason,
            detail=message.detail,
            source=message.source,
            instrument=message.instrument,
            trade_id=message.trade_id,
            tick=None
            if tick is None
            else _TickV1(
                tick.instrument,
                tick.trade_id,
                str(tick.price),
                str(tick.size),
                int(tick.side),
                tick.ts_event,
                tick.ts_recv,
                tick.trades,
            ),
            payload=message.payload,
            origin=message.origin,
        )
    )


def decode_rejected(data: bytes) -> RejectedMessage:
    """The reject of a ``md.ticks.rejected`` value; raises :class:`CodecError` when malformed."""
    m = decode_versioned(_REJECTED_DECODER, data, "rejected", REJECTED_VERSION)
    try:
        tick = None if m.tick is None else _tick(m.tick)
        return RejectedMessage(
            reason=m.reason,
            detail=m.detail,
            source=m.source,
            instrument=m.instrument,
            trade_id=m.trade_id,
            tick=tick,
            payload=m.payload,
            origin=m.origin,
        )
    except ValueError as exc:
        raise CodecError(f"bad rejected message: {exc}") from exc


def _tick(wire: _TickV1) -> Tick:
    return Tick(
        instrument=wire.instrument,
        trade_id=wire.trade_id,
        price=_decimal(wire.price, "price"),
        size=_decimal(wire.size, "size"),
        side=Side(wire.side),
        ts_event=wire.ts_event,
        ts_recv=wire.ts_recv,
        trades=wire.trades,
    )


def _decimal(text: str, field: str) -> Decimal:
    try:
        return parse_decimal(text)
    except ValueError as exc:
        raise ValueError(f"tick {field}: {exc}") from exc
