"""The session's rules, sans I/O: subscribe, snapshot, resume, catch-up and reset.

Every test builds a :class:`SessionCore` on a hub fed from the real candle engine, hands it
request frames and the answers to the storage reads it asks for, and checks the actions it
hands back. No socket, no store and no event loop.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.ticks import TickBatch
from ingest.synthetic import DEFAULT_START_NS
from ws_gateway.auth import Principal
from ws_gateway.channels import CandleChannel, Delivery, Part
from ws_gateway.gaps import GapNotice
from ws_gateway.hub import Hub
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session_core import (
    STORE_RETRIES,
    Action,
    Close,
    Directory,
    Read,
    ReadCandles,
    ReadInstruments,
    ReadLastCandles,
    Send,
    SessionCore,
)
from ws_gateway.settings import GatewaySettings, Limits
from ws_gateway.wire import CANDLES, ChannelKey, CloseCode

from .chart import apply, as_json, expected_state
from .market import BTC, ETH, final, gapped_updates, small_batches, updates

EPOCH = "epoch-a"
SECOND = Interval.parse("1s")
NOW_NS = DEFAULT_START_NS + 3600 * 1_000_000_000
"""The wall clock the core is given: after every synthetic candle."""


def framing(payload: bytes) -> bytes:
    return payload + b"\n"


class Watcher:
    """A hub client that records what the fan-out hands it (a client that never left)."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    def push(self, data: bytes, deliveries: list[Delivery]) -> None:
        self.written.extend(json.loads(line) for line in data.splitlines())

    def push_parts(self, parts: list[Part]) -> None:
        for data, _ in parts:
            self.push(data, [])

    def send_frame(self, frame: bytes) -> None:
        self.push(frame, [])

    def notify(self, notice: GapNotice) -> None:
        self.push(notice.frame, [])

    def quiet(self) -> bool:
        return True


@dataclass
class Shelf:
    """What storage holds, answered as the store would (each candle's newest revision)."""

    candles: list[Candle] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)

    def __call__(self, read: Read) -> list[Candle] | list[str]:
        self.reads.append(read)
        if isinstance(read, ReadInstruments):
            return sorted(self.instruments)
        newest = [
            candle
            for _, candle in sorted(final(self.candles).items())
            if candle.instrument == read.instrument and candle.interval == read.interval
        ]
        if isinstance(read, ReadLastCandles):
            older = [candle for candle in newest if candle.open_time < read.before]
            return older[-read.count :]
        return [candle for candle in newest if read.start <= candle.open_time < read.end]


class Conversation:
    """A core, its hub and a client that never left; requests in, messages out."""

    def __init__(self, storage: bool = True, hub: Hub | None = None, **settings: Any) -> None:
        self.settings = GatewaySettings(**settings) if hub is None else hub.settings
        self.hub = hub or Hub(self.settings, EPOCH, framing)
        self.client = Watcher()
        self.watcher = Watcher()
        self.now = 0.0
        principal = Principal("anonymous", self.settings.anonymous_permissions)
        self.protocol = ConnectionProtocol(self.settings, principal, self.now)
        self.core = SessionCore(
            self.hub,
            self.client,
            self.protocol,
            Directory(self.hub, storage),
            storage=storage,
            clock=lambda: NOW_NS,
        )

    def watch(self, instrument: str = BTC, label: str = "1s") -> CandleChannel:
        channel = self.hub.candle_channel(instrument, label)
        assert channel is not None
        self.hub.subscribe(self.watcher, channel)
        return channel

    def away_after(self, stream: list[Candle], seen: int) -> dict[int, dict[str, Any]]:
        """Publish ``stream``; what the chart of a client that saw its first ``seen`` updates,
        then left, holds."""
        self.watch()
        self.publish(stream[:seen])
        state: dict[int, dict[str, Any]] = {}
        for message in self.watcher.written:
            apply(state, message)
        self.publish(stream[seen:])
        return state

    def publish(self, candles: list[Candle]) -> None:
        for candle in candles:
            self.hub.candle(candle)
        self.hub.flush()

    def publish_ticks(self, batches: list[TickBatch]) -> None:
        for batch in batches:
            self.hub.ticks(batch)
        self.hub.flush()

    def send(self, **body: Any) -> list[Action]:
        self.now += 0.001
        return self.core.receive(json.dumps(body), self.now)

    def raw(self, frame: str) -> list[Action]:
        return self.core.receive(frame, self.now)

    def subscribe(self, instrument: str = BTC, label: str = "1s", **extra: Any) -> list[Action]:
        where = {"channel": CANDLES, "instrument": instrument, "interval": label}
        return self.send(op="subscribe", id=1, **where, **extra)

    def resume(
        self, seq: int, epoch: str | None = EPOCH, label: str | None = "1s", **where: Any
    ) -> list[Action]:
        where = {"channel": CANDLES, "instrument": BTC, "interval": label, **where}
        if where["interval"] is None:
            del where["interval"]
        return self.send(op="resume", id=2, seq=seq, epoch=epoch, **where)

    def drive(self, actions: list[Action], shelf: Shelf) -> list[dict[str, Any]]:
        """Answer every read from ``shelf``: every message the client is sent, in order."""
        messages: list[dict[str, Any]] = []
        while True:
            messages.extend(sent(actions))
            read = actions[-1] if actions else None
            if not isinstance(read, ReadInstruments | ReadLastCandles | ReadCandles):
                assert self.core.pending is None
                return messages
            assert self.core.pending == read
            actions = self.core.answer(shelf(read))


