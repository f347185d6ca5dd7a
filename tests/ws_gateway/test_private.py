"""Private channels, sans I/O: the account feed (seq, the snapshot/live join, repeats, lost
records, positions folded from fills) and the session's subscribe, resume and refusals.

Every test builds the feed, or a :class:`SessionCore` on a hub, directly: records in, the
actions and messages out. No socket, no database and no event loop.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from access.grant import Grant
from core import trading_events as te
from core.positions import Position
from core.trading_reads import AccountSnapshot, fill_json, position_json
from ws_gateway.auth import Principal
from ws_gateway.hub import Hub
from ws_gateway.private import PENDING_RECORDS, WAIT, AccountFeed, TradingFeeds
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session_core import (
    Action,
    AwaitFeed,
    Directory,
    PrivateSnapshot,
    ReadAccount,
    ReadPrivate,
    SessionCore,
    private_reads,
)
from ws_gateway.settings import GatewaySettings
from ws_gateway.wire import FILLS, ORDERS, POSITIONS, ChannelKey

from .test_session_core import EPOCH, Watcher, framing, sent, types

D = Decimal
ACCOUNT = 7
OTHER = 8
XBT = "KRAKEN:XBTUSDT"


def grant(account: int | None = ACCOUNT, scopes: tuple[str, ...] = ("read", "trade")) -> Grant:
    return Grant(
        subject=f"account:{account}", account_id=account, session="s-1", token_id="t-1",
        scopes=scopes, plan="pro", instruments=("*",), delay_s=0, history_days=30,
        ws_subscriptions=20, ws_connections=5, requests_per_minute=600,
        trading="trade" in scopes, expires_at=None,
    )  # fmt: skip


class Ledger:
    """An account's event stream as the outbox publishes it: notification ids (shared with
    other accounts: they skip) and the account's gapless versions."""

    def __init__(self, account: int = ACCOUNT) -> None:
        self.account = account
        self.version = 0
        self.records: list[te.TradingRecord] = []

    def add(self, event: te.TradingEvent, notification_id: int) -> te.TradingRecord:
        self.version += 1
        record = te.TradingRecord(
            notification_id=notification_id,
            aggregate_id=f"account:{self.account}",
            version=self.version,
            event=event,
        )
        self.records.append(record)
        return record

    def submitted(self, nid: int, order_id: str = "o-1") -> te.TradingRecord:
        return self.add(
            te.OrderSubmitted(
                account=self.account, ts=nid, order_id=order_id, client_order_id=f"c-{order_id}",
                instrument=XBT, side=te.OrderSide.BUY, type=te.OrderType.LIMIT,
                quantity=D(3), price=D(100), stop_price=None, time_in_force=te.TimeInForce.GTC,
            ),
            nid,
        )  # fmt: skip

    def accepted(self, nid: int, order_id: str = "o-1") -> te.TradingRecord:
        return self.add(
            te.OrderAccepted(account=self.account, ts=nid, order_id=order_id, venue_order_id="v"),
            nid,
        )

    def filled(
        self,
        nid: int,
        quantity: str,
        price: str,
        side: te.OrderSide = te.OrderSide.BUY,
        order_id: str = "o-1",
    ) -> te.TradingRecord:
        return self.add(
            te.OrderFilled(
                account=self.account, ts=nid, order_id=order_id, fill_id=f"f-{nid}",
                instrument=XBT, side=side, price=D(price), quantity=D(quantity), fee=D(0),
                fee_currency="USDT", liquidity=te.Liquidity.TAKER, trade_id=nid,
            ),
            nid,
        )  # fmt: skip

    def reserved(self, nid: int) -> te.TradingRecord:
        return self.add(
            te.FundsReserved(
                account=self.account, ts=nid, order_id="o-1", currency="USDT", amount=D(300)
            ),
            nid,
        )


def snapshot(
    record: te.TradingRecord | None,
    positions: list[Position] | None = None,
    fills: list[te.OrderFilled] | None = None,
) -> AccountSnapshot:
    """The read models' snapshot current to ``record`` (None: the account has no events)."""
    return AccountSnapshot(
        account=ACCOUNT,
        notification_id=0 if record is None else record.notification_id,
        version=0 if record is None else record.version,
        orders=[b'{"order_id":"o-0"}'],
        fills=fills or [],
        positions=positions or [],
    )


