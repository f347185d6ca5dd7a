"""Channels, outboxes and the fan-out, sans I/O: sequence numbers, replay, cache, conflation."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from core.candles import Candle, CandleStatus
from core.gaps import FeedGap, GapReason
from ws_gateway.channels import CandleChannel, Delivery, Part
from ws_gateway.gaps import GapNotice, GapNotices, Told
from ws_gateway.hub import Hub
from ws_gateway.outbox import Outbox
from ws_gateway.settings import GatewaySettings
from ws_gateway.wire import CANDLES, ChannelKey, candle_json, gap_message

from .market import BTC, ETH, final, gapped_updates, small_batches, updates


def framing(payload: bytes) -> bytes:
    return payload + b"\n"


def messages(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


class FakeClient:
    """A client of the hub that records what it was handed, and how many calls it took."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.written: list[dict[str, Any]] = []
        self.calls = 0
        self.active = False
        self.notified: list[int] = []

    def push(self, data: bytes, deliveries: list[Delivery]) -> None:
        assert data == b"".join(d.frame for d in deliveries)
        self.active = True
        self.calls += 1
        self.written.extend(messages(data))

    def push_parts(self, parts: list[Part]) -> None:
        self.active = True
        self.calls += 1
        for data, _ in parts:
            self.written.extend(messages(data))

    def send_frame(self, frame: bytes) -> None:
        self.written.extend(messages(frame))

    def notify(self, notice: GapNotice) -> None:
        self.notified.append(notice.number)
        self.written.extend(messages(notice.frame))

    def quiet(self) -> bool:
        active, self.active = self.active, False
        return not active


def hub(**settings: Any) -> Hub:
    return Hub(GatewaySettings(**settings), "epoch-1", framing)


def channel(h: Hub, label: str = "1s") -> CandleChannel:
    found = h.candle_channel(BTC, label)
    assert found is not None
    return found


def test_sequence_numbers_count_from_one_per_channel_and_every_client_sees_the_same() -> None:
    h = hub()
    one, two = FakeClient(h), FakeClient(h)
    second = channel(h, "1s")
    for client in (one, two):
        h.subscribe(client, second)
    stream = updates(label="1s")[:10] + updates(label="1m")[:3]
    for candle in stream:
        h.candle(candle)
    h.flush()
    assert [m["seq"] for m in one.written] == list(range(1, 11))
    assert one.written == two.written
    assert channel(h, "1m").seq == 3
    first = one.written[0]
    assert first["type"] == "candle"
    assert (first["channel"], first["instrument"], first["interval"]) == ("candles", BTC, "1s")
    assert first["candle"] == json.loads(candle_json(stream[0]))


def test_one_round_is_one_call_per_client_whatever_it_holds() -> None:
    h = hub()
    client, other = FakeClient(h), FakeClient(h)
    h.subscribe(client, channel(h, "1s"))
    h.subscribe(client, channel(h, "1m"))
    h.subscribe(other, channel(h, "1m"))
    for candle in updates()[:25] + updates(label="1m")[:5]:
        h.candle(candle)
    h.flush()
    assert (client.calls, other.calls) == (1, 1)
    assert len(client.written) == 30
    assert len(other.written) == 5
    assert h.delivered == 35
    for candle in updates()[25:30]:
        h.candle(candle)
    h.flush()
    assert (client.calls, other.calls) == (2, 1)


def test_updates_of_channels_nobody_reads_cost_no_round() -> None:
    h = hub()
    for candle in updates()[:5]:
        h.candle(candle)
    h.flush()
    assert h.delivered == 0
    assert channel(h).seq == 5


def test_a_revision_already_seen_is_not_sent_again() -> None:
    h = hub()
    client = FakeClient(h)
    h.subscribe(client, channel(h))
    stream = updates()[:20]
    for candle in stream + stream[5:15]:  # a replay after an upstream restart
        h.candle(candle)
    h.flush()
    assert [m["seq"] for m in client.written] == list(range(1, 21))
    assert channel(h).stale == 10


