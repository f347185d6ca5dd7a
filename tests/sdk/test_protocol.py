"""The stream's rules without a socket (``sdk.protocol.StreamCore``): what goes out on a new
connection, which updates reach the bot, and how gaps, repeats and conflation are handled."""

from __future__ import annotations

import json
from typing import Any

from sdk import Backoff, CandleUpdate, Conflated, Gap, Snapshot
from sdk.protocol import StreamCore
from sdk.wire import Channel, Error

BTC = Channel("candles", "SYNTH:BTCUSD", "1m")
TICKS = Channel("ticks", "SYNTH:BTCUSD")
WHERE = {"channel": "candles", "instrument": "SYNTH:BTCUSD", "interval": "1m"}


def frame(**body: Any) -> str:
    return json.dumps(body)


def candle(open_time: int = 0, revision: int = 0) -> dict[str, Any]:
    return {
        "instrument": "SYNTH:BTCUSD",
        "interval": "1m",
        "open_time": open_time,
        "open": "1.5",
        "high": "2",
        "low": "1",
        "close": "1.75",
        "volume": "3",
        "quote_volume": "4.5",
        "vwap": "1.5",
        "taker_buy_volume": "1",
        "trades": 2,
        "first_trade_id": 1,
        "last_trade_id": 2,
        "revision": revision,
        "status": "open",
        "gap": False,
    }


def update(seq: int, open_time: int = 0) -> str:
    return frame(type="candle", **WHERE, seq=seq, candle=candle(open_time, seq))


def sent(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(text) for text in frames]


def subscribed_core(seq: int = 10, epoch: str = "e1") -> StreamCore:
    """A core holding BTC 1m, subscribed and past a snapshot current to ``seq``."""
    core = StreamCore()
    rid, _ = core.subscribe(BTC)
    core.connected(None)
    assert core.receive(frame(type="subscribed", id=rid, **WHERE, epoch=epoch)).answered
    core.receive(frame(type="snapshot", **WHERE, epoch=epoch, seq=seq, reset=False, candles=[]))
    return core


def seqs(core: StreamCore, *frames: str) -> list[int]:
    """The seqs of the updates delivered for ``frames``."""
    out = []
    for text in frames:
        out += [m.seq for m in core.receive(text).messages if isinstance(m, CandleUpdate)]
    return out


def test_requests_wait_for_a_connection_and_the_token_goes_first() -> None:
    core = StreamCore()
    rid, now = core.subscribe(BTC, snapshot=50)
    assert now == []  # not connected: sent on connect
    (auth,) = sent(core.connected("the-token"))
    assert (auth["op"], auth["token"]) == ("auth", "the-token")
    requests = core.receive(frame(type="authenticated", id=auth["id"], plan="pro", expires=9))
    assert sent(requests.send) == [{"op": "subscribe", "id": rid, **WHERE, "snapshot": 50}]
    assert core.expires == 9
    later, frames = core.subscribe(TICKS)
    assert sent(frames) == [
        {"op": "subscribe", "id": later, "channel": "ticks", "instrument": "SYNTH:BTCUSD"}
    ]


def test_a_subscribe_sent_again_after_a_reconnect_keeps_its_id() -> None:
    core = StreamCore()
    rid, _ = core.subscribe(BTC)
    core.connected(None)
    core.disconnected()
    (again,) = sent(core.connected(None))
    assert (again["op"], again["id"]) == ("subscribe", rid)
    assert core.receive(frame(type="subscribed", id=rid, **WHERE, epoch="e")).answered[0].id == rid


def test_a_reconnect_resumes_from_the_last_update_delivered_and_its_epoch() -> None:
    core = subscribed_core(seq=10, epoch="e1")
    assert seqs(core, update(11), update(12)) == [11, 12]
    core.disconnected()
    (resume,) = sent(core.connected(None))
    assert resume == {"op": "resume", "id": resume["id"], **WHERE, "seq": 12, "epoch": "e1"}