def sent(actions: list[Action]) -> list[dict[str, Any]]:
    """The messages the client is sent by ``actions``, in order."""
    frames = b"".join(
        item.frame if isinstance(item, Delivery) else item
        for action in actions
        if isinstance(action, Send)
        for item in action.items
    )
    return [json.loads(line) for line in frames.splitlines()]


def only_sent(actions: list[Action]) -> list[dict[str, Any]]:
    assert all(isinstance(action, Send) for action in actions), actions
    return sent(actions)


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [message["type"] for message in messages]


def last_candles(candles: list[Candle], count: int) -> list[Candle]:
    """The updates of the newest ``count`` candles only: what a gateway started late saw."""
    since = sorted(final(candles))[-count]
    return [candle for candle in candles if candle.open_time >= since]


def newest(candles: list[Candle], count: int) -> list[dict[str, Any]]:
    return [as_json(candle) for _, candle in sorted(final(candles).items())[-count:]]


def exact_catch_up(
    messages: list[dict[str, Any]],
    state: dict[int, dict[str, Any]],
    stream: list[Candle],
    seen: int,
) -> None:
    """Check that ``messages`` are an exact catch-up of ``stream`` from ``seen``: ``subscribed``,
    ``conflated`` with the updates left out, then the latest version of each candle changed
    since, by rising seq; applied to ``state`` (the chart of a client that left at ``seen``)
    they leave it as a client that never left has it."""
    joined, notice, *caught = messages
    changed = final(stream[seen:])
    assert joined["type"] == "subscribed"
    assert (notice["type"], notice["dropped"]) == ("conflated", len(stream) - seen - len(changed))
    assert types(caught) == ["candle"] * len(changed)
    seqs = [message["seq"] for message in caught]
    assert seqs == sorted(seqs)
    assert seqs[-1] == len(stream)
    for message in caught:
        apply(state, message)
    assert state == expected_state(stream)


SMALL: dict[str, Any] = {
    "replay_buffer": 10,
    "cache_candles": 5,
    "max_snapshot": 5,
    "default_snapshot": 5,
}
"""A gateway that forgets quickly: resumes beyond the buffer, evictions, stored history."""


# -- subscribe ------------------------------------------------------------------------------------


