"""The ``alerts`` channel, sans I/O: the account's feed (seq, repeats by ``fire_id``, the
snapshot/live join when the main API records a firing before or after the bus carries it)
and the session's subscribe, resume and refusals.

Every test builds the feed, or a :class:`SessionCore` on a hub, directly: firings in, the
actions and messages out. No socket, no database and no event loop.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from core.alert_reads import AlertsSnapshot, fired_json
from core.alerts import AlertFired, AlertSpec, Condition, fired
from ws_gateway.alert_feed import PENDING_FIRINGS, RECENT_PER_FEED, AlertFeed, AlertFeeds
from ws_gateway.auth import Principal
from ws_gateway.private import WAIT
from ws_gateway.session_core import AwaitFeed, ReadAlerts
from ws_gateway.wire import ALERTS

from .test_private import ACCOUNT, OTHER, XBT, Private, decoded, grant
from .test_session_core import EPOCH, framing, sent, types


def firing(n: int, account: int = ACCOUNT, arming: int = 1) -> AlertFired:
    """Alert ``a-<n>`` of ``account`` firing (its ``arming``) at price ``100+n``."""
    spec = AlertSpec(
        alert_id=f"a-{n}", account=account, instrument=XBT, condition=Condition.ABOVE,
        threshold=Decimal(100),
    )  # fmt: skip
    return fired(spec, arming, Decimal(100 + n), ts=n * 1_000_000_000, gap=False, trade_id=n)


def recorded(
    *events: AlertFired, shown: int | None = None, unread: int = 0, named: bool = True
) -> AlertsSnapshot:
    """The main API's snapshot once ``events`` were recorded (it shows the newest ``shown``;
    ``named``: it hands every firing it names, as ``main_api.alert_reads`` does)."""
    shows = list(events) if shown is None else list(events)[len(events) - shown :] if shown else []
    return AlertsSnapshot(
        account=ACCOUNT,
        fire_ids=tuple(event.fire_id for event in events),
        firings=shows,
        unread=len(events) if unread == 0 else unread,
        named=tuple(events) if named else (),
    )


def based(*held: AlertFired, kept: tuple[AlertFired, ...] = ()) -> AlertFeed:
    """A feed based on a snapshot holding ``held``, having kept ``kept`` during the read."""
    feed = AlertFeed(ACCOUNT, "e.1", 1000, framing)
    for event in kept:
        assert feed.take(event) == []
    feed.base(recorded(*held))
    return feed


def taken(feed: AlertFeed, *events: AlertFired) -> list[dict[str, Any]]:
    return decoded([delivery for event in events for delivery in feed.take(event)])


# -- the feed ---------------------------------------------------------------------------------


def test_firings_are_numbered_from_one_and_a_repeat_fire_id_is_dropped() -> None:
    feed = based()
    first, second = firing(1), firing(2)
    messages = taken(feed, first, second, first, firing(1), second)
    assert [(m["type"], m["channel"], m["account"], m["seq"]) for m in messages] == [
        ("alert", ALERTS, ACCOUNT, 1), ("alert", ALERTS, ACCOUNT, 2)
    ]  # fmt: skip
    assert messages[0]["alert"] == json.loads(fired_json(first))
    assert messages[0]["alert"]["kind"] == "alert-fired"
    assert messages[0]["alert"]["price"] == "101"  # prices as decimal strings
    assert feed.repeats == 3
    rearmed = firing(1, arming=2)  # the same alert armed again is another firing
    assert [m["seq"] for m in taken(feed, rearmed)] == [3]


def test_a_snapshot_ahead_of_the_bus_drops_the_firings_it_holds_when_they_come() -> None:
    events = [firing(1), firing(2)]
    feed = based(*events)  # the main API recorded them before the bus carried them
    assert taken(feed, *events) == []
    assert [m["seq"] for m in taken(feed, firing(3))] == [1]


def test_firings_kept_during_the_read_are_sent_once_after_the_snapshot() -> None:
    early, late = firing(1), firing(2)
    feed = based(early, kept=(early, late, early))  # the snapshot holds the first
    assert feed.channel.seq == 1
    [delivery] = feed.channel.missed(0) or []
    assert json.loads(delivery.payload)["alert"]["fire_id"] == late.fire_id
    assert taken(feed, late, early) == []


def test_firings_the_bus_carried_before_the_feed_are_sent_when_the_snapshot_lacks_them() -> None:
    """The race of a snapshot older than the bus: the firing was published, then the feed
    made, then the snapshot read before the main API recorded the firing."""
    feeds = AlertFeeds(EPOCH, 100, 10, framing)
    published, recorded_before = firing(1), firing(2)
    feeds.take(recorded_before)
    feeds.take(published)  # nobody subscribed: remembered, not sent
    feeds.take(firing(9, account=OTHER))
    feed = feeds.feed(ACCOUNT)
    deliveries = feed.base(recorded(recorded_before))
    assert [json.loads(d.payload)["alert"]["fire_id"] for d in deliveries] == [published.fire_id]
    assert feeds.take(published) == []  # when it comes again, it is a repeat


def test_an_unbased_feed_keeps_a_bounded_number_of_firings() -> None:
    feed = AlertFeed(ACCOUNT, "e.1", 10, framing)
    for n in range(PENDING_FIRINGS + 5):
        feed.take(firing(n))
    assert len(feed.pending) == PENDING_FIRINGS
    assert next(iter(feed.pending)) == firing(5).fire_id  # the oldest went first


def test_join_point_is_the_seq_of_the_newest_firing_the_snapshot_holds() -> None:
    feed = based()
    events = [firing(n) for n in range(1, 5)]
    taken(feed, *events)
    assert feed.join_point(ALERTS, recorded(*events[:2])) == 2
    assert feed.join_point(ALERTS, recorded(*events)) == 4
    assert feed.join_point(ALERTS, recorded()) == 0  # the main API lags: all four after it


def test_a_snapshot_naming_a_firing_not_yet_on_the_bus_waits_for_it() -> None:
    feed = based()
    events = [firing(1), firing(2)]
    taken(feed, events[0])
    ahead = recorded(*events)
    assert not feed.ready(ahead)
    assert feed.join_point(ALERTS, ahead) is WAIT
    taken(feed, events[1])
    assert feed.ready(ahead)
    assert feed.join_point(ALERTS, ahead) == 2


def test_a_snapshot_with_a_hole_in_what_was_sent_is_read_again() -> None:
    feed = based()
    events = [firing(n) for n in range(1, 4)]
    taken(feed, *events)
    assert feed.join_point(ALERTS, recorded(events[0], events[2])) is None


def test_a_snapshot_older_than_the_remembered_firings_is_read_again() -> None:
    feed = AlertFeed(ACCOUNT, "e.1", 3, framing)
    feed.base(recorded())
    taken(feed, *(firing(n) for n in range(1, 8)))
    assert feed.forgot
    assert feed.join_point(ALERTS, recorded()) is None
    assert feed.join_point(ALERTS, recorded(*(firing(n) for n in range(1, 6)))) == 5


def test_the_firings_of_accounts_without_a_feed_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ws_gateway.alert_feed.RECENT_FIRINGS", 3)
    feeds = AlertFeeds(EPOCH, 100, 10, framing)
    for n in range(5):
        feeds.take(firing(n))
    assert [event.fire_id for event in feeds.recent] == [firing(n).fire_id for n in (2, 3, 4)]


# -- the session ------------------------------------------------------------------------------


def fire(session: Private, *events: AlertFired) -> None:
    for event in events:
        session.hub.alert(event)
    session.hub.flush()


def test_subscribe_reads_a_snapshot_then_live_firings_follow_numbered() -> None:
    session = Private()
    actions = session.send(op="subscribe", id=1, channel=ALERTS, snapshot=20)
    assert actions == [ReadAlerts(ACCOUNT, 20)]
    old, during = firing(1), firing(2)
    fire(session, during)  # published during the read, recorded after it
    messages = session.drive(actions, recorded(old, unread=1))
    epoch = session.hub.alert_feeds.feeds[ACCOUNT].epoch
    assert messages == [
        {"type": "subscribed", "id": 1, "channel": ALERTS, "account": ACCOUNT, "epoch": epoch},
        {
            "type": "snapshot", "channel": ALERTS, "account": ACCOUNT, "epoch": epoch,
            "seq": 0, "reset": False, "unread": 1, "alerts": [json.loads(fired_json(old))],
        },
        {
            "type": "alert", "channel": ALERTS, "account": ACCOUNT, "seq": 1,
            "alert": json.loads(fired_json(during)),
        },
    ]  # fmt: skip
    fire(session, firing(3), during, firing(4, account=OTHER))
    assert [(m["seq"], m["alert"]["fire_id"]) for m in session.client.written] == [
        (2, firing(3).fire_id)
    ]
    assert OTHER not in session.hub.alert_feeds.feeds


def test_a_later_subscriber_waits_for_a_firing_recorded_before_the_bus_carried_it() -> None:
    first = Private()
    first.drive(first.send(op="subscribe", id=1, channel=ALERTS), recorded())
    events = [firing(1), firing(2)]
    fire(first, events[0])
    second = Private(hub=first.hub)
    second.send(op="subscribe", id=1, channel=ALERTS)
    ahead = recorded(*events)
    actions = second.core.answer(ahead)
    feed = first.hub.alert_feeds.feeds[ACCOUNT]
    assert actions == [
        AwaitFeed(ALERTS, ACCOUNT, feed.epoch, ahead, first.hub.settings.private_wait)
    ]
    fire(first, events[1])
    messages = sent(second.core.answer(True))
    assert types(messages) == ["subscribed", "snapshot"]
    assert messages[1]["seq"] == 2  # current to both: neither is sent again
    fire(first, firing(3))
    assert [m["seq"] for m in second.client.written] == [3]
    assert [m["seq"] for m in first.client.written] == [1, 2, 3]


def test_a_recorded_firing_the_bus_never_brings_is_sent_from_the_snapshot_after_the_wait() -> None:
    """An evaluator that recorded a firing and stopped before publishing it: the later
    subscriber does not wait for ever, and the earlier one still hears of it, once."""
    first = Private()
    first.drive(first.send(op="subscribe", id=1, channel=ALERTS), recorded())
    stuck = firing(1)
    second = Private(hub=first.hub)
    second.send(op="subscribe", id=1, channel=ALERTS)
    actions = second.core.answer(recorded(stuck))
    assert isinstance(actions[-1], AwaitFeed)
    messages = sent(second.core.answer(False))  # the wait ran out
    assert types(messages) == ["subscribed", "snapshot"]
    assert (messages[1]["seq"], messages[1]["alerts"]) == (1, [json.loads(fired_json(stuck))])
    assert [(m["seq"], m["alert"]["fire_id"]) for m in first.client.written] == [(1, stuck.fire_id)]
    fire(first, stuck)  # published at last: a repeat
    assert len(first.client.written) == 1
    assert second.client.written == []


def test_a_late_firing_reaches_earlier_subscribers_whatever_the_snapshot_shows() -> None:
    """A later subscriber asking for no snapshot rows (``snapshot: 0``) must not decide that
    the earlier subscribers never hear of a firing the bus is late with."""
    first = Private()
    first.drive(first.send(op="subscribe", id=1, channel=ALERTS), recorded())
    late = firing(1)
    second = Private(hub=first.hub)
    second.send(op="subscribe", id=1, channel=ALERTS, snapshot=0)
    actions = second.core.answer(recorded(late, shown=0))
    assert isinstance(actions[-1], AwaitFeed)
    messages = sent(second.core.answer(False))  # the wait ran out
    assert types(messages) == ["subscribed", "snapshot"]
    assert (messages[1]["seq"], messages[1]["alerts"]) == (1, [])
    assert [(m["seq"], m["alert"]["fire_id"]) for m in first.client.written] == [(1, late.fire_id)]
    fire(first, late)  # published at last: a repeat
    assert len(first.client.written) == 1


def test_a_new_feed_starts_with_at_most_its_accounts_newest_remembered_firings() -> None:
    feeds = AlertFeeds(EPOCH, 100, 10, framing)
    for n in range(RECENT_PER_FEED + 20):
        feeds.take(firing(n))
    feed = feeds.feed(ACCOUNT)
    assert list(feed.pending) == [firing(n).fire_id for n in range(20, RECENT_PER_FEED + 20)]


def test_resume_within_the_buffer_sends_exactly_the_missed_firings() -> None:
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=ALERTS), recorded())
    epoch = session.hub.alert_feeds.feeds[ACCOUNT].epoch
    fire(session, firing(1), firing(2), firing(3))
    again = Private(hub=session.hub)
    messages = sent(again.send(op="resume", id=2, channel=ALERTS, seq=1, epoch=epoch))
    assert types(messages) == ["subscribed", "alert", "alert"]
    assert [m["seq"] for m in messages[1:]] == [2, 3]
    assert again.core.pending is None


def test_resume_in_another_epoch_gets_a_reset_snapshot() -> None:
    session = Private()
    session.drive(session.send(op="subscribe", id=1, channel=ALERTS), recorded())
    events = [firing(1), firing(2)]
    fire(session, *events)
    again = Private(hub=session.hub)
    actions = again.send(op="resume", id=2, channel=ALERTS, seq=1, epoch="elsewhere.1")
    assert isinstance(actions[-1], ReadAlerts)
    messages = again.drive(actions, recorded(*events))
    assert types(messages) == ["subscribed", "snapshot"]
    assert (messages[1]["reset"], messages[1]["seq"]) == (True, 2)
    assert [a["fire_id"] for a in messages[1]["alerts"]] == [e.fire_id for e in events]


@pytest.mark.parametrize("why", ["anonymous", "no account"])
def test_a_principal_without_an_account_is_refused_with_our_code(why: str) -> None:
    session = Private()
    if why == "anonymous":
        session.protocol.principal = Principal("anonymous", frozenset({"read:*"}))
    else:
        nobody = grant(account=None)
        session.protocol.principal = Principal(nobody.subject, frozenset({"read:*"}), None, nobody)
    [message] = sent(session.send(op="subscribe", id=3, channel=ALERTS))
    assert (message["type"], message["code"], message["field"], message["id"]) == (
        "error", "not_entitled", "channel", 3
    )  # fmt: skip
    assert (
        message["message"] == "alerts is an account's own channel: it needs a token of an account"
    )
    assert session.hub.alert_feeds.feeds == {}


def test_an_account_that_may_not_trade_still_has_its_alerts() -> None:
    session = Private(principal_grant=grant(scopes=("read",)))
    [message] = sent(session.send(op="subscribe", id=1, channel="orders"))
    assert message["code"] == "not_entitled"
    assert session.send(op="subscribe", id=2, channel=ALERTS) == [ReadAlerts(ACCOUNT, 100)]


def test_without_the_main_apis_database_the_channel_is_unavailable() -> None:
    session = Private(alerts=False)
    [message] = sent(session.send(op="subscribe", id=1, channel=ALERTS))
    assert (message["code"], message["field"]) == ("unavailable", "channel")
    assert message["message"] == (
        "this gateway does not serve the alerts channel: it does not read the main API's database"
    )


def test_a_failed_read_is_unavailable_and_the_session_carries_on() -> None:
    session = Private()
    session.send(op="subscribe", id=1, channel=ALERTS)
    [message] = sent(session.core.failed(OSError("connection refused")))
    assert (message["code"], message["field"], message["id"]) == ("unavailable", "channel", 1)
    assert message["message"] == "the main API's database did not answer: retry later"
    assert sent(session.send(op="ping", id=2)) == [{"type": "pong", "id": 2}]


def test_the_alerts_channel_takes_no_instrument() -> None:
    session = Private()
    [message] = sent(session.send(op="subscribe", id=1, channel=ALERTS, instrument=XBT))
    assert (message["code"], message["field"]) == ("bad_request", "instrument")
