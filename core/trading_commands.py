"""What internal producers send the trading service on ``trading.commands``
(:data:`core.topics.TRADING_COMMANDS`).

A command is in the imperative (``place-order``, ``cancel-order``, ``amend-order``,
``deposit``, ``set-kill-switch``): one MessagePack map tagged by ``kind``, with its schema
version ``v`` and the ``account`` it acts on, which is also the record's key, so one account's
commands keep their order on one partition. A place carries every field of the REST order body
(``client_order_id`` required: the service keeps one order per client order id, so a command
delivered twice makes one order); a cancel or an amend names its order by ``order_id`` or by
the ``client_order_id`` it was placed with (exactly one of them).

This module checks the wire shape only: types, sizes, ids, and that every amount is an exact
decimal written as text or an integer (never a float) of bounded size. The rules of an order
(the price a type needs, the largest quantity, the places of a price) are the domain's
(``trading.domain.orders``), checked once when the trading service builds its request, as for
the REST body. :func:`decode_command` trusts nothing: whatever is wrong, it raises
:class:`~core.codecs.CodecError` with one of our reason codes. ``docs/trading.md``
("Commands on trading.commands") and ``docs/topics.md`` describe the shapes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import msgspec

from core.codecs import CodecError, decode_versioned
from core.trading_events import (
    AccountId,
    ClientOrderId,
    Currency,
    Identifier,
    Instrument,
    OrderSide,
    OrderType,
    TimeInForce,
    amount_problem,
)

VERSION: Final = 1

MAX_COMMAND_BYTES: Final = 4 * 1024
"""A command is a few short fields; a larger value is refused before it is parsed."""


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    account: AccountId
    v: int = VERSION


class PlaceOrder(_Command, frozen=True, kw_only=True, tag="place-order"):
    """Place an order: the fields of the REST order body, in ``account``."""

    client_order_id: ClientOrderId
    instrument: Instrument
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC


class CancelOrder(_Command, frozen=True, kw_only=True, tag="cancel-order"):
    """Cancel the order ``order_id``, or the one placed with ``client_order_id``."""

    order_id: Identifier | None = None
    client_order_id: ClientOrderId | None = None


class AmendOrder(_Command, frozen=True, kw_only=True, tag="amend-order"):
    """Change an open order's quantity, price or stop price (what is ``None`` stays)."""

    order_id: Identifier | None = None
    client_order_id: ClientOrderId | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None


class Deposit(_Command, frozen=True, kw_only=True, tag="deposit"):
    """Paper funding: ``amount`` of ``currency`` comes into the account."""

    currency: Currency
    amount: Decimal


class SetKillSwitch(_Command, frozen=True, kw_only=True, tag="set-kill-switch"):
    """Turn the account's kill switch on (cancel its open orders, deny new ones) or off."""

    on: bool


TradingCommand = PlaceOrder | CancelOrder | AmendOrder | Deposit | SetKillSwitch

COMMANDS: Final[tuple[type[TradingCommand], ...]] = (
    PlaceOrder,
    CancelOrder,
    AmendOrder,
    Deposit,
    SetKillSwitch,
)


def kind_of(command: TradingCommand | type[TradingCommand]) -> str:
    """The ``kind`` tag of a command (or command type), e.g. ``place-order``."""
    tag = command.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


class _Amounts(msgspec.Struct):
    """The amount fields as they are on the wire, to refuse a float before it is a decimal."""

    quantity: object = None
    price: object = None
    stop_price: object = None
    amount: object = None


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(TradingCommand)
_amounts: Final = msgspec.msgpack.Decoder(_Amounts)
_WHAT: Final = "trading command"


def encode_command(command: TradingCommand) -> bytes:
    return _encoder.encode(command)


def decode_command(data: bytes) -> TradingCommand:
    """The command in ``data``; :class:`~core.codecs.CodecError` naming what is wrong when it
    is not one: ``too_large`` past :data:`MAX_COMMAND_BYTES`; ``invalid`` for an amount that
    is a float, not finite, not positive, not below 10^30 or with more than 36 decimal places,
    or for a cancel or amend that names its order by neither or both ids; else those of
    :func:`~core.codecs.decode_versioned` (``malformed``, ``schema`` for the wrong shape, an
    unknown ``kind`` or a decimal that does not parse, ``version``)."""
    if isinstance(data, bytes | bytearray | memoryview) and len(data) > MAX_COMMAND_BYTES:
        raise CodecError(f"bad {_WHAT} message: larger than {MAX_COMMAND_BYTES} bytes", "too_large")
    command = decode_versioned(_decoder, data, _WHAT, VERSION, v_has_default=True)
    raw = _amounts.decode(data)  # a map already: the command decoded
    for name in _Amounts.__struct_fields__:
        if isinstance(getattr(raw, name), float):
            raise CodecError(f"bad {_WHAT} message: {name} must be decimal text, not a float")
    for name in command.__struct_fields__:
        value = getattr(command, name)
        if isinstance(value, Decimal) and (problem := amount_problem(value)) is not None:
            raise CodecError(f"bad {_WHAT} message: {name} {problem}")
    if isinstance(command, CancelOrder | AmendOrder) and (
        (command.order_id is None) == (command.client_order_id is None)
    ):
        raise CodecError(
            f"bad {_WHAT} message: {kind_of(command)} names its order by order_id or "
            "client_order_id, exactly one"
        )
    return command


def command_key(command: TradingCommand) -> bytes:
    """The message key on ``trading.commands``: the account id in decimal."""
    return str(command.account).encode()