def test_subscribe_joins_with_a_snapshot_from_memory_when_the_cache_holds_enough() -> None:
    stream = updates()
    talk = Conversation(default_snapshot=5)
    talk.publish(stream)
    actions = talk.subscribe()
    joined, snap = only_sent(actions)
    assert (joined["type"], joined["id"], joined["epoch"]) == ("subscribed", 1, EPOCH)
    assert (snap["type"], snap["seq"], snap["reset"]) == ("snapshot", len(stream), False)
    assert snap["candles"] == newest(stream, 5)
    channel = talk.hub.candle_channel(BTC, "1s")
    assert channel is not None
    assert talk.client in channel.subscribers
    assert ChannelKey(CANDLES, BTC, "1s") in talk.protocol.subscriptions


def test_subscribe_reads_the_newest_stored_candles_older_than_the_cache() -> None:
    stream = updates()
    talk = Conversation(**SMALL)
    talk.publish(last_candles(stream, 2))  # a gateway started late
    channel = talk.hub.candle_channel(BTC, "1s")
    assert channel is not None
    assert channel.complete_from == sorted(final(stream))[-2]
    actions = talk.subscribe()
    assert actions == [ReadLastCandles(BTC, SECOND, channel.complete_from, 3)]
    assert talk.core.pending == actions[0]
    _, snap = talk.drive(actions, Shelf(stream))
    assert (snap["seq"], snap["reset"]) == (channel.seq, False)
    assert snap["candles"] == newest(stream, 5)


def test_subscribe_to_stored_history_without_a_live_tick_asks_storage_for_both() -> None:
    history = updates(ETH, "1m", duration=600.0, rate=2.0)
    shelf = Shelf(history, instruments=[BTC, ETH])
    talk = Conversation(default_snapshot=4)
    assert talk.subscribe(ETH, "1m") == [ReadInstruments()]
    actions = talk.core.answer(shelf(ReadInstruments()))
    minute = Interval.parse("1m")
    assert actions == [ReadLastCandles(ETH, minute, minute.bucket_start(NOW_NS) + minute.ns, 4)]
    joined, snap = talk.drive(actions, shelf)
    assert joined["type"] == "subscribed"
    assert (snap["seq"], snap["reset"]) == (0, False)
    assert snap["candles"] == newest(history, 4)
    assert ETH in talk.hub.instruments


def test_an_unknown_instrument_is_refused_and_storage_asked_at_most_once_per_refresh() -> None:
    talk = Conversation()
    assert talk.subscribe(ETH) == [ReadInstruments()]
    (error,) = only_sent(talk.core.answer([BTC]))
    assert (error["type"], error["code"], error["field"], error["id"]) == (
        "error",
        "unknown_instrument",
        "instrument",
        1,
    )
    (again,) = only_sent(talk.subscribe(ETH))  # within the refresh: no read
    assert again["code"] == "unknown_instrument"
    talk.now += 5.0
    assert talk.subscribe(ETH) == [ReadInstruments()]


def test_a_failed_instrument_list_refuses_the_instrument() -> None:
    talk = Conversation()
    assert talk.subscribe(ETH) == [ReadInstruments()]
    (error,) = only_sent(talk.core.failed(OSError("database went away")))
    assert error["code"] == "unknown_instrument"
    assert talk.core.pending is None


def test_without_storage_nothing_is_read() -> None:
    stream = updates()
    talk = Conversation(storage=False, **SMALL)
    (error,) = only_sent(talk.subscribe(ETH))
    assert error["code"] == "unknown_instrument"
    talk.publish(stream)
    _, snap = only_sent(talk.subscribe())
    assert snap["candles"] == newest(stream, 5)


def test_a_snapshot_read_overtaken_by_the_cache_is_planned_again() -> None:
    stream = updates()
    shelf = Shelf(stream)
    talk = Conversation(**SMALL)
    opens = sorted(final(stream))
    talk.publish([c for c in stream if opens[-12] <= c.open_time < opens[-10]])  # two seen
    (read,) = talk.subscribe()
    assert isinstance(read, ReadLastCandles)
    assert read.count == 3
    talk.publish(last_candles(stream, 10))  # the cache evicts while storage answers
    channel = talk.hub.candle_channel(BTC, "1s")
    assert channel is not None
    assert channel.complete_from is not None
    assert channel.complete_from > read.before
    _, snap = only_sent(talk.core.answer(shelf(read)))  # memory holds the five now
    assert (snap["seq"], snap["candles"]) == (channel.seq, newest(stream, 5))
    assert shelf.reads == [read]


