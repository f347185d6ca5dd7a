"""``trading.events`` is a typed topic: every event survives the wire exactly, in its record,
under its account's key; anything that is not a record or an event of this version is our
CodecError with our reason code; a consumer drops a repeated record by its notification id."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TypedDict

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import trading_events as te
from core.codecs import CodecError
from core.topic_codecs import REGISTRY, codec_for
from core.topics import TRADING_EVENTS

D = Decimal


class Ids(TypedDict):
    account: int
    order_id: str
    ts: int


ORDER = Ids(account=7, order_id="0f6c1d2e-7a4b-4c3d-9e8f-112233445566", ts=1_700_000_000)

EVENTS: list[te.TradingEvent] = [
    te.OrderSubmitted(
        **ORDER,
        client_order_id="bot-1:a.b_c",
        instrument="KRAKEN:XBTUSDT",
        side=te.OrderSide.BUY,
        type=te.OrderType.STOP_MARKET,
        quantity=D("0.00012345"),
        price=None,
        stop_price=D("43000.1"),
        time_in_force=te.TimeInForce.GTC,
    ),
    te.OrderDenied(**ORDER, reason_code="buying-power", field="quantity", message="no cash"),
    te.OrderAccepted(**ORDER, venue_order_id="paper-1"),
    te.OrderRejected(**ORDER, reason_code="post-only", message="would take"),
    te.OrderTriggered(**ORDER),
    te.OrderUpdated(**ORDER, quantity=D("2"), price=D("99.5"), stop_price=None),
    te.OrderFilled(
        **ORDER,
        fill_id="f-1",
        instrument="KRAKEN:XBTUSDT",
        side=te.OrderSide.SELL,
        price=D("43000.123456789012345678"),
        quantity=D("0.5"),
        fee=D("0"),
        fee_currency="USDT",
        liquidity=te.Liquidity.MAKER,
        trade_id=123456789,
    ),
    te.OrderCanceled(**ORDER, reason="canceled by the client"),
    te.OrderExpired(**ORDER),
    te.FundsDeposited(account=7, currency="USDT", amount=D("1000.5"), ts=1),
    te.FundsReserved(account=7, order_id="o", currency="USDT", amount=D("10"), ts=2),
    te.FundsReleased(account=7, order_id="o", currency="USDT", amount=D("1E-36"), ts=3),
    te.KillSwitchSet(account=7, on=True, ts=4),
]


def test_every_kind_of_event_has_an_example_here() -> None:
    assert {type(event) for event in EVENTS} == set(te.ORDER_EVENTS + te.ACCOUNT_EVENTS)


def record(event: te.TradingEvent, notification_id: int = 41) -> te.TradingRecord:
    return te.TradingRecord(
        notification_id=notification_id, aggregate_id="account:7", version=3, event=event
    )


@pytest.mark.parametrize("event", EVENTS, ids=te.kind_of)
def test_an_event_survives_the_wire_exactly_under_its_account_key(event: te.TradingEvent) -> None:
    codec = codec_for(TRADING_EVENTS)
    key, value = codec.record(record(event))
    assert (key, codec.decode(value)) == (b"7", record(event))
    assert type(codec.decode(value).event) is type(event)
    assert te.decode_event(te.encode_event(event)) == event


def test_a_record_embeds_its_event_as_a_tagged_map_not_as_bytes() -> None:
    fields = msgspec.msgpack.decode(te.encode_record(record(EVENTS[6])))
    assert {name: fields[name] for name in ("notification_id", "aggregate_id", "version", "v")} == {
        "notification_id": 41, "aggregate_id": "account:7", "version": 3, "v": te.VERSION
    }  # fmt: skip
    assert (fields["event"]["kind"], fields["event"]["price"]) == (
        "order-filled",
        "43000.123456789012345678",
    )


def test_an_event_is_a_versioned_map_tagged_by_its_kind_with_amounts_as_text() -> None:
    fields = msgspec.msgpack.decode(te.encode_event(EVENTS[6]))
    assert (fields["kind"], fields["v"], fields["price"]) == (
        "order-filled",
        te.VERSION,
        "43000.123456789012345678",
    )
    assert TRADING_EVENTS in REGISTRY
    assert [te.kind_of(kind) for kind in te.ORDER_EVENTS] == [
        "order-submitted", "order-denied", "order-accepted", "order-rejected", "order-triggered",
        "order-updated", "order-filled", "order-canceled", "order-expired",
    ]  # fmt: skip


def wire(event: te.TradingEvent, **changes: object) -> bytes:
    """``event`` encoded with some fields changed (``None`` deletes one)."""
    fields = msgspec.msgpack.decode(te.encode_event(event))
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return msgspec.msgpack.encode(fields)


FILL = EVENTS[6]


@pytest.mark.parametrize(
    ("data", "reason", "problem"),
    [
        (wire(FILL, v=2), "version", "unknown schema version 2 "),
        (wire(FILL, v=2, kind="order-exploded"), "version", "unknown schema version 2 "),
        (wire(FILL, v=None), "version", "no schema version field `v`"),
        (b"", "malformed", "not valid MessagePack"),
        (te.encode_event(FILL)[:-3], "malformed", "not valid MessagePack"),
        (b"\x81\xa1x" + b"\x91" * 10_000 + b"\xc0", "too_deep", "nested too deeply"),
        (wire(FILL, kind="order-exploded"), "schema", "not the shape of this message"),
        (wire(FILL, kind=None), "schema", "not the shape of this message"),
        (wire(FILL, price=None), "schema", "not the shape of this message"),
        (wire(FILL, price="1.5.5"), "schema", "not the shape of this message"),
        (wire(FILL, side="short"), "schema", "not the shape of this message"),
        (wire(FILL, instrument="xbt"), "schema", "not the shape of this message"),
        (wire(FILL, account=-1), "schema", "not the shape of this message"),
        (wire(FILL, fee_currency="usdt"), "schema", "not the shape of this message"),
        (wire(EVENTS[0], client_order_id="has space"), "schema", "not the shape of this"),
        (wire(EVENTS[0], client_order_id="x" * 65), "schema", "not the shape of this message"),
        (wire(FILL, price="NaN"), "invalid", "price must be a finite number"),
        (wire(FILL, quantity="0"), "invalid", "quantity must be positive, got 0"),
        (wire(FILL, price="-1"), "invalid", "price must be positive"),
        (wire(FILL, fee="-0.1"), "invalid", "fee must be at least 0, got -0.1"),
        (wire(FILL, quantity="1E+30"), "invalid", "quantity must be below 10\\*\\*30"),
        (wire(FILL, quantity="1E-37"), "invalid", "quantity must have at most 36 decimal"),
        (b"\x00" * (te.MAX_EVENT_BYTES + 1), "too_large", "larger than 16384 bytes"),
    ],
)
def test_what_is_not_an_event_is_refused_with_our_reason(
    data: bytes, reason: str, problem: str
) -> None:
    with pytest.raises(CodecError, match=f"^bad trading event message: {problem}") as refused:
        te.decode_event(data)
    assert refused.value.reason == reason


def record_wire(event: object = None, **changes: object) -> bytes:
    """A record of ``FILL`` with some fields changed (``None`` deletes one), its event
    replaced by ``event`` when given."""
    fields = msgspec.msgpack.decode(te.encode_record(record(FILL)))
    if event is not None:
        fields["event"] = event
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return msgspec.msgpack.encode(fields)


def event_map(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = msgspec.msgpack.decode(wire(FILL, **changes))
    return fields


@pytest.mark.parametrize(
    ("data", "reason", "problem"),
    [
        (record_wire(v=2), "version", "unknown schema version 2 "),
        (record_wire(v=None), "version", "no schema version field `v`"),
        (record_wire(event_map(v=2)), "version", "event has unknown schema version 2 "),
        (record_wire(event_map(v=None)), "version", "event has no schema version field `v`"),
        (record_wire(notification_id=0), "schema", "not the shape of this message"),
        (record_wire(version=None), "schema", "not the shape of this message"),
        (record_wire(aggregate_id=""), "schema", "not the shape of this message"),
        (record_wire(event_map(kind="order-exploded")), "schema", "not the shape of this"),
        (record_wire(b"\x80"), "schema", "not the shape of this message"),
        (record_wire(event_map(quantity="0")), "invalid", "quantity must be positive, got 0"),
        (record_wire(event_map(fee="-1")), "invalid", "fee must be at least 0, got -1"),
        (te.encode_record(record(FILL))[:-2], "malformed", "not valid MessagePack"),
        (b"\x00" * (te.MAX_RECORD_BYTES + 1), "too_large", "larger than 17408 bytes"),
    ],
)
def test_what_is_not_a_record_is_refused_with_our_reason(
    data: bytes, reason: str, problem: str
) -> None:
    with pytest.raises(CodecError, match=f"^bad trading record message: {problem}") as refused:
        te.decode_record(data)
    assert refused.value.reason == reason


@given(st.data())
def test_damaged_records_raise_codec_error_and_nothing_else(data: st.DataObject) -> None:
    message = bytearray(te.encode_record(record(data.draw(st.sampled_from(EVENTS)))))
    for _ in range(data.draw(st.integers(1, 4))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CodecError):
        te.decode_record(bytes(message))


def test_the_deduplicator_drops_a_notification_id_it_has_seen_on_an_account() -> None:
    seen = te.Deduplicator()
    other_account = te.TradingRecord(
        notification_id=41, aggregate_id="account:8", version=1,
        event=te.KillSwitchSet(account=8, on=True, ts=1),
    )  # fmt: skip
    assert seen.is_new(record(FILL, 41))
    assert not seen.is_new(record(FILL, 41))
    assert not seen.is_new(record(EVENTS[0], 40))  # below the highest on the key: a repeat
    assert seen.is_new(other_account)
    assert seen.is_new(record(FILL, 42))


def test_input_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(CodecError, match="expected bytes, got str") as refused:
        te.decode_event("order-filled")  # type: ignore[arg-type]
    assert refused.value.reason == "not_bytes"


@given(st.data())
def test_damaged_events_raise_codec_error_and_nothing_else(data: st.DataObject) -> None:
    message = bytearray(te.encode_event(data.draw(st.sampled_from(EVENTS))))
    for _ in range(data.draw(st.integers(1, 4))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CodecError):
        te.decode_event(bytes(message))
