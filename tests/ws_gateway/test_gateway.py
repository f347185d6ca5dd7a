"""A real gateway on 127.0.0.1 and real ``websockets`` clients, fed through a MemoryBus with
candles from the real engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from core.candles import Candle
from storage.memory_store import MemoryStore
from ws_gateway.wire import MAX_DEPTH

from .chart import apply, as_json, expected_state
from .harness import (
    TIMEOUT,
    client,
    close_frame,
    publish,
    publish_ticks,
    recv,
    recv_many,
    recv_type,
    request,
    resume,
    running,
    stalled_socket,
    subscribe,
    until,
)
from .market import BTC, ETH, final, small_batches, updates


async def test_subscribe_gets_a_snapshot_then_every_update_in_order() -> None:
    stream = updates()
    async with running() as (bus, gateway), client(gateway) as ws:
        joined, snapshot = await subscribe(ws, snapshot=50)
        assert joined == {
            "type": "subscribed",
            "id": 1,
            "channel": "candles",
            "instrument": BTC,
            "interval": "1s",
            "epoch": gateway.epoch,
        }
        assert snapshot == {
            "type": "snapshot",
            "channel": "candles",
            "instrument": BTC,
            "interval": "1s",
            "epoch": gateway.epoch,
            "seq": 0,
            "reset": False,
            "candles": [],
        }
        await publish(bus, stream)
        got = await recv_many(ws, len(stream))
        assert [m["seq"] for m in got] == list(range(1, len(stream) + 1))
        assert [m["candle"] for m in got] == [as_json(c) for c in stream]
        assert {m["type"] for m in got} == {"candle"}
        assert {m["candle"]["status"] for m in got} == {"open", "closed"}

        async with client(gateway) as late:
            _, snap = await subscribe(late, snapshot=10)
            assert snap["seq"] == len(stream)
            newest = sorted(final(stream).items())[-10:]
            assert snap["candles"] == [as_json(c) for _, c in newest]


async def test_snapshot_reaches_into_storage_for_history_the_gateway_never_saw() -> None:
    stream = updates(duration=60)
    history, live = stream[: len(stream) // 2], stream[len(stream) // 2 :]
    store = MemoryStore()
    await store.write(candles=list(final(history).values()))
    async with running(store) as (bus, gateway), client(gateway) as ws:
        await publish(bus, live)
        await until(lambda: gateway.stats.candles == len(live))
        _, snap = await subscribe(ws, snapshot=1000)
        state: dict[int, dict[str, Any]] = {}
        apply(state, snap)
        assert state == expected_state(stream)
        assert snap["seq"] == len(live)


async def test_snapshot_of_a_channel_not_yet_seen_comes_from_storage() -> None:
    stream = updates()
    store = MemoryStore()
    await store.write(candles=list(final(stream).values()))
    now = stream[-1].open_time + 1_000_000_000
    async with running(store, instruments=()) as (_, gateway):
        gateway.clock = lambda: now
        async with client(gateway) as ws:
            _, snap = await subscribe(ws, snapshot=5)
            assert snap["seq"] == 0
            newest = sorted(final(stream).items())[-5:]
            assert snap["candles"] == [as_json(c) for _, c in newest]


async def test_resume_after_a_disconnect_replays_exactly_the_missed_messages() -> None:
    stream = updates()
    async with running() as (bus, gateway), client(gateway) as watcher:
        await subscribe(watcher)
        async with client(gateway) as ws:
            _, snap = await subscribe(ws)
            await publish(bus, stream[:50])
            seen = await recv_many(ws, 50)
        last = seen[-1]["seq"]
        await publish(bus, stream[50:80])
        everything = await recv_many(watcher, 80)
        async with client(gateway) as again:
            joined = await resume(again, last, snap["epoch"], rid=4)
            assert joined["id"] == 4
            replayed = await recv_many(again, 30)
            assert replayed == everything[50:80]
            await publish(bus, stream[80:90])
            assert [m["seq"] for m in await recv_many(again, 10)] == list(range(81, 91))


async def test_resume_within_the_cache_but_beyond_the_buffer_is_an_exact_catch_up() -> None:
    stream = updates()
    async with running(replay_buffer=10) as (bus, gateway), client(gateway) as ws:
        _, snap = await subscribe(ws)
        state: dict[int, dict[str, Any]] = {}
        await publish(bus, stream[:40])
        for message in await recv_many(ws, 40):
            apply(state, message)
        await ws.close()
        await publish(bus, stream[40:])
        await until(lambda: gateway.stats.candles == len(stream))
        async with client(gateway) as again:
            await resume(again, 40, snap["epoch"], rid=5)
            notice = await recv_type(again, "conflated")
            changed = final(stream[40:])
            assert notice["dropped"] == len(stream) - 40 - len(changed)
            caught = await recv_many(again, len(changed))
            seqs = [m["seq"] for m in caught]
            assert seqs == sorted(seqs)
            assert seqs[-1] == len(stream)
            for message in caught:
                apply(state, message)
            assert state == expected_state(stream)


async def test_resume_with_evicted_candles_reads_them_back_from_storage() -> None:
    stream = updates()
    store = MemoryStore()
    settings: dict[str, Any] = {
        "replay_buffer": 10,
        "cache_candles": 5,
        "max_snapshot": 5,
        "default_snapshot": 5,
    }
    async with running(store, **settings) as (bus, gateway), client(gateway) as ws:
        _, snap = await subscribe(ws)
        state: dict[int, dict[str, Any]] = {}
        await publish(bus, stream[:40])
        for message in await recv_many(ws, 40):
            apply(state, message)
        await ws.close()
        await publish(bus, stream[40:])
        await until(lambda: gateway.stats.candles == len(stream))
        await store.write(candles=list(final(stream).values()))  # the storage writer's work
        async with client(gateway) as again:
            await resume(again, 40, snap["epoch"], rid=5)
            await recv_type(again, "conflated")
            changed = final(stream[40:])
            for message in await recv_many(again, len(changed)):
                assert message["type"] == "candle"
                apply(state, message)
            assert state == expected_state(stream)


async def test_resume_from_too_far_back_without_storage_gets_a_reset_snapshot() -> None:
    stream = updates()
    settings: dict[str, Any] = {
        "replay_buffer": 10,
        "cache_candles": 5,
        "max_snapshot": 5,
        "default_snapshot": 5,
    }
    async with running(**settings) as (bus, gateway):
        async with client(gateway) as ws:
            _, snap = await subscribe(ws)
        await publish(bus, stream)
        await until(lambda: gateway.stats.candles == len(stream))
        async with client(gateway) as again:
            assert (await resume(again, 3, snap["epoch"], rid=6))["id"] == 6
            reset = await recv_type(again, "snapshot")
            assert (reset["seq"], reset["reset"]) == (len(stream), True)
            newest = sorted(final(stream).items())[-5:]
            assert reset["candles"] == [as_json(c) for _, c in newest]


async def test_resume_against_another_gateway_epoch_gets_a_reset_snapshot() -> None:
    stream = updates()
    async with running() as (bus, gateway), client(gateway) as ws:
        await publish(bus, stream[:20])
        await until(lambda: gateway.stats.candles == 20)
        for seq, epoch in ((5, "an-older-gateway"), (500, None)):
            await resume(ws, seq, epoch, rid=7)
            snap = await recv_type(ws, "snapshot")
            assert snap["reset"] is True
            assert snap["seq"] == 20


async def test_a_slow_client_is_conflated_then_closed_while_a_fast_one_gets_everything() -> None:
    stream = updates(duration=200, rate=40)
    # max_lag: phase 1's stall (the fast client reading the burst) must stay within it on a
    # busy machine (the suite's other workers); phase 2's stall outlasts it, and the heartbeats
    # (every 0.2 s) find the lag once the publishing stops
    settings: dict[str, Any] = {
        "heartbeat": 0.2,
        "limits": _limits(
            client_buffer_bytes=8192, max_lag=3.0, max_pending=100_000, socket_send_buffer=8192
        ),
    }
    async with running(**settings) as (bus, gateway), client(gateway) as fast:
        sock = await stalled_socket(gateway)
        async with client(gateway, sock=sock, max_queue=1) as slow:
            await subscribe(fast)
            await subscribe(slow)
            received: list[tuple[float, dict[str, Any]]] = []

            async def read_fast() -> None:
                while len(received) < len(stream):
                    message = await recv(fast)
                    if message["type"] != "heartbeat":
                        received.append((time.monotonic(), message))

            reader = asyncio.create_task(read_fast())
            # Phase 1: the slow client reads nothing during a burst, then catches up.
            burst = stream[:1500]
            published: list[float] = []
            for start in range(0, len(burst), 100):
                await publish(bus, burst[start : start + 100])
                published.extend([time.monotonic()] * len(burst[start : start + 100]))
                await asyncio.sleep(0.005)
            await until(lambda: len(received) >= len(burst))
            seen: list[dict[str, Any]] = []
            while not seen or seen[-1].get("seq") != len(burst):
                message = await recv(slow)
                if message["type"] != "heartbeat":
                    seen.append(message)
            notices = [m for m in seen if m["type"] == "conflated"]
            assert notices
            assert all(m["dropped"] > 0 for m in notices)
            updates_seen = [m for m in seen if m["type"] == "candle"]
            assert len(updates_seen) + sum(m["dropped"] for m in notices) == len(burst)
            seqs = [m["seq"] for m in updates_seen]
            assert seqs == sorted(seqs)
            state: dict[int, dict[str, Any]] = {}
            for message in updates_seen:
                apply(state, message)
            assert state == expected_state(burst)  # conflated, but no bar is wrong or missing

            # Phase 2: the slow client stops reading for good: it is closed with 4008.
            rest = stream[1500:]
            for start in range(0, len(rest), 50):
                await publish(bus, rest[start : start + 50])
                published.extend([time.monotonic()] * len(rest[start : start + 50]))
                await asyncio.sleep(0.02)
            await until(lambda: gateway.hub.closed[4008] == 1)
            await asyncio.wait_for(reader, TIMEOUT)
            assert [m["seq"] for _, m in received] == list(range(1, len(stream) + 1))
            delays = [got - sent for (got, _), sent in zip(received, published, strict=True)]
            assert max(delays) < 1.0
            closed = await close_frame(slow)
            assert closed.code == 4008
            assert "too slow" in closed.reason


def _limits(**values: Any) -> Any:
    from ws_gateway.settings import Limits

    return Limits(**values)


async def test_malformed_frames_get_errors_and_the_connection_survives() -> None:
    async with running() as (_, gateway), client(gateway) as ws:
        cases: list[tuple[str | bytes, str, str | None]] = [
            ("{nope", "bad_request", None),
            (b"\x00\x01binary", "bad_request", None),
            (json.dumps({"op": "dance", "id": 1}), "bad_request", "op"),
            (
                json.dumps({"op": "subscribe", "id": 2, "channel": "trades", "instrument": BTC}),
                "bad_request",
                "channel",
            ),
            (
                json.dumps(
                    {
                        "op": "subscribe",
                        "id": 3,
                        "channel": "candles",
                        "instrument": BTC,
                        "interval": "7x",
                    }
                ),
                "bad_interval",
                "interval",
            ),
            (
                json.dumps(
                    {
                        "op": "subscribe",
                        "id": 4,
                        "channel": "candles",
                        "instrument": BTC,
                        "interval": "1s",
                        "snapshot": "lots",
                    }
                ),
                "bad_request",
                "snapshot",
            ),
            (
                json.dumps(
                    {"op": "subscribe", "id": 5, "channel": "ticks", "instrument": "NOPE:XYZ"}
                ),
                "unknown_instrument",
                "instrument",
            ),
            (
                json.dumps({"op": "unsubscribe", "id": 6, "channel": "ticks", "instrument": BTC}),
                "not_subscribed",
                "channel",
            ),
            (json.dumps({"op": "ping", "pad": "x" * 10_000}), "frame_too_large", None),
        ]
        for frame, code, field in cases:
            await asyncio.wait_for(ws.send(frame), TIMEOUT)
            error = await recv_type(ws, "error")
            assert (error["code"], error["field"]) == (code, field), (frame, error)
            assert error["message"]
        await request(ws, op="ping", id=99)
        assert await recv_type(ws, "pong") == {"type": "pong", "id": 99}


async def test_deeply_nested_json_is_a_bad_request_and_the_connection_stays_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nested = '{"op":"ping","id":1,"x":' + "[" * 984  # deeper than the decoder's stack
    async with running() as (_, gateway), client(gateway) as ws:
        for _ in range(3):
            await asyncio.wait_for(ws.send(nested), TIMEOUT)
            error = await recv_type(ws, "error")
            assert (error["code"], error["field"]) == ("bad_request", None)
            assert f"nested deeper than {MAX_DEPTH} levels" in error["message"]
        await request(ws, op="ping", id=7)
        assert await recv_type(ws, "pong") == {"type": "pong", "id": 7}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_frame_beyond_the_transport_limit_closes_with_1009() -> None:
    async with running() as (_, gateway), client(gateway) as ws:
        await asyncio.wait_for(ws.send("x" * 100_000), TIMEOUT)
        assert (await close_frame(ws)).code == 1009


async def test_rate_limit_refuses_the_excess_and_closes_a_flooder() -> None:
    limits = _limits(rate=2.0, burst=3, max_rate_violations=5)
    async with running(limits=limits) as (_, gateway), client(gateway) as ws:
        for i in range(5):
            await request(ws, op="ping", id=i)
        replies = await recv_many(ws, 5)
        assert [m["type"] for m in replies] == ["pong"] * 3 + ["error"] * 2
        assert replies[3]["code"] == "rate_limited"
        await asyncio.sleep(0.6)
        await request(ws, op="ping", id=10)
        assert (await recv_type(ws, "pong"))["id"] == 10
        with contextlib.suppress(ConnectionClosed):
            for i in range(20):
                await request(ws, op="ping", id=i)
        assert (await close_frame(ws)).code == 4429


async def test_too_many_subscriptions() -> None:
    async with running(limits=_limits(max_subscriptions=2)) as (_, gateway), client(gateway) as ws:
        for label in ("1s", "1m"):
            await subscribe(ws, interval=label)
        await request(ws, op="subscribe", id=3, channel="ticks", instrument=BTC)
        error = await recv_type(ws, "error")
        assert (error["id"], error["code"]) == (3, "too_many_subscriptions")
        await request(ws, op="unsubscribe", id=4, channel="candles", instrument=BTC, interval="1s")
        assert await recv_type(ws, "unsubscribed") == {
            "type": "unsubscribed",
            "id": 4,
            "channel": "candles",
            "instrument": BTC,
            "interval": "1s",
        }
        await request(ws, op="subscribe", id=5, channel="ticks", instrument=BTC)
        assert (await recv_type(ws, "subscribed"))["id"] == 5


async def test_unsubscribed_channels_stop_sending() -> None:
    stream = updates()
    async with running() as (bus, gateway), client(gateway) as ws:
        await subscribe(ws, interval="1s")
        await request(ws, op="subscribe", id=2, channel="ticks", instrument=ETH)
        await recv_type(ws, "subscribed")
        await recv_type(ws, "snapshot")
        await request(ws, op="unsubscribe", id=3, channel="candles", instrument=BTC, interval="1s")
        await recv_type(ws, "unsubscribed")
        await publish(bus, stream[:10])
        await publish_ticks(bus, list(small_batches((ETH,))[:1]))
        tick = await recv_type(ws, "tick")
        assert tick["seq"] == 1


async def test_ticks_channel_snapshot_and_updates() -> None:
    batches = small_batches((BTC,), rows=3)[:6]
    async with running() as (bus, gateway), client(gateway) as ws:
        await request(ws, op="subscribe", id=2, channel="ticks", instrument=BTC)
        joined = await recv_type(ws, "subscribed")
        assert "interval" not in joined
        snap = await recv_type(ws, "snapshot")
        assert (snap["seq"], snap["ticks"]) == (0, [])
        await publish_ticks(bus, batches)
        got = await recv_many(ws, len(batches))
        assert [m["seq"] for m in got] == list(range(1, 7))
        trade_ids = [t["trade_id"] for m in got for t in m["ticks"]]
        assert trade_ids == [int(i) for b in batches for i in b.trade_id]
        tick = got[0]["ticks"][0]
        first = batches[0].tick(0)
        assert tick == {
            "trade_id": first.trade_id,
            "price": str(first.price),
            "size": str(first.size),
            "side": first.side.name.lower(),
            "ts_event": first.ts_event,
        }
        async with client(gateway) as other:
            await request(other, op="subscribe", id=1, channel="ticks", instrument=BTC, snapshot=4)
            await recv_type(other, "subscribed")
            snap = await recv_type(other, "snapshot")
            assert snap["seq"] == 6
            assert [t["trade_id"] for t in snap["ticks"]] == trade_ids[-4:]


async def test_heartbeats_arrive_on_schedule() -> None:
    async with running(heartbeat=0.1) as (_, gateway), client(gateway) as ws:
        beat = await recv(ws, timeout=1.0)
        assert beat["type"] == "heartbeat"
        assert abs(beat["ts"] - time.time() * 1000) < 5_000


async def test_undecodable_records_are_skipped() -> None:
    stream = updates()
    async with running() as (bus, gateway), client(gateway) as ws:
        await subscribe(ws)
        await bus.topic("md.candles").publish(b"SYNTH:BTCUSD|1s", b"\xc1garbage")
        await publish(bus, stream[:3])
        got = await recv_many(ws, 3)
        assert [m["seq"] for m in got] == [1, 2, 3]
        assert gateway.stats.undecodable == 1


async def test_stopping_the_gateway_closes_clients_with_1001() -> None:
    async with running() as (_, gateway), client(gateway) as ws:
        gateway.stop()
        assert (await close_frame(ws)).code == 1001


async def test_health_check_answers_plain_http() -> None:
    async with running() as (_, gateway):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
        writer.close()
        assert status.startswith(b"HTTP/1.1 200")


async def test_tick_resume_replays_the_buffer_or_resets() -> None:
    batches = small_batches((BTC,), rows=3)[:30]
    async with running(replay_buffer=10) as (bus, gateway):
        async with client(gateway) as ws:
            await request(ws, op="subscribe", id=1, channel="ticks", instrument=BTC)
            await recv_type(ws, "subscribed")
            snap = await recv_type(ws, "snapshot")
            await publish_ticks(bus, batches[:5])
            assert [m["seq"] for m in await recv_many(ws, 5)] == [1, 2, 3, 4, 5]
        await publish_ticks(bus, batches[5:30])
        await until(lambda: gateway.stats.tick_batches == 30)
        async with client(gateway) as again:
            await resume(again, 22, snap["epoch"], rid=2, channel="ticks")
            replayed = await recv_many(again, 8)
            assert [m["seq"] for m in replayed] == list(range(23, 31))
            trade_ids = [t["trade_id"] for m in replayed for t in m["ticks"]]
            assert trade_ids == [int(i) for b in batches[22:] for i in b.trade_id]
            await resume(again, 5, snap["epoch"], rid=3, channel="ticks")
            reset = await recv_type(again, "snapshot")
            assert (reset["seq"], reset["reset"], reset["ticks"]) == (30, True, [])


class FailingStore(MemoryStore):
    async def candles(self, *args: Any, **kwargs: Any) -> list[Candle]:
        raise OSError("database went away")

    async def instruments(self) -> list[str]:
        raise OSError("database went away")


async def test_a_failing_store_leaves_snapshots_from_memory_and_resets_for_catch_ups() -> None:
    stream = updates()
    settings: dict[str, Any] = {
        "replay_buffer": 10,
        "cache_candles": 5,
        "max_snapshot": 5,
        "default_snapshot": 5,
    }
    async with running(FailingStore(), **settings) as (bus, gateway):
        async with client(gateway) as ws:
            _, snap = await subscribe(ws)
        await publish(bus, stream)
        await until(lambda: gateway.stats.candles == len(stream))
        async with client(gateway) as ws:
            _, fresh = await subscribe(ws)
            newest = sorted(final(stream).items())[-5:]
            assert fresh["candles"] == [as_json(c) for _, c in newest]
        async with client(gateway) as again:
            await resume(again, 3, snap["epoch"], rid=2)
            reset = await recv_type(again, "snapshot")
            assert reset["reset"] is True
            await request(again, op="subscribe", id=3, channel="ticks", instrument="SYNTH:NEW")
            error = await recv_type(again, "error")
            assert error["code"] == "unknown_instrument"


async def test_the_gateway_stops_by_itself_when_its_bus_closes() -> None:
    async with running() as (bus, gateway), client(gateway) as ws:
        assert gateway.clients == 1
        await bus.close()
        assert (await close_frame(ws)).code == 1001