def test_replay_buffer_gives_exactly_the_missed_messages_or_none() -> None:
    h = hub(replay_buffer=50)
    c = channel(h)
    for candle in updates()[:120]:
        h.candle(candle)
    assert c.seq == 120
    missed = c.missed(100)
    assert missed is not None
    assert [d.seq for d in missed] == list(range(101, 121))
    assert c.missed(120) == []
    assert c.missed(70) is not None
    assert c.missed(69) is None  # buffer holds 71..120


def test_snapshot_holds_the_newest_candles_current_to_the_seq() -> None:
    h = hub()
    c = channel(h)
    stream = updates()
    for candle in stream:
        h.candle(candle)
    snapshot = c.snapshot(5, reset=False)
    snap = json.loads(snapshot.payload)
    latest = final(stream)
    newest = sorted(latest)[-5:]
    assert (snapshot.seq, snapshot.start_ns) == (len(stream), newest[0])
    assert snap["type"] == "snapshot"
    assert (snap["seq"], snap["reset"], snap["epoch"]) == (len(stream), False, "epoch-1")
    assert snap["candles"] == [json.loads(candle_json(latest[t])) for t in newest]
    empty = c.snapshot(0, reset=True)
    assert json.loads(empty.payload)["candles"] == []
    assert empty.start_ns is None