def decoded(deliveries: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(delivery.payload) for delivery in deliveries]


def based(
    records: tuple[te.TradingRecord, ...] = (), at: te.TradingRecord | None = None
) -> AccountFeed:
    """A feed based on the snapshot at ``at``, having kept ``records`` while it was read."""
    feed = AccountFeed(ACCOUNT, "e.1", 1000, framing)
    for record in records:
        assert feed.take(record) == []
    assert feed.base(snapshot(at)) is not None
    return feed


# -- the feed ---------------------------------------------------------------------------------


def test_each_channel_numbers_its_own_messages_from_one() -> None:
    ledger = Ledger()
    feed = based()
    out = []
    for record in (
        ledger.submitted(10),
        ledger.reserved(11),
        ledger.accepted(12),
        ledger.filled(14, "1", "100"),
    ):
        out.extend(feed.take(record) or [])
    messages = decoded(out)
    assert [(m["type"], m["channel"], m["seq"]) for m in messages] == [
        ("order", ORDERS, 1),
        ("order", ORDERS, 2),
        ("order", ORDERS, 3),
        ("fill", FILLS, 1),
        ("position", POSITIONS, 1),
    ]
    assert {m["account"] for m in messages} == {ACCOUNT}
    assert messages[0]["event"]["kind"] == "order-submitted"
    assert messages[0]["event"]["quantity"] == "3"  # amounts as decimal strings
    assert messages[3]["fill"] == json.loads(fill_json(ledger.records[-1].event))  # type: ignore[arg-type]
    assert messages[4]["position"] == {
        "instrument": XBT, "quantity": "1", "average_price": "100", "realised": "0"
    }  # fmt: skip


def test_records_at_or_below_the_snapshot_are_dropped_and_those_after_it_sent_once() -> None:
    ledger = Ledger()
    first, second, third = ledger.submitted(10), ledger.accepted(11), ledger.filled(13, "1", "99")
    feed = AccountFeed(ACCOUNT, "e.1", 1000, framing)
    for record in (first, second, third):
        assert feed.take(record) == []  # unbased: kept while the snapshot is read
    deliveries = feed.base(snapshot(second))
    assert deliveries is not None
    assert [(m["type"], m["seq"]) for m in decoded(deliveries)] == [
        ("order", 1), ("fill", 1), ("position", 1)
    ]  # fmt: skip
    # the records come again (at-least-once delivery), and late ones at or below the snapshot
    for record in (first, second, third):
        assert feed.take(record) == []
    assert feed.repeats == 3
    assert feed.channels[ORDERS].seq == 1


def test_a_snapshot_ahead_of_the_bus_drops_the_records_it_holds_when_they_come() -> None:
    ledger = Ledger()
    records = [ledger.submitted(10), ledger.accepted(11), ledger.filled(12, "2", "100")]
    feed = based(at=records[-1])
    assert [feed.take(record) for record in records] == [[], [], []]
    fresh = feed.take(ledger.filled(15, "1", "100"))
    assert fresh is not None
    assert [(m["type"], m["seq"]) for m in decoded(fresh)] == [
        ("order", 1), ("fill", 1), ("position", 1)
    ]  # fmt: skip


def test_a_record_whose_version_skips_one_breaks_the_feed() -> None:
    ledger = Ledger()
    feed = based()
    assert feed.take(ledger.submitted(10)) is not None
    ledger.accepted(11)  # never arrives
    assert feed.take(ledger.filled(12, "1", "100")) is None


def test_a_first_snapshot_older_than_the_kept_records_is_read_again() -> None:
    ledger = Ledger()
    older = ledger.submitted(10)
    ledger.accepted(11)  # came before the feed was made
    feed = AccountFeed(ACCOUNT, "e.1", 1000, framing)
    assert feed.take(ledger.filled(12, "1", "100")) == []
    assert feed.base(snapshot(older)) is None
    assert not feed.based


