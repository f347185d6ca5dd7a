"""What the trading service publishes on ``trading.events`` (:data:`core.topics.TRADING_EVENTS`).

Every change of an order or an account is one event, named in the past tense after Nautilus
Trader's: the order events (``order-submitted`` ... ``order-expired``) and the account events
(``funds-deposited``, ``funds-reserved``, ``funds-released``, ``kill-switch-set``). The event
store keeps them in this encoding, the read models and the audit endpoint fold them, and the
gateway's private channels and the bot SDK decode them; ``docs/trading.md`` ("Event
catalogue") says what each one means.

An event is one MessagePack map: its ``kind`` (the tag), its schema version ``v`` and its
fields. Amounts are exact decimals (decimal text, never a float), times UTC nanoseconds. On
the topic each event travels in a :class:`TradingRecord`: its notification id (its position in
the event store's whole log), its aggregate and version there, and the event itself embedded
as a tagged map. The key is the account id, so one account's events keep their order on one
partition, and a consumer drops a repeat by its notification id (:class:`Deduplicator`).
:func:`decode_record` and :func:`decode_event` trust nothing: whatever is wrong, they raise
:class:`~core.codecs.CodecError` with one of our reason codes.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated, Final

import msgspec

from core.codecs import CodecError, decode_versioned
from core.instruments import INSTRUMENT_PATTERN
from core.numbers import MAX_SCALE, scale_of

VERSION: Final = 1

MAX_EVENT_BYTES: Final = 16 * 1024
"""An event is small; a larger record is refused before it is parsed."""

MAX_RECORD_BYTES: Final = MAX_EVENT_BYTES + 1024
"""A record is an event and a few fields about where it is stored."""

MAX_AMOUNT_SCALE: Final = 2 * MAX_SCALE
"""The most decimal places of an amount on the wire (a price times a size needs 36)."""

MAX_AMOUNT_DIGITS: Final = 30
"""The most digits of an amount before its decimal point."""


class OrderSide(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop-market"


class TimeInForce(enum.StrEnum):
    GTC = "gtc"
    """Good till canceled: rests until filled, canceled or expired."""
    IOC = "ioc"
    """Immediate or cancel: what does not fill at once is canceled."""
    FOK = "fok"
    """Fill or kill: fills whole at once, or not at all."""


class OrderStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    DENIED = "denied"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRIGGERED = "triggered"
    PARTIALLY_FILLED = "partially-filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"


class Liquidity(enum.StrEnum):
    MAKER = "maker"
    TAKER = "taker"


ID_PATTERN: Final = r"[A-Za-z0-9._:-]{1,64}"
"""What a client order id looks like (and an order id a client may send)."""

AccountId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Nanos = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ClientOrderId = Annotated[str, msgspec.Meta(pattern=f"^{ID_PATTERN}$")]
Instrument = Annotated[str, msgspec.Meta(pattern=f"^{INSTRUMENT_PATTERN}$")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{1,16}$")]
Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
Text = Annotated[str, msgspec.Meta(max_length=1000)]
TradeId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    account: AccountId
    ts: Nanos
    v: int = VERSION


class _OrderEvent(_Event, frozen=True, kw_only=True):
    order_id: Identifier


class OrderSubmitted(_OrderEvent, frozen=True, kw_only=True, tag="order-submitted"):
    """The service took a valid order request (before the risk check)."""

    client_order_id: ClientOrderId
    instrument: Instrument
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce


class OrderDenied(_OrderEvent, frozen=True, kw_only=True, tag="order-denied"):
    """The pre-trade risk check refused the order (``reason_code``: a risk code)."""

    reason_code: Code
    field: Identifier | None
    message: Text


class OrderAccepted(_OrderEvent, frozen=True, kw_only=True, tag="order-accepted"):
    venue_order_id: Identifier


class OrderRejected(_OrderEvent, frozen=True, kw_only=True, tag="order-rejected"):
    """The venue refused the order."""

    reason_code: Code
    message: Text


class OrderTriggered(_OrderEvent, frozen=True, kw_only=True, tag="order-triggered"):
    """A stop-market order's stop price traded: it is a market order from now on.
    ``trade_id`` is the tick whose trade triggered it (``None`` in streams stored before it
    was kept)."""

    trade_id: TradeId | None = None


class OrderUpdated(_OrderEvent, frozen=True, kw_only=True, tag="order-updated"):
    """An amend took effect: the order's quantity and prices are these now."""

    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None