def test_snapshot_merges_storage_by_revision() -> None:
    h = hub()
    c = channel(h)
    stream = updates()
    latest = sorted(final(stream).values(), key=lambda candle: candle.open_time)
    older, recent = latest[:10], stream[len(stream) // 2 :]
    for candle in recent:
        h.candle(candle)
    stale = [candle for candle in stream if candle.open_time == recent[0].open_time][:1]
    snap = json.loads(c.snapshot(100, reset=False, older=older + stale).payload)
    times = [bar["open_time"] for bar in snap["candles"]]
    assert times == sorted(times)
    by_time = {bar["open_time"]: bar for bar in snap["candles"]}
    newest_of_first = final(recent)[recent[0].open_time]
    assert by_time[recent[0].open_time // 1_000_000]["revision"] == newest_of_first.revision
    assert {c.open_time // 1_000_000 for c in older} <= set(by_time)


def test_cache_evicts_the_least_recently_updated_and_logs_it() -> None:
    h = hub(cache_candles=1000, max_snapshot=1000)
    c = channel(h)
    c.cache_candles = 5  # a tiny cache for the test
    stream = updates()
    for candle in stream:
        h.candle(candle)
    assert len(c.cache) == 5
    assert len(c.evicted) == len(final(stream)) - 5
    seqs = [entry.seq for entry in c.evicted]
    assert seqs == sorted(seqs)
    newest = sorted(final(stream))[-5:]
    assert sorted(c.cache) == newest
    assert c.complete_from == newest[0]


def test_catch_up_from_the_cache_is_the_latest_version_of_each_changed_candle() -> None:
    h = hub(replay_buffer=10)
    c = channel(h)
    stream = updates()
    for candle in stream[:100]:
        h.candle(candle)
    seen = 60
    for candle in stream[100:]:
        h.candle(candle)
    assert c.missed(seen) is None
    evicted = c.evicted_since(seen)
    assert evicted == []
    catch_up = c.catch_up(seen, evicted, [])
    changed = final(stream[seen:])
    assert [json.loads(body) for _, body in catch_up.updates] == [
        json.loads(candle_json(candle))
        for candle in sorted(changed.values(), key=lambda x: x.open_time)
    ]
    seqs = [seq for seq, _ in catch_up.updates]
    assert seqs == sorted(seqs)
    assert seqs[-1] == c.seq
    assert catch_up.dropped == len(stream) - seen - len(changed)


def test_catch_up_needs_storage_for_evicted_candles() -> None:
    h = hub(replay_buffer=10)
    c = channel(h)
    c.cache_candles = 3
    stream = updates()
    for candle in stream:
        h.candle(candle)
    evicted = c.evicted_since(20)
    assert evicted
    stored = list(final(stream).values())
    catch_up = c.catch_up(20, evicted, stored)
    applied: dict[int, dict[str, Any]] = {}
    for _, body in catch_up.updates:
        bar = json.loads(body)
        applied[bar["open_time"]] = bar
    expected = final(stream[20:])
    assert applied == {
        t // 1_000_000: json.loads(candle_json(candle)) for t, candle in expected.items()
    }
    stale = [candle for candle in stream if candle.open_time == evicted[0].open_time][:1]
    try:
        c.catch_up(20, evicted, stale)
    except LookupError:
        pass
    else:
        raise AssertionError("an older revision in storage must not pass for the latest")


def test_eviction_log_that_no_longer_reaches_back_says_so() -> None:
    h = hub()
    c = channel(h)
    c.cache_candles = 1
    c.evicted = type(c.evicted)(maxlen=3)
    for candle in updates():
        h.candle(candle)
    assert c.log_floor > 0
    assert c.evicted_since(c.log_floor - 1) is None
    assert c.evicted_since(c.log_floor) is not None


def test_tick_batches_are_split_and_sequenced() -> None:
    h = hub(max_tick_batch=3)
    client = FakeClient(h)
    ticks = h.tick_channel(BTC)
    h.subscribe(client, ticks)
    batch = small_batches((BTC, ETH), rows=7)[0]
    h.ticks(batch)
    h.flush()
    if batch.instrument != BTC:
        assert client.written == []
        return
    assert [m["seq"] for m in client.written] == [1, 2, 3]
    rows = [tick for m in client.written for tick in m["ticks"]]
    assert [tick["trade_id"] for tick in rows] == batch.trade_id.tolist()
    first = batch.tick(0)
    assert rows[0] == {
        "trade_id": first.trade_id,
        "price": str(first.price),
        "size": str(first.size),
        "side": first.side.name.lower(),
        "ts_event": first.ts_event,
    }
    snapshot = ticks.snapshot(2, reset=False)
    snap = json.loads(snapshot.payload)
    assert snap["ticks"] == rows[-2:]
    assert snapshot.start_ns == min(tick["ts_event"] for tick in rows[-2:])
    assert snap["seq"] == 3


def test_unsubscribed_and_detached_clients_get_nothing() -> None:
    h = hub()
    one, two = FakeClient(h), FakeClient(h)
    c = channel(h)
    h.attach(one)
    h.attach(two)
    h.subscribe(one, c)
    h.subscribe(two, c)
    stream = updates()
    h.candle(stream[0])
    h.flush()
    h.unsubscribe(one, c)
    h.candle(stream[1])
    h.flush()
    h.detach(two)
    h.candle(stream[2])
    h.flush()
    assert [m["seq"] for m in one.written] == [1]
    assert [m["seq"] for m in two.written] == [1, 2]
    assert h.clients == {one: None}


def test_heartbeats_go_to_the_clients_that_were_sent_nothing_since_the_last() -> None:
    h = hub()
    clients = [FakeClient(h) for _ in range(3)]
    for client in clients:
        h.attach(client)
    busy = clients[0]
    h.subscribe(busy, channel(h))
    h.candle(updates()[0])
    h.flush()
    beat = b'{"type":"heartbeat","ts":1}'
    assert h.heartbeat(beat) == 2
    assert [m["type"] for m in busy.written] == ["candle"]
    assert all(c.written == [{"type": "heartbeat", "ts": 1}] for c in clients[1:])
    assert h.heartbeat(beat) == 3  # nothing since: everyone hears one


# -- the outbox ---------------------------------------------------------------------------------


def deliveries(stream: list[Candle]) -> tuple[CandleChannel, list[Delivery]]:
    h = hub()
    c = channel(h)
    out = [c.update(candle) for candle in stream]
    return c, [d for d in out if d is not None]


def test_a_lagging_outbox_keeps_only_the_newest_revision_of_each_candle() -> None:
    c, sent = deliveries(updates())
    outbox = Outbox(framing)
    outbox.defer([b'{"type":"pong","id":1}\n'], now=10.0)
    outbox.defer(sent[:30], now=11.0)
    outbox.defer(sent[30:60], now=12.0)
    assert outbox.lagging_since == 10.0
    written = messages(outbox.take())
    assert not outbox.pending
    assert outbox.lagging_since is None
    assert written[0] == {"type": "pong", "id": 1}
    notice = written[1]
    kept = written[2:]
    latest = final(list(updates()[:60]))
    assert notice == {
        "type": "conflated",
        "channel": "candles",
        "instrument": BTC,
        "interval": "1s",
        "dropped": 60 - len(latest),
    }
    assert [m["seq"] for m in kept] == sorted(m["seq"] for m in kept)
    assert {m["candle"]["open_time"]: m["candle"]["revision"] for m in kept} == {
        t // 1_000_000: candle.revision for t, candle in latest.items()
    }
    assert c.key == ChannelKey(CANDLES, BTC, "1s")


def test_ticks_and_replies_never_conflate() -> None:
    h = hub()
    ticks = h.tick_channel(BTC)
    sent = ticks.update(small_batches((BTC,), rows=5)[0]) + ticks.update(
        small_batches((BTC,), rows=5)[1]
    )
    outbox = Outbox(framing)
    outbox.defer([*sent, b"reply\n"], now=0.0)
    assert len(outbox) == len(sent) + 1
    assert outbox.take().count(b"\n") == len(sent) + 1


def test_a_late_revision_seen_first_does_not_make_the_cache_look_complete() -> None:
    h = hub()
    c = channel(h)
    stream = updates()
    closed = [candle for candle in stream if candle.status is CandleStatus.CLOSED]
    old = msgspec.structs.replace(
        closed[3], revision=closed[3].revision + 1, status=CandleStatus.REVISED
    )
    h.candle(old)
    assert c.complete_from is None
    h.candle(stream[-1])
    assert c.complete_from == stream[-1].open_time
    h.candle(closed[-2])
    assert c.complete_from == closed[-2].open_time


# -- feed gaps ----------------------------------------------------------------------------------

T0 = 1_767_225_600 * 1_000_000_000


def a_gap(
    instrument: str = BTC,
    start_s: int = 10,
    end_s: int = 12,
    reason: GapReason = GapReason.DISCONNECTED,
) -> FeedGap:
    return FeedGap(
        instrument=instrument,
        start_ns=T0 + start_s * 1_000_000_000,
        end_ns=T0 + end_s * 1_000_000_000,
        reason=reason,
        detail="connection reset",
    )


def test_a_gap_notice_reaches_each_client_of_the_instrument_once_and_no_other() -> None:
    h = hub()
    every, ticks_only, other, idle = (FakeClient(h) for _ in range(4))
    for client in (every, ticks_only, other, idle):
        h.attach(client)
    h.subscribe(every, channel(h, "1s"))
    h.subscribe(every, channel(h, "1m"))
    h.subscribe(every, h.tick_channel(BTC))
    h.subscribe(ticks_only, h.tick_channel(BTC))
    eth = h.candle_channel(ETH, "1s")
    assert eth is not None
    h.subscribe(other, eth)

    notice = h.gap(a_gap())
    assert notice is not None
    assert every.notified == ticks_only.notified == [notice.number]
    assert other.notified == idle.notified == []
    assert every.written == [
        {
            "type": "gap",
            "instrument": BTC,
            "start": (T0 + 10_000_000_000) // 1_000_000,
            "end": (T0 + 12_000_000_000) // 1_000_000,
            "reason": "disconnected",
            "detail": "connection reset",
        }
    ]
    eth_notice = h.gap(a_gap(ETH))
    assert eth_notice is not None
    assert other.notified == [eth_notice.number]
    assert every.notified == [notice.number]


def test_a_gap_notice_follows_the_updates_before_it_and_takes_no_sequence_number() -> None:
    stream = gapped_updates()
    h = hub()
    client = FakeClient(h)
    c = channel(h)
    h.subscribe(client, c)
    for candle in stream.before:
        h.candle(candle)
    notice = h.gap(stream.gap)  # mid-round: the round so far goes out first
    assert notice is not None
    for candle in stream.after:
        h.candle(candle)
    h.flush()
    kinds = [m["type"] for m in client.written]
    assert kinds.count("gap") == 1
    assert kinds.index("gap") == len(stream.before)
    total = len(stream.before) + len(stream.after)
    assert [m["seq"] for m in client.written if m["type"] == "candle"] == list(range(1, total + 1))
    assert notice.position(c.key) == len(stream.before)
    # the notice holds no slot of the replay buffer and no place in the candle cache
    assert [d.seq for d in c.replay] == list(range(1, total + 1))
    assert sorted(c.cache) == sorted(final(stream.before + stream.after))
    sent = [m["candle"]["gap"] for m in client.written if m["type"] == "candle"]
    assert sent == [candle.gap for candle in stream.before + stream.after]
    assert any(sent)


def test_the_same_gap_delivered_twice_is_told_once() -> None:
    h = hub()
    client = FakeClient(h)
    h.subscribe(client, h.tick_channel(BTC))
    gap = a_gap()
    first = h.gap(gap)
    assert first is not None
    assert h.gap(gap) is None
    other = h.gap(msgspec.structs.replace(gap, reason=GapReason.SEQUENCE))
    assert other is not None
    assert client.notified == [first.number, other.number]
    assert h.gaps.repeated == 1


def test_gap_notices_are_bounded_per_instrument_and_so_is_what_a_connection_remembers() -> None:
    notices = GapNotices(keep=3, framing=framing)
    made = [notices.add(a_gap(start_s=10 * i, end_s=10 * i + 1), []) for i in range(10)]
    kept = [notice for notice in made if notice is not None]
    assert len(kept) == 10
    assert list(notices.of(BTC)) == kept[-3:]
    told = Told(notices)
    for notice in kept:
        assert told.first_time(notice)
        assert told.held(BTC) <= 3
    assert not told.first_time(kept[-1])
    told.forget(BTC)
    assert told.first_time(kept[-1])


def test_which_notices_concern_a_client_by_position_and_by_span() -> None:
    notices = GapNotices(keep=8, framing=framing)
    key = ChannelKey(CANDLES, BTC, "1s")
    notice = notices.add(a_gap(start_s=10, end_s=12), [(key, 5)])
    assert notice is not None
    assert notice.concerns(key, after=5)  # it came right after message 5: maybe unseen
    assert notice.concerns(key, after=3)
    assert not notice.concerns(key, after=6)  # a client past 6 was there when it came
    later = ChannelKey(CANDLES, BTC, "1m")  # a channel made after the notice counts from 0
    assert notice.concerns(later, after=0)
    assert not notice.concerns(later, after=1)
    assert notice.concerns(key, after=6, since_ns=T0 + 11_999_999_999)  # reaches into the data
    assert not notice.concerns(key, after=6, since_ns=T0 + 12_000_000_000)


def test_a_lagging_client_keeps_the_notice_between_conflated_candle_updates() -> None:
    _, sent = deliveries(updates())
    gap = a_gap()
    outbox = Outbox(framing)
    outbox.defer(sent[:30], now=1.0)
    outbox.defer([framing(gap_message(gap))], now=1.5)
    outbox.defer(sent[30:60], now=2.0)
    written = messages(outbox.take())
    assert [m for m in written if m["type"] == "gap"] == [json.loads(gap_message(gap))]
    kept = [m for m in written if m["type"] == "candle"]
    latest = final(list(updates()[:60]))
    assert {m["candle"]["open_time"]: m["candle"]["revision"] for m in kept} == {
        t // 1_000_000: candle.revision for t, candle in latest.items()
    }