def test_a_first_snapshot_older_than_what_the_bus_carried_before_the_feed_is_read_again() -> None:
    ledger = Ledger()
    channels = TradingFeeds("e", 1000, 10, framing)
    first, second = ledger.submitted(10), ledger.accepted(11)
    for record in (first, second):  # nobody subscribed yet: nothing is kept but the version
        assert channels.take(record) == ([], None)
    feed = channels.feed(ACCOUNT)
    assert feed.base(snapshot(first)) is None  # the read models lag the bus: read again
    assert feed.base(snapshot(second)) == []
    fresh = feed.take(ledger.filled(12, "1", "100"))
    assert fresh is not None
    assert [m["seq"] for m in decoded(fresh)] == [1, 1, 1]  # no skip: the feed goes on


def test_the_versions_remembered_of_accounts_without_a_feed_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ws_gateway.private.SEEN_ACCOUNTS", 3)
    channels = TradingFeeds("e", 1000, 10, framing)
    for account in range(1, 6):
        channels.take(Ledger(account).submitted(account))
    assert list(channels.seen) == [3, 4, 5]
    assert channels.feed(1).floor == 0  # forgotten: taken as unseen
    assert channels.feed(5).floor == 1


def test_an_unbased_feed_keeps_a_bounded_number_of_records() -> None:
    ledger = Ledger()
    feed = AccountFeed(ACCOUNT, "e.1", 1000, framing)
    for nid in range(1, PENDING_RECORDS + 6):
        feed.take(ledger.reserved(nid))
    assert len(feed.pending) <= PENDING_RECORDS
    assert feed.base(snapshot(None)) is None  # the early ones were dropped: read again
    ledger2 = Ledger()
    feed2 = AccountFeed(ACCOUNT, "e.2", 1000, framing)
    for nid in range(1, PENDING_RECORDS + 6):
        feed2.take(ledger2.reserved(nid))
    assert feed2.base(snapshot(ledger2.records[-3])) is not None  # a newer snapshot follows on


def test_join_point_is_each_channels_seq_as_of_the_snapshot() -> None:
    ledger = Ledger()
    feed = based()
    records = [ledger.submitted(10), ledger.accepted(11), ledger.filled(12, "1", "100")]
    for record in records:
        feed.take(record)
    assert feed.join_point(ORDERS, snapshot(records[1])) == 2
    assert feed.join_point(FILLS, snapshot(records[1])) == 0
    assert feed.join_point(FILLS, snapshot(records[2])) == 1
    ahead = Ledger()
    ahead.records, ahead.version = list(records), 3
    assert feed.join_point(ORDERS, snapshot(ahead.accepted(20))) is WAIT


def test_join_point_is_unknown_beyond_the_remembered_records() -> None:
    ledger = Ledger()
    feed = AccountFeed(ACCOUNT, "e.1", 3, framing)
    assert feed.base(snapshot(None)) == []
    first = ledger.reserved(1)
    feed.take(first)
    for nid in range(2, 10):
        feed.take(ledger.reserved(nid))
    assert feed.join_point(ORDERS, snapshot(first)) is None


def test_positions_folded_from_fills_are_the_trading_arithmetic() -> None:
    """Buy 2 at 100 and 1 at 130 (average 110), sell 2 at 150: 1 left at 110, 80 realised;
    then sell 3 at 120: short 2 at 120, 10 more realised. The snapshot's position is the
    start."""
    ledger = Ledger()
    start = Position(instrument=XBT, quantity=D(2), average_price=D(100))
    feed = AccountFeed(ACCOUNT, "e.1", 1000, framing)
    assert feed.base(snapshot(None, positions=[start])) == []
    sent_positions: list[dict[str, Any]] = []
    for record in (
        ledger.filled(1, "1", "130"),
        ledger.filled(2, "2", "150", te.OrderSide.SELL),
        ledger.filled(3, "3", "120", te.OrderSide.SELL),
    ):
        sent_positions.extend(
            m["position"] for m in decoded(feed.take(record) or []) if m["type"] == "position"
        )
    expected = [
        Position(instrument=XBT, quantity=D(3), average_price=D(110)),
        Position(instrument=XBT, quantity=D(1), average_price=D(110), realised=D(80)),
        Position(instrument=XBT, quantity=D(-2), average_price=D(120), realised=D(90)),
    ]
    assert sent_positions == [json.loads(position_json(p)) for p in expected]
    assert feed.positions[XBT] == expected[-1]


