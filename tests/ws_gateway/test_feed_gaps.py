"""Feed gaps through a real gateway to real ``websockets`` clients: the ``gap`` notice, once
per connection to the instrument's subscribers, replayed on resume, and flagged candles.

The candles come from the real engine over synthetic ticks with a hole cut into them, and the
gap is the marker a connector would publish for that hole (``market.gapped_updates``).
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection

from core.gaps import FeedGap

from .chart import as_json
from .harness import (
    client,
    publish,
    publish_gap,
    publish_ticks,
    recv_many,
    recv_type,
    request,
    resume,
    running,
    subscribe,
    until,
)
from .market import BTC, ETH, final, gapped_updates, small_batches, updates

SECOND = 1_000_000_000


def notice_of(gap: FeedGap) -> dict[str, Any]:
    """The ``gap`` message the protocol promises for ``gap`` (docs/protocol.md)."""
    return {
        "type": "gap",
        "instrument": gap.instrument,
        "start": gap.start_ns // 1_000_000,
        "end": -(-gap.end_ns // 1_000_000),
        "reason": gap.reason.value,
        "detail": gap.detail,
    }


def apply(state: dict[int, dict[str, Any]], message: dict[str, Any]) -> None:
    """What a chart does with candles: upsert by open time, keeping the higher revision."""
    bars = message["candles"] if message["type"] == "snapshot" else [message["candle"]]
    for bar in bars:
        known = state.get(bar["open_time"])
        if known is None or known["revision"] <= bar["revision"]:
            state[bar["open_time"]] = bar


async def subscribe_ticks(ws: ClientConnection, instrument: str = BTC) -> dict[str, Any]:
    await request(ws, op="subscribe", id=7, channel="ticks", instrument=instrument)
    await recv_type(ws, "subscribed")
    return await recv_type(ws, "snapshot")


async def nothing_more(ws: ClientConnection) -> None:
    """Nothing waits for ``ws`` before the answer to a ping (heartbeats aside)."""
    await request(ws, op="ping", id=99)
    assert await recv_many(ws, 1) == [{"type": "pong", "id": 99}]


async def test_a_gap_reaches_each_subscriber_of_the_instrument_once_and_no_one_else() -> None:
    stream = gapped_updates()
    async with (
        running() as (bus, gateway),
        client(gateway) as every,
        client(gateway) as ticks_only,
        client(gateway) as other,
        client(gateway) as idle,
    ):
        await subscribe(every, interval="1s")
        await subscribe(every, interval="1m")
        await subscribe_ticks(every)
        await subscribe_ticks(ticks_only)
        await subscribe(other, instrument=ETH)

        await publish_gap(bus, stream.gap)
        await until(lambda: gateway.stats.gaps == 1)
        await publish(bus, [stream.before[0], updates(ETH)[0]])
        await publish_ticks(bus, small_batches((BTC,))[:1])

        expected = notice_of(stream.gap)
        got = await recv_many(every, 3)
        assert [m["type"] for m in got] == ["gap", "candle", "tick"]
        assert got[0] == expected
        assert await recv_many(ticks_only, 2) == [expected, got[2]]
        assert [m["type"] for m in await recv_many(other, 1)] == ["candle"]
        for ws in (every, ticks_only, other, idle):
            await nothing_more(ws)
        assert gateway.stats.undecodable == 0


async def test_candles_over_a_gap_arrive_flagged_after_the_notice() -> None:
    stream = gapped_updates()
    gap = stream.gap
    async with running() as (bus, gateway), client(gateway) as ws:
        await subscribe(ws)
        await publish(bus, stream.before)
        await until(lambda: gateway.stats.candles == len(stream.before))
        await publish_gap(bus, gap)
        await until(lambda: gateway.stats.gaps == 1)
        await publish(bus, stream.after)
        got = await recv_many(ws, len(stream.before) + 1 + len(stream.after))
        assert got[len(stream.before)] == notice_of(gap)
        candles = [m for m in got if m["type"] == "candle"]
        assert [m["seq"] for m in candles] == list(range(1, len(candles) + 1))
        assert [m["candle"] for m in candles] == [as_json(c) for c in stream.before + stream.after]
        state: dict[int, dict[str, Any]] = {}
        for message in candles:
            apply(state, message)
        for open_ms, bar in state.items():
            start = open_ms * 1_000_000
            assert bar["gap"] is (start < gap.end_ns and gap.start_ns < start + SECOND), bar
        assert any(bar["gap"] for bar in state.values())


async def test_resume_replays_a_missed_gap_notice_in_its_place_once_per_connection() -> None:
    stream = gapped_updates()
    before, after = stream.before, stream.after
    async with running() as (bus, gateway):
        async with client(gateway) as ws:
            _, snap = await subscribe(ws)
            await publish(bus, before[:20])
            await recv_many(ws, 20)
        await publish(bus, before[20:])
        await until(lambda: gateway.stats.candles == len(before))
        await publish_gap(bus, stream.gap)
        await until(lambda: gateway.stats.gaps == 1)
        await publish(bus, after[:10])
        await until(lambda: gateway.stats.candles == len(before) + 10)

        async with client(gateway) as again:
            await resume(again, 20, snap["epoch"], rid=2)
            got = await recv_many(again, len(before) - 20 + 1 + 10)
            kinds = [m["type"] for m in got]
            assert kinds == ["candle"] * (len(before) - 20) + ["gap"] + ["candle"] * 10
            assert got[len(before) - 20] == notice_of(stream.gap)
            seqs = [m["seq"] for m in got if m["type"] == "candle"]
            assert seqs == list(range(21, len(before) + 11))
            # the tick channel's resume would tell it too, but this connection has it already
            await resume(again, 0, snap["epoch"], rid=3, channel="ticks")
            await nothing_more(again)

        async with client(gateway) as ticks_client:  # a new connection is told again
            await resume(ticks_client, 0, snap["epoch"], rid=4, channel="ticks")
            assert await recv_many(ticks_client, 1) == [notice_of(stream.gap)]
            await nothing_more(ticks_client)


async def test_a_catch_up_resume_ends_with_the_gap_notices_missed() -> None:
    stream = gapped_updates()
    everything = stream.before + stream.after
    async with running(replay_buffer=10) as (bus, gateway):
        state: dict[int, dict[str, Any]] = {}
        async with client(gateway) as ws:
            _, snap = await subscribe(ws)
            await publish(bus, stream.before[:20])
            for message in await recv_many(ws, 20):
                apply(state, message)
        await publish(bus, stream.before[20:])
        await until(lambda: gateway.stats.candles == len(stream.before))
        await publish_gap(bus, stream.gap)
        await until(lambda: gateway.stats.gaps == 1)
        await publish(bus, stream.after)
        await until(lambda: gateway.stats.candles == len(everything))

        async with client(gateway) as again:
            await resume(again, 20, snap["epoch"], rid=5)
            await recv_type(again, "conflated")
            changed = final(everything[20:])
            caught = await recv_many(again, len(changed) + 1)
            assert [m["type"] for m in caught] == ["candle"] * len(changed) + ["gap"]
            assert caught[-1] == notice_of(stream.gap)
            for message in caught[:-1]:
                apply(state, message)
            assert state == {t // 1_000_000: as_json(c) for t, c in final(everything).items()}
            await nothing_more(again)


async def test_a_snapshot_is_followed_by_the_notices_that_reach_into_it_or_are_newer() -> None:
    stream = gapped_updates()
    async with running() as (bus, gateway):
        await publish(bus, stream.before)
        await until(lambda: gateway.stats.candles == len(stream.before))
        await publish_gap(bus, stream.gap)
        await until(lambda: gateway.stats.gaps == 1)
        await publish(bus, stream.after)
        await until(lambda: gateway.stats.candles == len(stream.before) + len(stream.after))

        async with client(gateway) as deep:
            _, snap = await subscribe(deep, snapshot=1000)
            assert any(bar["gap"] for bar in snap["candles"])
            assert await recv_many(deep, 1) == [notice_of(stream.gap)]
            await subscribe(deep, interval="1m")  # another channel of it: not told twice
            await nothing_more(deep)

        async with client(gateway) as quiet:
            await subscribe_ticks(quiet)  # no tick since the gap: the notice is the news
            assert await recv_many(quiet, 1) == [notice_of(stream.gap)]

        await publish_ticks(bus, small_batches((BTC,))[-1:])
        await until(lambda: gateway.stats.tick_batches == 1)
        async with client(gateway) as shallow:
            _, snap = await subscribe(shallow, snapshot=3)
            assert snap["candles"][0]["open_time"] * 1_000_000 >= stream.gap.end_ns
            await subscribe_ticks(shallow)  # an empty snapshot, after a newer tick
            await nothing_more(shallow)