def test_a_snapshot_read_is_asked_again_for_what_the_cache_evicted_meanwhile() -> None:
    stream = updates()
    finals = final(stream)
    opens = sorted(finals)
    talk = Conversation(**SMALL)
    talk.publish([c for c in stream if opens[-5] <= c.open_time < opens[-3]])  # two seen
    (read,) = talk.subscribe()
    assert read == ReadLastCandles(BTC, SECOND, opens[-5], 3)
    # While storage answers: three more candles, then a late revision of an old one, which
    # takes the cache's room: the oldest candle seen is evicted and the read no longer
    # reaches it.
    talk.publish([c for c in stream if c.open_time >= opens[-3]])
    old = finals[opens[0]]
    late = msgspec.structs.replace(old, revision=old.revision + 1, status=CandleStatus.REVISED)
    talk.publish([late])
    (again,) = talk.core.answer(Shelf(stream)(read))
    assert again == ReadLastCandles(BTC, SECOND, opens[-4], 1)
    _, snap = only_sent(talk.core.answer(Shelf(stream)(again)))
    assert snap["candles"] == newest(stream, 5)


def test_a_failed_snapshot_read_leaves_the_snapshot_from_memory() -> None:
    stream = updates()
    talk = Conversation(**SMALL)
    talk.publish(last_candles(stream, 2))
    (read,) = talk.subscribe()
    assert isinstance(read, ReadLastCandles)
    _, snap = only_sent(talk.core.failed(OSError("database went away")))
    assert snap["candles"] == newest(stream, 2)
    assert talk.core.pending is None


def test_a_tick_snapshot_holds_only_the_seq_unless_asked_and_reads_nothing() -> None:
    batches = small_batches((BTC,), rows=3)[:5]
    talk = Conversation()
    talk.publish_ticks(batches)
    _, snap = only_sent(talk.send(op="subscribe", id=1, channel="ticks", instrument=BTC))
    assert (snap["seq"], snap["ticks"]) == (5, [])
    _, deeper = only_sent(
        talk.send(op="subscribe", id=1, channel="ticks", instrument=BTC, snapshot=4)
    )
    assert [tick["trade_id"] for tick in deeper["ticks"]] == [
        int(i) for batch in batches for i in batch.trade_id
    ][-4:]


# -- resume ---------------------------------------------------------------------------------------


def test_resume_within_the_buffer_sends_exactly_the_missed_messages() -> None:
    stream = updates()
    talk = Conversation()
    talk.watch()
    talk.publish(stream[:80])
    joined, *replayed = only_sent(talk.resume(50))
    assert (joined["type"], joined["id"]) == ("subscribed", 2)
    assert replayed == talk.watcher.written[50:80]
    talk.publish(stream[80:90])
    assert [m["seq"] for m in talk.client.written] == list(range(81, 91))


def test_resume_within_the_buffer_replays_gap_notices_in_their_places_once() -> None:
    gapped = gapped_updates()
    talk = Conversation()
    talk.watch()
    talk.publish(gapped.before)
    seen = len(gapped.before) - 3
    talk.hub.gap(gapped.gap)
    talk.publish(gapped.after)
    _, *replayed = only_sent(talk.resume(seen))
    assert replayed == talk.watcher.written[seen:]
    assert types(replayed)[3] == "gap"
    _, *again = only_sent(talk.resume(seen))  # the same connection is told once
    assert "gap" not in types(again)
    assert len(again) == len(replayed) - 1


def test_resume_without_an_epoch_is_taken_as_this_gateways() -> None:
    stream = updates()
    talk = Conversation()
    talk.publish(stream[:20])
    _, *replayed = only_sent(talk.resume(15, epoch=None))
    assert [m["seq"] for m in replayed] == [16, 17, 18, 19, 20]