def test_feeds_nobody_subscribes_to_are_bounded() -> None:
    registry = TradingFeeds(EPOCH, 10, 2, framing)
    feeds = [registry.feed(account) for account in range(5)]
    assert sorted(registry.feeds) == [3, 4]
    assert len({feed.epoch for feed in feeds}) == 5  # a feed made again is another epoch
    watcher = Watcher()
    registry.subscribe(watcher, registry.feed(3), ORDERS)
    for account in range(10, 14):
        registry.feed(account)
    assert 3 in registry.feeds  # subscribed: kept
    registry.detach(watcher)
    registry.feed(20)
    registry.feed(21)
    assert 3 not in registry.feeds


# -- the session ------------------------------------------------------------------------------


class Private:
    """A core, its hub and a watcher of the account's channels; requests in, messages out."""

    def __init__(
        self,
        principal_grant: Grant | None = None,
        hub: Hub | None = None,
        private: bool = True,
        alerts: bool = True,
    ) -> None:
        self.hub = hub or Hub(GatewaySettings(replay_buffer=20), EPOCH, framing)
        self.client = Watcher()
        self.now = 0.0
        g = grant() if principal_grant is None else principal_grant
        principal = Principal(g.subject, frozenset({"read:*"}), None, g)
        self.protocol = ConnectionProtocol(self.hub.settings, principal, self.now)
        self.core = SessionCore(
            self.hub, self.client, self.protocol, Directory(self.hub, False),
            storage=False, private=private, alerts=alerts,
        )  # fmt: skip

    def send(self, **body: Any) -> list[Action]:
        self.now += 0.001
        return self.core.receive(json.dumps(body), self.now)

    def publish(self, records: list[te.TradingRecord]) -> None:
        for record in records:
            self.hub.trading(record)
        self.hub.flush()

    def drive(self, actions: list[Action], answer: PrivateSnapshot) -> list[dict[str, Any]]:
        """Answer the core's reads with ``answer`` (and its waits for the feed with yes)
        until it waits for nothing; the messages it sent meanwhile."""
        messages: list[dict[str, Any]] = []
        while True:
            messages.extend(sent(actions))
            wait = actions[-1] if actions else None
            if isinstance(wait, ReadPrivate):
                actions = self.core.answer(answer)
            elif isinstance(wait, AwaitFeed):
                actions = self.core.answer(True)
            else:
                assert self.core.pending is None
                return messages


def test_subscribe_reads_a_snapshot_then_the_live_records_follow_numbered() -> None:
    ledger = Ledger()
    session = Private()
    actions = session.send(op="subscribe", id=1, channel=ORDERS, snapshot=50)
    assert actions == [ReadAccount(ACCOUNT, 50)]
    early = ledger.submitted(10)
    session.publish([early, ledger.accepted(11)])  # during the read: the snapshot holds one
    messages = session.drive(actions, snapshot(early))
    epoch = session.hub.trading_feeds.feeds[ACCOUNT].epoch
    assert messages == [
        {"type": "subscribed", "id": 1, "channel": ORDERS, "account": ACCOUNT, "epoch": epoch},
        {
            "type": "snapshot", "channel": ORDERS, "account": ACCOUNT, "epoch": epoch,
            "seq": 0, "reset": False, "orders": [{"order_id": "o-0"}],
        },
        {
            "type": "order", "channel": ORDERS, "account": ACCOUNT, "seq": 1,
            "event": {
                "kind": "order-accepted", "account": ACCOUNT, "ts": 11, "v": 1,
                "order_id": "o-1", "venue_order_id": "v",
            },
        },
    ]  # fmt: skip
    session.publish([ledger.filled(12, "1", "100")])
    assert [(m["type"], m["seq"]) for m in session.client.written] == [("order", 2)]


