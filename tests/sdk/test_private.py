"""The account's own channels in the stream's core, without a socket (``StreamCore`` and
``sdk.wire``): ``orders``, ``fills``, ``positions`` and ``alerts`` as ``docs/protocol.md`` and the
contract give them; their items decode as the REST API's (the JSON is made here by the trading
service's own types), and they keep the candles' rules: no repeat, no silent hole, a resume
with the last seq and epoch after a reconnect, a reset snapshot that starts over."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from core.alerts import AlertFired, AlertSpec, Condition, fired
from core.positions import Position as DomainPosition
from core.trading_events import (
    Liquidity,
    OrderAccepted,
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from sdk import AlertUpdate, Fill, FillUpdate, OrderUpdate, PositionUpdate, PrivateSnapshot
from sdk.protocol import StreamCore
from sdk.wire import Channel, Error, decode
from trading.domain.orders import Order as DomainOrder
from trading.readmodels.queries import FillView, PositionView

D = Decimal
ACCOUNT = 7
FILLS = Channel("fills")
ORDERS = Channel("orders")
POSITIONS = Channel("positions")
ALERTS = Channel("alerts")
XBT = "KRAKEN:XBTUSDT"


def frame(**body: Any) -> str:
    return json.dumps(body)


def rest(value: object) -> Any:
    """``value`` as the trading API encodes it (its JSON, parsed)."""
    return json.loads(msgspec.json.encode(value))


def filled(n: int, side: OrderSide = OrderSide.BUY, quantity: str = "0.1") -> OrderFilled:
    return OrderFilled(
        account=ACCOUNT, ts=1_700_000_000_000_000_000 + n, order_id=f"o-{n}",
        fill_id=f"o-{n}-{n}", instrument=XBT, side=side, price=D("50000.25"),
        quantity=D(quantity), fee=D("0.005"), fee_currency="USDT", liquidity=Liquidity.TAKER,
        trade_id=n,
    )  # fmt: skip


def fill_item(n: int, **more: Any) -> Any:
    """A fill as ``GET /trading/v1/fills`` lists it: ``{"seq", "fill": {...}}``."""
    return rest(FillView(seq=n, fill=filled(n, **more)))


def position_item(quantity: str) -> Any:
    position = DomainPosition(instrument=XBT, quantity=D(quantity), average_price=D("50000.25"))
    return rest(PositionView(position=position, last_price=D(50010), unrealised=D("1.5")))


def on(channel: str, **body: Any) -> dict[str, Any]:
    return {"channel": channel, "account": ACCOUNT, **body}


def fill_update(seq: int) -> str:
    return frame(type="fill", **on("fills"), seq=seq, fill=fill_item(seq))


def sent(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(text) for text in frames]


def held_core(*channels: Channel, seq: int = 3, epoch: str = "e1") -> StreamCore:
    """A core holding ``channels``, subscribed and past a snapshot of each current to ``seq``."""
    core = StreamCore()
    core.connected(None)
    for channel in channels:
        rid, _ = core.subscribe(channel)
        answer = core.receive(frame(type="subscribed", id=rid, **on(channel.kind), epoch=epoch))
        assert answer.answered[0].id == rid
        snapshot = frame(type="snapshot", **on(channel.kind), epoch=epoch, seq=seq, reset=False)
        core.receive(snapshot)
    return core


def fill_seqs(core: StreamCore, *frames: str) -> list[int]:
    out = []
    for text in frames:
        out += [m.seq for m in core.receive(text).messages if isinstance(m, FillUpdate)]
    return out


def test_a_private_subscribe_names_no_instrument_and_its_snapshot_is_typed() -> None:
    core = StreamCore()
    core.connected(None)
    rid, frames = core.subscribe(FILLS, snapshot=100)
    assert sent(frames) == [{"op": "subscribe", "id": rid, "channel": "fills", "snapshot": 100}]
    answered = core.receive(frame(type="subscribed", id=rid, **on("fills"), epoch="4f1c"))
    assert [a.id for a in answered.answered] == [rid]
    snapshot = frame(type="snapshot", **on("fills"), epoch="4f1c", seq=0, reset=False,
                     fills=[fill_item(1), fill_item(2, side=OrderSide.SELL)])  # fmt: skip
    (message,) = core.receive(snapshot).messages
    assert isinstance(message, PrivateSnapshot)
    assert (message.channel, message.account, message.seq, message.reset) == ("fills", 7, 0, False)
    first, second = message.fills
    assert first == Fill(
        order_id="o-1", fill_id="o-1-1", instrument=XBT, side=OrderSide.BUY,
        price=D("50000.25"), quantity=D("0.1"), fee=D("0.005"), fee_currency="USDT",
        liquidity=Liquidity.TAKER, trade_id=1, ts=1_700_000_000_000_000_001, account=7, seq=1,
    )  # fmt: skip
    assert (second.side, second.signed_quantity) == (OrderSide.SELL, D("-0.1"))
    assert fill_seqs(core, fill_update(1), fill_update(2)) == [1, 2]


def test_a_fill_is_taken_flat_as_well_as_wrapped_as_the_rest_list_gives_it() -> None:
    flat = rest(filled(4))
    (message,) = (
        held_core(FILLS).receive(frame(type="fill", **on("fills"), seq=4, fill=flat)).messages
    )
    assert isinstance(message, FillUpdate)
    assert (message.fill.fill_id, message.fill.seq, message.fill.price) == (
        "o-4-4",
        None,
        D("50000.25"),
    )
    with pytest.raises(msgspec.DecodeError):
        decode(frame(type="fill", **on("fills"), seq=5, fill={"fill_id": "x"}))
    with pytest.raises(msgspec.DecodeError):
        decode(frame(type="fill", **on("fills"), seq=5))


def test_order_events_and_order_snapshots_decode_as_the_services_types() -> None:
    core = held_core(ORDERS)
    accepted = OrderAccepted(account=ACCOUNT, ts=5, order_id="o-1", venue_order_id="v-1")
    (update,) = core.receive(
        frame(type="order", **on("orders"), seq=4, event=rest(accepted))
    ).messages
    assert isinstance(update, OrderUpdate)
    assert update.event == accepted
    (fill,) = core.receive(
        frame(type="order", **on("orders"), seq=5, event=rest(filled(1)))
    ).messages
    assert isinstance(fill, OrderUpdate)
    assert fill.event == filled(1)  # every amount exact
    order = DomainOrder(
        account=ACCOUNT, order_id="o-1", client_order_id="bot-1", instrument=XBT,
        side=OrderSide.BUY, type=OrderType.LIMIT, quantity=D("0.3"), price=D("49000"),
        stop_price=None, time_in_force=TimeInForce.GTC, status=OrderStatus.PARTIALLY_FILLED,
        filled_quantity=D("0.1"), fill_ids=frozenset({"o-1-1"}),
    )  # fmt: skip
    reset = frame(type="snapshot", **on("orders"), epoch="e2", seq=0, reset=True,
                  orders=[rest(order), rest({"order": order})])  # fmt: skip
    (snapshot,) = core.receive(reset).messages
    assert isinstance(snapshot, PrivateSnapshot)
    assert snapshot.reset
    assert [(o.order_id, o.status, o.filled_quantity) for o in snapshot.orders] == [
        ("o-1", OrderStatus.PARTIALLY_FILLED, D("0.1"))
    ] * 2


def test_positions_after_each_fill() -> None:
    core = held_core(POSITIONS)
    (update,) = core.receive(
        frame(type="position", **on("positions"), seq=4, position=position_item("0.45"))
    ).messages
    assert isinstance(update, PositionUpdate)
    assert (update.position.quantity, update.position.average_price) == (D("0.45"), D("50000.25"))
    assert (update.position.last_price, update.position.unrealised) == (D(50010), D("1.5"))
    flat = rest(DomainPosition(instrument=XBT, quantity=D("-1")))
    (short,) = core.receive(
        frame(type="position", **on("positions"), seq=5, position=flat)
    ).messages
    assert isinstance(short, PositionUpdate)
    assert (short.position.quantity, short.position.last_price) == (D(-1), None)


def test_repeats_are_dropped_and_a_jump_resumes_on_the_same_connection() -> None:
    core = held_core(FILLS, seq=3, epoch="e1")
    assert fill_seqs(core, fill_update(4), fill_update(4), fill_update(3), fill_update(5)) == [4, 5]
    assert core.dropped_repeats == 2
    jumped = core.receive(fill_update(8))
    assert jumped.messages == []
    (resume,) = sent(jumped.send)
    assert resume == {
        "op": "resume",
        "id": resume["id"],
        "channel": "fills",
        "seq": 5,
        "epoch": "e1",
    }
    assert fill_seqs(core, fill_update(9)) == []  # held back until the resume is answered
    core.receive(frame(type="subscribed", id=resume["id"], **on("fills"), epoch="e1"))
    assert fill_seqs(core, fill_update(6), fill_update(7), fill_update(8)) == [6, 7, 8]


def test_a_reconnect_resumes_every_private_channel_after_the_token() -> None:
    core = held_core(ORDERS, FILLS, POSITIONS, seq=3, epoch="e1")
    assert fill_seqs(core, fill_update(4)) == [4]
    core.disconnected()
    (auth,) = sent(core.connected("the-token"))
    assert auth["op"] == "auth"
    frames = sent(core.receive(frame(type="authenticated", id=auth["id"], plan="pro")).send)
    assert sorted((f["op"], f["channel"], f["seq"], f["epoch"]) for f in frames) == [
        ("resume", "fills", 4, "e1"), ("resume", "orders", 3, "e1"),
        ("resume", "positions", 3, "e1"),
    ]  # fmt: skip
    assert all("instrument" not in f for f in frames)
    # the gateway replays what was missed: the same numbers, nothing twice
    assert fill_seqs(core, fill_update(4), fill_update(5), fill_update(6)) == [5, 6]
    # a gateway of another epoch: a reset snapshot, and the numbers start over
    reset = frame(type="snapshot", **on("fills"), epoch="e9", seq=2, reset=True,
                  fills=[fill_item(1), fill_item(2)])  # fmt: skip
    (snapshot,) = core.receive(reset).messages
    assert isinstance(snapshot, PrivateSnapshot)
    assert [f.seq for f in snapshot.fills] == [1, 2]
    assert fill_seqs(core, fill_update(3)) == [3]
    core.disconnected()
    core.connected(None)
    again = {f["channel"]: (f["seq"], f["epoch"]) for f in sent(core._requests())}
    assert again["fills"] == (3, "e9")


def test_a_private_channel_whose_feed_lost_records_is_subscribed_again_at_once() -> None:
    core = held_core(FILLS)
    lost = frame(type="error", id=None, code="unavailable", message="records were lost",
                 channel="fills")  # fmt: skip
    out = core.receive(lost)
    [again] = sent(out.send)
    assert (again["op"], again["channel"]) == ("subscribe", "fills")
    assert "seq" not in again  # a fresh subscription: its snapshot comes again
    assert FILLS in core.channels
    assert [type(m) for m in out.messages] == [Error]  # the bot is told too


def test_a_refused_or_dropped_private_channel_is_not_held() -> None:
    core = StreamCore()
    core.connected(None)
    rid, _ = core.subscribe(ORDERS)
    refused = frame(type="error", id=rid, code="not_entitled", message="no trading",
                    field="channel", channel="orders")  # fmt: skip
    (answer,) = core.receive(refused).answered
    assert answer.error is not None
    assert (answer.error.code, answer.error.field) == ("not_entitled", "channel")
    assert ORDERS not in core.channels
    core = held_core(FILLS, POSITIONS)
    dropped = frame(type="error", id=None, code="not_entitled", message="plan changed",
                    channel="fills")  # fmt: skip
    (message,) = core.receive(dropped).messages
    assert isinstance(message, Error)
    assert set(core.channels) == {POSITIONS}
    rid, frames = core.unsubscribe(POSITIONS)
    assert sent(frames) == [{"op": "unsubscribe", "id": rid, "channel": "positions"}]
    lost = frame(type="error", id=None, code="unavailable", message="records were lost",
                 channel="positions")  # fmt: skip
    assert not core.receive(lost).send  # no longer held: nothing to subscribe again
    assert [
        a.id for a in core.receive(frame(type="unsubscribed", id=rid, channel="positions")).answered
    ] == [rid]


def fired_alert(n: int, arming: int = 1) -> AlertFired:
    spec = AlertSpec(
        alert_id=f"a-{n}", account=ACCOUNT, instrument=XBT, condition=Condition.MOVE_UP,
        threshold=D("2.5"), window_s=60,
    )  # fmt: skip
    return fired(spec, arming, D("51250.125"), ts=n, gap=n % 2 == 0, trade_id=n)


def alert_update(seq: int) -> str:
    return frame(type="alert", **on("alerts"), seq=seq, alert=rest(fired_alert(seq)))


def test_fired_alerts_decode_as_the_core_firing_and_keep_the_channel_rules() -> None:
    core = StreamCore()
    core.connected(None)
    rid, frames = core.subscribe(ALERTS, snapshot=5)
    assert sent(frames) == [{"op": "subscribe", "id": rid, "channel": "alerts", "snapshot": 5}]
    core.receive(frame(type="subscribed", id=rid, **on("alerts"), epoch="e1"))
    snapshot = frame(type="snapshot", **on("alerts"), epoch="e1", seq=2, reset=False, unread=3,
                     alerts=[rest(fired_alert(1)), rest(fired_alert(2))])  # fmt: skip
    (message,) = core.receive(snapshot).messages
    assert isinstance(message, PrivateSnapshot)
    assert (message.channel, message.seq, message.unread) == ("alerts", 2, 3)
    assert message.alerts == [fired_alert(1), fired_alert(2)]  # every amount exact
    updates = [
        m for text in (alert_update(3), alert_update(3), alert_update(2), alert_update(4))
        for m in core.receive(text).messages
    ]  # fmt: skip
    assert all(isinstance(m, AlertUpdate) for m in updates)
    assert [(m.seq, m.alert) for m in updates] == [(3, fired_alert(3)), (4, fired_alert(4))]  # type: ignore[union-attr]
    with pytest.raises(msgspec.DecodeError):
        decode(frame(type="alert", **on("alerts"), seq=5))
    core.disconnected()
    core.connected(None)
    (resume,) = sent(core._requests())
    assert (resume["op"], resume["channel"], resume["seq"], resume["epoch"]) == (
        "resume", "alerts", 4, "e1"
    )  # fmt: skip