def test_resume_beyond_the_buffer_is_an_exact_catch_up_from_memory() -> None:
    stream = updates()
    talk = Conversation(replay_buffer=10)
    state = talk.away_after(stream, 40)
    exact_catch_up(only_sent(talk.resume(40)), state, stream, 40)  # no read: not needed


def test_resume_with_evicted_candles_reads_exactly_their_span_from_storage() -> None:
    stream = updates()
    talk = Conversation(**SMALL)
    state = talk.away_after(stream, 40)
    channel = talk.hub.candle_channel(BTC, "1s")
    assert channel is not None
    evicted = channel.evicted_since(40)
    assert evicted
    first = min(entry.open_time for entry in evicted)
    last = max(entry.open_time for entry in evicted)
    actions = talk.resume(40)
    assert actions == [ReadCandles(BTC, SECOND, first, last + 1)]
    exact_catch_up(talk.drive(actions, Shelf(stream)), state, stream, 40)


def test_a_catch_up_read_is_asked_again_when_evictions_changed_meanwhile() -> None:
    stream = updates()
    talk = Conversation(**SMALL)
    talk.publish(stream[:60])
    shelf = Shelf(stream)
    (read,) = talk.resume(40)
    assert isinstance(read, ReadCandles)
    talk.publish(stream[60:70])  # evicts more candles changed after seq 40
    actions = talk.core.answer(shelf(read))
    assert isinstance(actions[-1], ReadCandles)
    assert actions[-1] != read
    messages = talk.drive(actions, shelf)
    assert types(messages)[:2] == ["subscribed", "conflated"]
    assert messages[-1]["seq"] == 70


def test_a_catch_up_whose_evictions_keep_changing_gives_up_for_a_reset() -> None:
    stream = updates()
    shelf = Shelf(stream)
    talk = Conversation(**SMALL)
    talk.publish(stream[:60])
    actions = talk.resume(40)
    for start in range(60, 60 + 10 * STORE_RETRIES, 10):
        (read,) = actions
        assert isinstance(read, ReadCandles)
        talk.publish(stream[start : start + 10])  # evicts more while storage answers
        actions = talk.core.answer(shelf(read))
    joined, snap = only_sent(actions)
    assert (joined["type"], snap["type"], snap["reset"]) == ("subscribed", "snapshot", True)
    assert len(shelf.reads) == STORE_RETRIES


def test_storage_without_the_revision_sent_turns_the_catch_up_into_a_reset() -> None:
    stream = updates()
    talk = Conversation(**SMALL)
    talk.publish(stream)
    (read,) = talk.resume(40)
    assert isinstance(read, ReadCandles)
    stale = Shelf(stream[:40])  # the storage writer is behind
    joined, snap = only_sent(talk.core.answer(stale(read)))  # memory holds the snapshot
    assert joined["type"] == "subscribed"
    assert (snap["type"], snap["seq"], snap["reset"]) == ("snapshot", len(stream), True)
    assert snap["candles"] == newest(stream, 5)


def test_a_failed_catch_up_read_falls_back_to_a_reset_snapshot() -> None:
    stream = updates()
    talk = Conversation(**SMALL)
    talk.publish(stream)
    (read,) = talk.resume(40)
    assert isinstance(read, ReadCandles)
    _, snap = only_sent(talk.core.failed(OSError("database went away")))
    assert (snap["reset"], snap["candles"]) == (True, newest(stream, 5))


def test_resume_with_evictions_and_no_storage_gets_a_reset_snapshot() -> None:
    stream = updates()
    talk = Conversation(storage=False, **SMALL)
    talk.publish(stream)
    joined, snap = only_sent(talk.resume(40))
    assert (joined["id"], snap["seq"], snap["reset"]) == (2, len(stream), True)
    assert snap["candles"] == newest(stream, 5)


def test_resume_from_before_the_eviction_log_gets_a_reset_snapshot_without_a_read() -> None:
    stream = updates(duration=120.0)
    talk = Conversation(**SMALL)
    talk.publish(stream)
    channel = talk.hub.candle_channel(BTC, "1s")
    assert channel is not None
    assert channel.log_floor > 3
    joined, snap = only_sent(talk.resume(3))
    assert joined["type"] == "subscribed"
    assert (snap["seq"], snap["reset"], snap["candles"]) == (len(stream), True, newest(stream, 5))