def test_an_update_already_delivered_is_dropped() -> None:
    core = subscribed_core(seq=10)
    assert seqs(core, update(11), update(11), update(10), update(12)) == [11, 12]
    assert core.dropped_repeats == 2


def test_a_jump_without_conflated_resumes_on_the_same_connection() -> None:
    core = subscribed_core(seq=10, epoch="e1")
    assert seqs(core, update(11)) == [11]
    jumped = core.receive(update(14))
    assert jumped.messages == []
    (resume,) = sent(jumped.send)
    assert (resume["op"], resume["seq"], resume["epoch"]) == ("resume", 11, "e1")
    assert seqs(core, update(15)) == []  # held back until the resume is answered
    core.receive(frame(type="subscribed", id=resume["id"], **WHERE, epoch="e1"))
    assert seqs(core, update(12), update(13), update(14), update(15)) == [12, 13, 14, 15]


def test_conflated_allows_exactly_the_numbers_it_announces_to_be_skipped() -> None:
    core = subscribed_core(seq=10)
    told = core.receive(frame(type="conflated", **WHERE, dropped=3))
    assert isinstance(told.messages[0], Conflated)
    assert seqs(core, update(12), update(15), update(16)) == [12, 15, 16]  # 11, 13, 14 skipped
    assert core.receive(update(18)).send  # one more skip than announced: resume


def test_a_reset_snapshot_starts_the_numbers_over() -> None:
    core = subscribed_core(seq=500, epoch="old")
    reset = frame(type="snapshot", **WHERE, epoch="new", seq=7, reset=True, candles=[candle()])
    (snapshot,) = core.receive(reset).messages
    assert isinstance(snapshot, Snapshot)
    assert snapshot.reset
    assert str(snapshot.candles[0].close) == "1.75"
    assert seqs(core, update(8)) == [8]


def test_a_feed_gap_notice_is_delivered_once() -> None:
    core = subscribed_core()
    notice = frame(type="gap", instrument="SYNTH:BTCUSD", start=1, end=2, reason="sequence")
    assert [type(m) for m in core.receive(notice).messages] == [Gap]
    assert core.receive(notice).messages == []


def test_a_refused_subscription_is_answered_with_the_error_and_not_held() -> None:
    core = StreamCore()
    rid, _ = core.subscribe(BTC)
    core.connected(None)
    refused = frame(type="error", id=rid, code="unknown_instrument", message="no", field="x")
    (answer,) = core.receive(refused).answered
    assert (answer.id, answer.error and answer.error.code) == (rid, "unknown_instrument")
    core.disconnected()
    assert core.connected(None) == []


def test_a_channel_dropped_by_the_gateway_is_told_and_not_resumed() -> None:
    core = subscribed_core()
    dropped = frame(type="error", id=None, code="forbidden", message="plan", **WHERE)
    (told,) = core.receive(dropped).messages
    assert isinstance(told, Error)
    assert told.code == "forbidden"
    core.disconnected()
    assert core.connected(None) == []


def test_unknown_types_and_fields_are_ignored() -> None:
    core = subscribed_core(seq=1)
    assert core.receive(frame(type="heartbeat", ts=5)).messages == []
    assert core.receive(frame(type="news-from-the-future", x=1)).messages == []
    extra = frame(type="candle", **WHERE, seq=2, candle=candle() | {"new": 1}, more=True)
    assert seqs(core, extra) == [2]


def test_the_backoff_grows_to_its_cap_with_full_jitter() -> None:
    highest = Backoff(base=0.5, cap=4.0, uniform=lambda low, high: high)
    assert [highest.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    lowest = Backoff(uniform=lambda low, high: low)
    assert lowest.delay(100) == 0.0
    assert all(0.0 <= Backoff(cap=1.0).delay(n) <= 1.0 for n in range(50))