def test_a_later_subscriber_joins_at_its_snapshots_seq_and_gets_what_came_after() -> None:
    ledger = Ledger()
    first = Private()
    first.drive(first.send(op="subscribe", id=1, channel=FILLS), snapshot(None))
    records = [ledger.submitted(1), ledger.filled(2, "1", "100"), ledger.filled(3, "1", "101")]
    first.publish(records)
    second = Private(hub=first.hub)
    fill = records[1].event
    assert isinstance(fill, te.OrderFilled)
    messages = second.drive(
        second.send(op="subscribe", id=1, channel=FILLS), snapshot(records[1], fills=[fill])
    )
    assert types(messages) == ["subscribed", "snapshot", "fill"]
    assert (messages[1]["seq"], [f["fill_id"] for f in messages[1]["fills"]]) == (1, ["f-2"])
    assert (messages[2]["seq"], messages[2]["fill"]["fill_id"]) == (2, "f-3")
    assert [m["seq"] for m in first.client.written] == [1, 2]


def test_a_snapshot_ahead_of_the_feed_waits_for_the_records_it_holds() -> None:
    ledger = Ledger()
    first = Private()
    first.drive(first.send(op="subscribe", id=1, channel=ORDERS), snapshot(None))
    records = [ledger.submitted(1), ledger.accepted(2)]
    second = Private(hub=first.hub)
    actions = second.send(op="subscribe", id=1, channel=ORDERS)
    ahead = snapshot(records[1])
    actions = second.core.answer(ahead)  # the read models are ahead
    feed = first.hub.trading_feeds.feeds[ACCOUNT]
    wait = first.hub.settings.private_wait
    assert actions == [AwaitFeed(ORDERS, ACCOUNT, feed.epoch, ahead, wait)]
    first.publish(records)
    messages = sent(second.core.answer(True))
    assert types(messages) == ["subscribed", "snapshot"]
    assert messages[1]["seq"] == 2  # current to both records: neither is sent again
    first.publish([ledger.accepted(3, "o-2")])
    assert [m["seq"] for m in second.client.written] == [3]


def test_resume_within_the_buffer_sends_exactly_the_missed_messages() -> None:
    ledger = Ledger()
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=ORDERS), snapshot(None))
    epoch = session.hub.trading_feeds.feeds[ACCOUNT].epoch
    session.publish([ledger.submitted(1), ledger.accepted(2), ledger.accepted(3, "o-2")])
    again = Private(hub=session.hub)
    messages = sent(again.send(op="resume", id=2, channel=ORDERS, seq=1, epoch=epoch))
    assert types(messages) == ["subscribed", "order", "order"]
    assert [m["seq"] for m in messages[1:]] == [2, 3]
    assert again.core.pending is None


@pytest.mark.parametrize("case", ["other epoch", "beyond the buffer", "seq never issued"])
def test_resume_otherwise_gets_a_reset_snapshot(case: str) -> None:
    ledger = Ledger()
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=ORDERS), snapshot(None))
    epoch = session.hub.trading_feeds.feeds[ACCOUNT].epoch
    session.publish([ledger.reserved(nid) for nid in range(1, 40)])
    session.publish([ledger.submitted(40)])
    seq = {"other epoch": 1, "beyond the buffer": 0, "seq never issued": 5}[case]
    sent_epoch = "elsewhere.1" if case == "other epoch" else epoch
    if case == "beyond the buffer":
        session.publish([ledger.accepted(nid) for nid in range(41, 70)])
    again = Private(hub=session.hub)
    actions = again.send(op="resume", id=2, channel=ORDERS, seq=seq, epoch=sent_epoch)
    assert isinstance(actions[-1], ReadAccount)
    messages = again.drive(actions, snapshot(ledger.records[-1]))
    assert types(messages) == ["subscribed", "snapshot"]
    assert messages[1]["reset"] is True
    assert messages[1]["seq"] == session.hub.trading_feeds.feeds[ACCOUNT].channels[ORDERS].seq