class OrderFilled(_OrderEvent, frozen=True, kw_only=True, tag="order-filled"):
    """One fill: ``quantity`` at ``price``; ``fee`` in ``fee_currency``; ``trade_id`` is the
    tick whose trade filled it."""

    fill_id: Identifier
    instrument: Instrument
    side: OrderSide
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_currency: Currency
    liquidity: Liquidity
    trade_id: TradeId


class OrderCanceled(_OrderEvent, frozen=True, kw_only=True, tag="order-canceled"):
    reason: Text


class OrderExpired(_OrderEvent, frozen=True, kw_only=True, tag="order-expired"):
    pass


class FundsDeposited(_Event, frozen=True, kw_only=True, tag="funds-deposited"):
    currency: Currency
    amount: Decimal


class FundsReserved(_Event, frozen=True, kw_only=True, tag="funds-reserved"):
    """``amount`` of ``currency`` set aside for the order ``order_id``."""

    order_id: Identifier
    currency: Currency
    amount: Decimal


class FundsReleased(_Event, frozen=True, kw_only=True, tag="funds-released"):
    """``amount`` of the order's reservation is free again."""

    order_id: Identifier
    currency: Currency
    amount: Decimal


class KillSwitchSet(_Event, frozen=True, kw_only=True, tag="kill-switch-set"):
    """The account's kill switch was turned on (block new orders) or off."""

    on: bool


OrderEvent = (
    OrderSubmitted
    | OrderDenied
    | OrderAccepted
    | OrderRejected
    | OrderTriggered
    | OrderUpdated
    | OrderFilled
    | OrderCanceled
    | OrderExpired
)
AccountEvent = FundsDeposited | FundsReserved | FundsReleased | KillSwitchSet
TradingEvent = OrderEvent | AccountEvent

ORDER_EVENTS: Final[tuple[type[OrderEvent], ...]] = (
    OrderSubmitted,
    OrderDenied,
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    OrderUpdated,
    OrderFilled,
    OrderCanceled,
    OrderExpired,
)
ACCOUNT_EVENTS: Final[tuple[type[AccountEvent], ...]] = (
    FundsDeposited,
    FundsReserved,
    FundsReleased,
    KillSwitchSet,
)


def kind_of(event: TradingEvent | type[TradingEvent]) -> str:
    """The ``kind`` tag of an event (or event type), e.g. ``order-accepted``."""
    tag = event.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


_ZERO: Final = Decimal(0)
_NON_NEGATIVE: Final = frozenset({"fee"})
"""Amount fields that may be zero; every other one must be positive."""

