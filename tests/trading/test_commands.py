"""The pure step of ``trading.commands``: each record becomes the service call it asks for,
its request checked by the domain as the REST body's is, or a refusal with our code (a record
its codec refused, a key that is not its account, a request the domain refuses)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from core import trading_commands as tc
from core.topic_codecs import TRADING_COMMANDS_CODEC
from core.topics import TRADING_COMMANDS
from core.trading_events import OrderSide, OrderType, TimeInForce
from streams.bus import Record
from streams.processor import decode_batch
from trading.commands import (
    Amend,
    Call,
    Cancel,
    Fund,
    Kill,
    Place,
    Planned,
    Refused,
    command_step,
)
from trading.domain.orders import AmendRequest, OrderRequest

D = Decimal
XBT = "KRAKEN:XBTUSDT"
BUY = tc.PlaceOrder(
    account=7, client_order_id="bot-1", instrument=XBT, side=OrderSide.BUY,
    type=OrderType.LIMIT, quantity=D("0.5"), price=D(48000), time_in_force=TimeInForce.IOC,
)  # fmt: skip


def records(*commands: tc.TradingCommand | tuple[bytes, bytes]) -> list[Record]:
    """Records of ``commands`` at offsets 0, 1, ... (a pair is a raw key and value)."""
    out = []
    for offset, command in enumerate(commands):
        pair = command if isinstance(command, tuple) else TRADING_COMMANDS_CODEC.record(command)
        key, value = pair
        out.append(Record(TRADING_COMMANDS, 3, offset, key, value, 0))
    return out


def calls(*commands: tc.TradingCommand | tuple[bytes, bytes]) -> list[Call]:
    outcome = command_step(decode_batch(records(*commands), "test"), 0, False)
    assert outcome.outputs == []  # the outbox publishes the events, never the step
    return [planned.call for planned in outcome.effects]


def test_each_command_becomes_its_service_call_with_the_domain_s_request() -> None:
    assert calls(
        BUY,
        tc.CancelOrder(account=7, order_id="abc-1"),
        tc.CancelOrder(account=7, client_order_id="bot-1"),
        tc.AmendOrder(account=7, client_order_id="bot-1", price=D(47000)),
        tc.Deposit(account=7, currency="USDT", amount=D("100.5")),
        tc.SetKillSwitch(account=7, on=True),
    ) == [
        Place(
            OrderRequest(
                account=7,
                client_order_id="bot-1",
                instrument=XBT,
                side=OrderSide.BUY,
                type=OrderType.LIMIT,
                quantity=D("0.5"),
                price=D(48000),
                time_in_force=TimeInForce.IOC,
            )
        ),
        Cancel(7, "abc-1", by_client_order_id=False),
        Cancel(7, "bot-1", by_client_order_id=True),
        Amend(AmendRequest(account=7, order_id="bot-1", price=D(47000)), by_client_order_id=True),
        Fund(7, "USDT", D("100.5")),
        Kill(7, on=True),
    ]


def test_the_planned_call_says_where_its_record_is_and_what_it_was() -> None:
    outcome = command_step(decode_batch(records(BUY, BUY), "test"), 0, False)
    assert [(p.origin, p.kind, p.account) for p in outcome.effects] == [
        (f"{TRADING_COMMANDS}/3/0", "place-order", 7),
        (f"{TRADING_COMMANDS}/3/1", "place-order", 7),
    ]
    assert isinstance(outcome.effects[0], Planned)


def change(command: tc.TradingCommand, **fields: object) -> tc.TradingCommand:
    return msgspec.structs.replace(command, **fields)


@pytest.mark.parametrize(
    ("command", "code", "field"),
    [
        (change(BUY, price=None), "required", "price"),
        (change(BUY, type=OrderType.MARKET), "forbidden", "price"),
        (change(BUY, stop_price=D(1)), "forbidden", "stop_price"),
        (change(BUY, quantity=D(10) ** 15), "too-large", "quantity"),
        (change(BUY, price=D("1.0000000000000000001")), "too-precise", "price"),
        (tc.CancelOrder(account=7, order_id="has space"), "format", "order_id"),
        (tc.AmendOrder(account=7, order_id="o-1"), "required", "quantity"),
        (tc.AmendOrder(account=7, order_id="o-1", quantity=D(10) ** 16), "too-large", "quantity"),
        (tc.Deposit(account=7, currency="USDT", amount=D("1E-19")), "too-precise", "amount"),
    ],
)
def test_a_request_the_domain_refuses_is_refused_with_its_code_and_field(
    command: tc.TradingCommand, code: str, field: str
) -> None:
    [call] = calls(command)
    assert isinstance(call, Refused)
    assert (call.code, call.field) == (code, field)


def test_an_undecodable_record_and_a_key_that_is_not_the_account_are_refused_in_place() -> None:
    _, value = TRADING_COMMANDS_CODEC.record(BUY)
    found = calls((b"7", b"\xc1"), (b"8", value), BUY)
    assert [type(call) for call in found] == [Refused, Refused, Place]
    first, second, _ = found
    assert isinstance(first, Refused)
    assert isinstance(second, Refused)
    assert (first.code, second.code, second.field) == ("undecodable", "key-mismatch", "account")
    assert "not valid MessagePack" in first.message