def test_a_catch_up_longer_than_the_maximum_is_a_reset() -> None:
    stream = updates()
    talk = Conversation(storage=False, replay_buffer=10, max_catch_up=2)
    talk.publish(stream)
    _, snap = only_sent(talk.resume(40))
    assert (snap["type"], snap["reset"]) == ("snapshot", True)


@pytest.mark.parametrize(("seq", "epoch"), [(5, "another-gateway"), (500, EPOCH), (500, None)])
def test_resume_with_another_epoch_or_a_seq_never_issued_gets_a_reset_snapshot(
    seq: int, epoch: str | None
) -> None:
    stream = updates()
    talk = Conversation(storage=False)
    talk.publish(stream[:20])
    joined, snap = only_sent(talk.resume(seq, epoch=epoch))
    assert (joined["type"], joined["epoch"]) == ("subscribed", EPOCH)
    assert (snap["seq"], snap["reset"]) == (20, True)


def test_resume_on_another_instance_is_a_reset_snapshot_from_its_memory_and_storage() -> None:
    stream = updates()
    first = Conversation(storage=False, **SMALL)
    first.publish(stream[:40])
    _, before = only_sent(first.subscribe())
    second = Conversation(hub=Hub(first.settings, "epoch-b", framing))
    late = last_candles(stream, 2)
    second.publish(late)  # started later, behind the same load balancer
    actions = second.resume(before["seq"], epoch=before["epoch"])
    assert [type(action) for action in actions] == [ReadLastCandles]
    joined, snap = second.drive(actions, Shelf(stream))
    assert (joined["epoch"], snap["epoch"]) == ("epoch-b", "epoch-b")
    assert (snap["seq"], snap["reset"]) == (len(late), True)
    assert snap["candles"] == newest(stream, 5)


def test_a_reset_tells_the_gap_notices_after_the_seq_the_client_saw() -> None:
    gapped = gapped_updates()
    talk = Conversation(storage=False, **{**SMALL, "replay_buffer": 2})
    talk.publish(gapped.before)
    seen = len(gapped.before) - 3
    talk.hub.gap(gapped.gap)
    talk.publish(gapped.after)
    messages = only_sent(talk.resume(seen))
    assert types(messages) == ["subscribed", "snapshot", "gap"]
    assert messages[1]["reset"] is True


def test_tick_resume_replays_the_buffer_or_resets_without_reading() -> None:
    batches = small_batches((BTC,), rows=3)[:30]
    talk = Conversation(replay_buffer=10)
    talk.publish_ticks(batches)
    _, *replayed = only_sent(talk.resume(22, label=None, channel="ticks"))
    assert [m["seq"] for m in replayed] == list(range(23, 31))
    _, reset = only_sent(talk.resume(5, label=None, channel="ticks"))
    assert (reset["seq"], reset["reset"], reset["ticks"]) == (30, True, [])


# -- unsubscribe, errors, one request at a time ------------------------------------------------


def test_unsubscribe_leaves_the_channel_and_a_resubscribe_tells_the_notices_again() -> None:
    gapped = gapped_updates()
    talk = Conversation(storage=False)
    talk.publish(gapped.before)
    talk.hub.gap(gapped.gap)
    assert types(only_sent(talk.subscribe())) == ["subscribed", "snapshot", "gap"]
    key = {"channel": CANDLES, "instrument": BTC, "interval": "1s"}
    (left,) = only_sent(talk.send(op="unsubscribe", id=3, **key))
    assert (left["type"], left["id"]) == ("unsubscribed", 3)
    channel = talk.hub.candle_channel(BTC, "1s")
    assert channel is not None
    assert talk.client not in channel.subscribers
    talk.publish(gapped.after)
    assert talk.client.written == []
    (error,) = only_sent(talk.send(op="unsubscribe", id=4, **key))
    assert (error["code"], error["id"]) == ("not_subscribed", 4)
    assert types(only_sent(talk.subscribe())) == ["subscribed", "snapshot", "gap"]


