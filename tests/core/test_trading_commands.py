"""``trading.commands`` is a typed topic: every command survives the wire exactly under its
account's key; anything that is not a command of this version (oversized, another version, a
bad or float amount, an unknown kind) is our CodecError with our reason code."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import trading_commands as tc
from core.codecs import CodecError
from core.topic_codecs import REGISTRY, codec_for
from core.topics import TRADING_COMMANDS
from core.trading_events import OrderSide, OrderType, TimeInForce

D = Decimal

PLACE = tc.PlaceOrder(
    account=7,
    client_order_id="bot-1:a.b_c",
    instrument="KRAKEN:XBTUSDT",
    side=OrderSide.BUY,
    type=OrderType.LIMIT,
    quantity=D("0.00012345"),
    price=D("43000.1"),
    time_in_force=TimeInForce.IOC,
)
COMMANDS: list[tc.TradingCommand] = [
    PLACE,
    tc.PlaceOrder(
        account=0,
        client_order_id="m",
        instrument="BINANCE:BTCUSDT",
        side=OrderSide.SELL,
        type=OrderType.STOP_MARKET,
        quantity=D(3),
        stop_price=D("41000"),
    ),
    tc.CancelOrder(account=7, order_id="0f6c1d2e7a4b4c3d9e8f112233445566"),
    tc.CancelOrder(account=7, client_order_id="bot-1:a.b_c"),
    tc.AmendOrder(account=7, client_order_id="bot-1:a.b_c", quantity=D("0.5"), price=D("99.5")),
    tc.Deposit(account=2**63 - 1, currency="USDT", amount=D("10000.00000001")),
    tc.SetKillSwitch(account=7, on=True),
    tc.SetKillSwitch(account=7, on=False),
]


def test_every_kind_of_command_has_an_example_here() -> None:
    assert {type(command) for command in COMMANDS} == set(tc.COMMANDS)
    assert [tc.kind_of(kind) for kind in tc.COMMANDS] == [
        "place-order", "cancel-order", "amend-order", "deposit", "set-kill-switch",
    ]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=tc.kind_of)
def test_a_command_survives_the_wire_exactly_under_its_account_key(
    command: tc.TradingCommand,
) -> None:
    codec = codec_for(TRADING_COMMANDS)
    key, value = codec.record(command)
    assert key == str(command.account).encode()
    assert codec.decode(value) == command
    assert REGISTRY[TRADING_COMMANDS] is codec


def test_a_command_is_a_versioned_map_tagged_by_its_kind_with_amounts_as_text() -> None:
    fields = msgspec.msgpack.decode(tc.encode_command(PLACE))
    assert (fields["kind"], fields["v"], fields["quantity"], fields["price"]) == (
        "place-order", 1, "0.00012345", "43000.1",
    )  # fmt: skip


def wire(command: tc.TradingCommand = PLACE, **changes: object) -> bytes:
    """``command`` encoded with some fields changed (``None`` deletes one)."""
    fields = msgspec.msgpack.decode(tc.encode_command(command))
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return msgspec.msgpack.encode(fields)


CANCEL = COMMANDS[2]
DEPOSIT = COMMANDS[5]


@pytest.mark.parametrize(
    ("data", "reason", "problem"),
    [
        (wire(v=2), "version", "unknown schema version 2 "),
        (wire(v=2, kind="place-everything"), "version", "unknown schema version 2 "),
        (wire(v=None), "version", "no schema version field `v`"),
        (b"", "malformed", "not valid MessagePack"),
        (tc.encode_command(PLACE)[:-3], "malformed", "not valid MessagePack"),
        (b"\x81\xa1x" + b"\x91" * 3_000 + b"\xc0", "too_deep", "nested too deeply"),
        (wire(kind="place-everything"), "schema", "not the shape of this message"),
        (wire(kind=None), "schema", "not the shape of this message"),
        (wire(client_order_id=None), "schema", "not the shape of this message"),
        (wire(client_order_id="has space"), "schema", "not the shape of this message"),
        (wire(client_order_id="x" * 65), "schema", "not the shape of this message"),
        (wire(account=None), "schema", "not the shape of this message"),
        (wire(account=-1), "schema", "not the shape of this message"),
        (wire(account="7"), "schema", "not the shape of this message"),
        (wire(side="short"), "schema", "not the shape of this message"),
        (wire(instrument="xbt"), "schema", "not the shape of this message"),
        (wire(price="1.5.5"), "schema", "not the shape of this message"),
        (wire(quantity=True), "schema", "not the shape of this message"),
        (wire(DEPOSIT, currency="usdt"), "schema", "not the shape of this message"),
        (wire(CANCEL, order_id="x" * 65), "schema", "not the shape of this message"),
        (wire(quantity=0.5), "invalid", "quantity must be decimal text, not a float"),
        (wire(DEPOSIT, amount=1e3), "invalid", "amount must be decimal text, not a float"),
        (wire(price="NaN"), "invalid", "price must be a finite number"),
        (wire(price="-Infinity"), "invalid", "price must be a finite number"),
        (wire(quantity="0"), "invalid", "quantity must be positive, got 0"),
        (wire(DEPOSIT, amount="-5"), "invalid", "amount must be positive, got -5"),
        (wire(quantity="1E+30"), "invalid", "quantity must be below 10\\*\\*30"),
        (wire(quantity="1E-37"), "invalid", "quantity must have at most 36 decimal"),
        (wire(CANCEL, order_id=None), "invalid", "cancel-order names its order by order_id or"),
        (wire(CANCEL, client_order_id="c-1"), "invalid", "cancel-order names its order by"),
        (b"\x00" * (tc.MAX_COMMAND_BYTES + 1), "too_large", "larger than 4096 bytes"),
        (wire(instrument="K:" + "X" * 5000), "too_large", "larger than 4096 bytes"),
    ],
)
def test_what_is_not_a_command_is_refused_with_our_reason(
    data: bytes, reason: str, problem: str
) -> None:
    with pytest.raises(CodecError, match=f"^bad trading command message: {problem}") as refused:
        tc.decode_command(data)
    assert refused.value.reason == reason


def test_an_integer_amount_is_an_exact_decimal() -> None:
    assert tc.decode_command(wire(quantity=2)) == msgspec.structs.replace(PLACE, quantity=D(2))


def test_input_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(CodecError, match="expected bytes, got str") as refused:
        tc.decode_command("place-order")  # type: ignore[arg-type]
    assert refused.value.reason == "not_bytes"


@given(st.data())
def test_damaged_commands_raise_codec_error_and_nothing_else(data: st.DataObject) -> None:
    message = bytearray(tc.encode_command(data.draw(st.sampled_from(COMMANDS))))
    for _ in range(data.draw(st.integers(1, 4))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CodecError):
        tc.decode_command(bytes(message))