@pytest.mark.parametrize(
    ("who", "why"),
    [
        (None, "anonymous"),
        (grant(scopes=("read",)), "read-only token"),
        (grant(account=None), "no account"),
    ],
)
def test_a_principal_that_may_not_trade_is_refused_with_our_code(
    who: Grant | None, why: str
) -> None:
    session = Private(principal_grant=grant())
    if who is None:
        session.protocol.principal = Principal("anonymous", frozenset({"read:*"}))
    else:
        session.protocol.principal = Principal(who.subject, frozenset({"read:*"}), None, who)
    for kind in (ORDERS, FILLS, POSITIONS):
        [message] = sent(session.send(op="subscribe", id=3, channel=kind))
        assert (message["type"], message["code"], message["field"]) == (
            "error", "not_entitled", "channel"
        ), why  # fmt: skip
    assert session.hub.trading_feeds.feeds == {}


def test_private_channels_take_no_instrument() -> None:
    session = Private()
    [message] = sent(session.send(op="subscribe", id=1, channel=FILLS, instrument=XBT))
    assert (message["code"], message["field"]) == ("bad_request", "instrument")


def test_without_a_read_interface_private_channels_are_unavailable() -> None:
    session = Private(private=False)
    [message] = sent(session.send(op="subscribe", id=1, channel=POSITIONS))
    assert (message["code"], message["field"]) == ("unavailable", "channel")


def test_a_failed_snapshot_read_is_unavailable_and_the_session_carries_on() -> None:
    session = Private()
    session.send(op="subscribe", id=1, channel=ORDERS)
    [message] = sent(session.core.failed(OSError("connection refused")))
    assert (message["type"], message["code"], message["field"], message["id"]) == (
        "error", "unavailable", "channel", 1
    )  # fmt: skip
    assert session.core.pending is None
    assert sent(session.send(op="ping", id=2)) == [{"type": "pong", "id": 2}]
    assert ChannelKey(ORDERS, "") not in session.protocol.subscriptions


def test_snapshots_that_never_follow_on_are_given_up_after_some_reads() -> None:
    ledger = Ledger()
    older = ledger.submitted(1)
    ledger.accepted(2)
    session = Private()
    actions = session.send(op="subscribe", id=1, channel=ORDERS)
    session.publish([ledger.accepted(3, "o-2")])  # version 3: version 2 never came
    reads = 0
    while isinstance(actions[-1], ReadAccount):
        reads += 1
        actions = session.core.answer(snapshot(older))
    assert reads == private_reads(GatewaySettings().private_wait)  # about 5 s of reads
    [message] = sent(actions)
    assert (message["code"], message["field"]) == ("unavailable", "channel")


def test_another_accounts_records_reach_nobody_here() -> None:
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=ORDERS), snapshot(None))
    other = Ledger(OTHER)
    session.publish([other.submitted(1), other.accepted(2)])
    assert session.client.written == []
    assert OTHER not in session.hub.trading_feeds.feeds


def test_lost_records_drop_the_channels_with_an_error_naming_each() -> None:
    ledger = Ledger()
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=FILLS), snapshot(None))
    session.publish([ledger.submitted(1)])
    ledger.accepted(2)  # lost
    session.publish([ledger.filled(3, "1", "100")])
    assert session.client.written == [
        {
            "type": "error", "id": None, "code": "unavailable", "field": "channel",
            "message": "the fills channel missed records of the account: subscribe again",
            "channel": FILLS,
        }
    ]  # fmt: skip
    assert ACCOUNT not in session.hub.trading_feeds.feeds
    messages = session.drive(session.send(op="subscribe", id=2, channel=FILLS), snapshot(None))
    assert types(messages) == ["subscribed", "snapshot"]


def test_unsubscribe_stops_the_channel() -> None:
    ledger = Ledger()
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=ORDERS), snapshot(None))
    assert sent(session.send(op="unsubscribe", id=2, channel=ORDERS)) == [
        {"type": "unsubscribed", "id": 2, "channel": ORDERS}
    ]
    session.publish([ledger.submitted(1)])
    assert session.client.written == []