def test_a_second_channel_of_the_instrument_keeps_the_notices_told() -> None:
    gapped = gapped_updates()
    talk = Conversation(storage=False)
    talk.publish(gapped.before)
    talk.hub.gap(gapped.gap)
    assert "gap" in types(only_sent(talk.subscribe()))
    only_sent(talk.send(op="subscribe", id=5, channel="ticks", instrument=BTC))
    only_sent(talk.send(op="unsubscribe", id=6, channel="ticks", instrument=BTC))
    assert "gap" not in types(only_sent(talk.subscribe()))


def test_ping_and_bad_requests_are_answered_with_the_request_id() -> None:
    talk = Conversation()
    (pong,) = only_sent(talk.send(op="ping", id=9))
    assert pong == {"type": "pong", "id": 9}
    (bad,) = only_sent(talk.raw("{not json"))
    assert (bad["type"], bad["code"]) == ("error", "bad_request")
    (interval,) = only_sent(talk.subscribe(label="60s"))
    assert (interval["code"], interval["field"], interval["id"]) == ("bad_interval", "interval", 1)


def test_a_client_flooding_past_the_rate_limit_is_refused_then_closed() -> None:
    limits = Limits(rate=1.0, burst=1, max_rate_violations=2)
    talk = Conversation(limits=limits)
    assert types(only_sent(talk.core.receive('{"op":"ping"}', 1.0))) == ["pong"]
    (refused,) = only_sent(talk.core.receive('{"op":"ping"}', 1.0))
    assert refused["code"] == "rate_limited"
    refused_again, close = talk.core.receive('{"op":"ping"}', 1.0)
    assert sent([refused_again])[0]["code"] == "rate_limited"
    assert close == Close(CloseCode.RATE_LIMITED, "too many requests")


def test_the_core_takes_one_request_at_a_time() -> None:
    talk = Conversation()
    with pytest.raises(RuntimeError, match="no storage read is outstanding"):
        talk.core.answer([])
    assert talk.subscribe(ETH) == [ReadInstruments()]
    with pytest.raises(RuntimeError, match="a storage read is outstanding"):
        talk.send(op="ping", id=1)
    only_sent(talk.core.answer([]))
    assert types(only_sent(talk.send(op="ping", id=1))) == ["pong"]


def test_only_gap_notices_mark_the_client_active() -> None:
    gapped = gapped_updates()
    talk = Conversation(storage=False)
    talk.publish(gapped.before)
    (plain,) = talk.subscribe()
    assert isinstance(plain, Send)
    assert not plain.active
    talk.hub.gap(gapped.gap)
    (told,) = talk.subscribe(label="1m")
    assert isinstance(told, Send)
    assert told.active


def test_a_storage_outage_is_told_once_and_pauses_reads_for_every_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = Conversation(**SMALL)
    second = Conversation(hub=first.hub)
    shared = second.core.directory = first.core.directory  # the gateway's sessions share one
    clock = [NOW_NS]
    for talk in (first, second):
        talk.core.clock = lambda: clock[0]
    first.publish(last_candles(updates(), 2))
    with caplog.at_level(logging.WARNING, logger="ws_gateway"):
        (read,) = first.subscribe()
        assert isinstance(read, ReadLastCandles)
        first.core.failed(OSError("database went away"))
        (answer,) = second.subscribe()  # no read while paused: the snapshot comes at once
        assert isinstance(answer, Send)
        assert second.core.pending is None
        assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [
            ("storage unavailable (database went away); snapshots and resumes from memory only",
             None),
        ]  # fmt: skip
        caplog.clear()
        clock[0] += round(shared.pause * 1e9)
        first.send(op="unsubscribe", id=3, channel=CANDLES, instrument=BTC, interval="1s")
        (read,) = first.subscribe()
        assert isinstance(read, ReadLastCandles)
        first.core.answer([])
    assert [r.getMessage() for r in caplog.records] == ["storage available again after 5.0s"]