AggregateId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Positive = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class TradingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event as ``trading.events`` carries it (what the outbox publishes).

    ``notification_id`` is the event's position in the store's whole log: the outbox publishes
    in that order, so on one key the ids only rise and a repeat (delivery is at least once)
    carries an id already seen. ``aggregate_id`` and ``version`` say where the event is stored
    (``account:42`` version 7: the trading service keeps an account and its orders in one
    stream).
    """

    notification_id: Positive
    aggregate_id: AggregateId
    version: Positive
    event: TradingEvent
    v: int = VERSION


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(TradingEvent)
_record_decoder: Final = msgspec.msgpack.Decoder(TradingRecord)


class _VersionPeek(msgspec.Struct):
    v: object = None


class _RecordPeek(msgspec.Struct):
    event: _VersionPeek


_peek_record: Final = msgspec.msgpack.Decoder(_RecordPeek)


def encode_event(event: TradingEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> TradingEvent:
    """The event in ``data``; :class:`~core.codecs.CodecError` naming what is wrong when it is
    not one (reason ``too_large`` past :data:`MAX_EVENT_BYTES`, ``invalid`` for an amount
    that is not a positive exact decimal of bounded size, else those of
    :func:`~core.codecs.decode_versioned`)."""
    _check_size(data, MAX_EVENT_BYTES, "trading event")
    event = decode_versioned(_decoder, data, "trading event", VERSION, v_has_default=True)
    _check_amounts(event, "trading event")
    return event


def encode_record(record: TradingRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> TradingRecord:
    """The record in ``data``, its event checked as :func:`decode_event` checks one (reason
    ``too_large`` past :data:`MAX_RECORD_BYTES`); :class:`~core.codecs.CodecError` otherwise.
    The record and its event each carry the schema version ``v``."""
    _check_size(data, MAX_RECORD_BYTES, "trading record")
    record = decode_versioned(_record_decoder, data, "trading record", VERSION, v_has_default=True)
    found = record.event.v if _peek_record.decode(data).event.v is not None else None
    if found != VERSION:
        what = "no schema version field `v`" if found is None else f"unknown schema version {found}"
        raise CodecError(
            f"bad trading record message: event has {what} (this reader knows version {VERSION})",
            "version",
        )
    _check_amounts(record.event, "trading record")
    return record


def record_key(record: TradingRecord) -> bytes:
    """The message key on ``trading.events``: the event's account id in decimal."""
    return event_key(record.event)


def _check_size(data: object, limit: int, what: str) -> None:
    if isinstance(data, bytes | bytearray | memoryview) and len(data) > limit:
        raise CodecError(f"bad {what} message: larger than {limit} bytes", "too_large")


def _check_amounts(event: TradingEvent, what: str) -> None:
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if isinstance(value, Decimal):
            lowest = _ZERO if name in _NON_NEGATIVE else None
            problem = amount_problem(value, lowest)
            if problem is not None:
                raise CodecError(f"bad {what} message: {name} {problem}")


def amount_problem(value: Decimal, lowest: Decimal | None = None) -> str | None:
    """Why ``value`` is no amount of an event (``None`` when it is one): it must be finite,
    have at most :data:`MAX_AMOUNT_SCALE` decimal places and :data:`MAX_AMOUNT_DIGITS`
    digits before the point, and be positive (or at least ``lowest`` when given)."""
    if not value.is_finite():
        return f"must be a finite number, got {value}"
    if lowest is None and value <= _ZERO:
        return f"must be positive, got {value}"
    if lowest is not None and value < lowest:
        return f"must be at least {lowest}, got {value}"
    if value and value.adjusted() >= MAX_AMOUNT_DIGITS:
        return f"must be below 10**{MAX_AMOUNT_DIGITS}, got {value}"
    if scale_of(value) > MAX_AMOUNT_SCALE:
        return f"must have at most {MAX_AMOUNT_SCALE} decimal places, got {value}"
    return None


def event_key(event: TradingEvent) -> bytes:
    """The message key on ``trading.events``: the account id in decimal."""
    return str(event.account).encode()


class Deduplicator:
    """A consumer's filter of ``trading.events``: a record whose notification id it has seen
    on its key is a repeat.

    The outbox publishes in notification order and keys by account, so on one key the ids
    only rise: remembering the highest per key is enough (one integer per account seen).
    """

    def __init__(self) -> None:
        self._highest: dict[bytes, int] = {}

    def is_new(self, record: TradingRecord) -> bool:
        key = record_key(record)
        if record.notification_id <= self._highest.get(key, 0):
            return False
        self._highest[key] = record.notification_id
        return True
