"""``MarketStream`` against a real gateway (over the in-process bus): candles arrive; a
connection cut from the server side mid-stream resumes with no update missing and none
repeated, compared with a client that was never cut; refused and revoked tokens end the
stream with our error code, without a reconnect loop; a renewed token goes out as an
``auth`` frame."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

import pytest

from core.candles import Candle
from core.secrets import Secret
from sdk import (
    AccessToken,
    Backoff,
    CandleUpdate,
    Conflated,
    MarketStream,
    Message,
    SdkError,
    Snapshot,
    TickUpdate,
)
from streams.memory import MemoryBus
from tests.support.tokens import issue, key_token, refused_tokens
from tests.ws_gateway.harness import TIMEOUT, publish, publish_ticks, running, until
from tests.ws_gateway.market import BTC, chunks, final, small_batches, updates
from tests.ws_gateway.revocations import KEY_ID, gateway_with_tokens, revoke
from ws_gateway import Gateway, GatewaySettings

FAST = Backoff(base=0.02, cap=0.1)
LATE = Backoff(base=0.5, cap=0.5, uniform=lambda _low, high: high)
"""Reconnects after half a second: the updates published meanwhile are missed live."""


@dataclass
class Seen:
    """What one stream delivered on a candle channel."""

    updates: list[tuple[int, int, int]]
    """(seq, open time, revision) of every update, in order of arrival."""
    candles: dict[int, int]
    """Open time -> the highest revision held (snapshots and updates upserted)."""
    conflated: int = 0
    resets: list[tuple[str, int]] = field(default_factory=list)
    """(epoch, seq) of every reset snapshot."""

    @classmethod
    def empty(cls) -> Seen:
        return cls([], {})

    def take(self, message: Message) -> None:
        if isinstance(message, Snapshot):
            if message.reset:
                self.candles.clear()
                self.resets.append((message.epoch, message.seq))
            for candle in message.candles:
                self.upsert(candle.open_time, candle.revision)
        elif isinstance(message, CandleUpdate):
            candle = message.candle
            self.updates.append((message.seq, candle.open_time, candle.revision))
            self.upsert(candle.open_time, candle.revision)
        elif isinstance(message, Conflated):
            self.conflated += message.dropped

    def upsert(self, open_time: int, revision: int) -> None:
        self.candles[open_time] = max(revision, self.candles.get(open_time, -1))

    @property
    def last_seq(self) -> int:
        return self.updates[-1][0] if self.updates else 0


def expected(candles: list[Candle]) -> dict[int, int]:
    return {c.open_time // 1_000_000: c.revision for c in final(candles).values()}


async def follow(stream: MarketStream, seen: Seen) -> None:
    async for message in stream:
        seen.take(message)


async def test_a_subscription_receives_the_snapshot_and_every_update() -> None:
    candles = updates(duration=10.0)
    async with running() as (bus, gateway), MarketStream(gateway.url, backoff=FAST) as stream:
        await asyncio.wait_for(stream.subscribe_candles(BTC.lower(), "1s"), TIMEOUT)
        seen = Seen.empty()
        reader = asyncio.create_task(follow(stream, seen))
        await publish(bus, candles)
        await until(lambda: seen.last_seq == len(candles))
        reader.cancel()
    assert [seq for seq, _, _ in seen.updates] == list(range(1, len(candles) + 1))
    assert seen.candles == expected(candles)


@pytest.mark.parametrize("replay_buffer", [1000, 5], ids=["replayed", "caught-up"])
async def test_a_connection_cut_mid_stream_resumes_with_no_gap_and_no_repeat(
    replay_buffer: int,
) -> None:
    """Cut from the server side (the socket aborted, no close frame) while updates keep
    coming: the cut stream delivers exactly what an uncut one does (the replay buffer's
    messages, or with a small buffer the exact catch-up announced by ``conflated``)."""
    candles = updates(duration=20.0)
    first, second = candles[: len(candles) // 2], candles[len(candles) // 2 :]
    async with (
        running(replay_buffer=replay_buffer) as (bus, gateway),
        MarketStream(gateway.url, backoff=FAST) as steady,
    ):
        await steady.subscribe_candles(BTC, "1s")
        steady_connection = set(gateway.sessions)
        async with MarketStream(gateway.url, backoff=LATE) as cut:
            await cut.subscribe_candles(BTC, "1s")
            seen_steady, seen_cut = Seen.empty(), Seen.empty()
            readers = [
                asyncio.create_task(follow(steady, seen_steady)),
                asyncio.create_task(follow(cut, seen_cut)),
            ]
            await publish(bus, first)
            await until(lambda: seen_cut.last_seq == len(first))
            (victim,) = set(gateway.sessions) - steady_connection
            victim.transport.abort()
            for chunk in chunks(second, 10):
                await publish(bus, chunk)
            await until(lambda: seen_steady.last_seq == len(candles))
            assert cut.connections == 1  # all of the second half came while it was away
            await until(lambda: seen_cut.last_seq == len(candles))
            for reader in readers:
                reader.cancel()
    assert (cut.connections, cut.core.resumes) == (2, 1)
    assert cut.core.dropped_repeats == 0
    seqs = [seq for seq, _, _ in seen_cut.updates]
    assert seqs == sorted(set(seqs))  # rising: nothing delivered twice
    assert seen_cut.candles == seen_steady.candles == expected(candles)
    if replay_buffer == 1000:  # every message again, as it was sent live
        assert seen_cut.updates == seen_steady.updates
        assert seen_cut.conflated == 0
    else:  # the latest versions, announced by conflated for the numbers they skip
        assert seen_cut.conflated > 0
        assert seen_cut.conflated + len(seen_cut.updates) == len(candles)


# -- tokens -----------------------------------------------------------------------------------


@dataclass
class Tokens:
    """A token source handing out the given tokens one after another."""

    values: list[str]
    renew_in: float = 300.0
    handed: int = 0

    async def access_token(self) -> AccessToken:
        value = self.values[min(self.handed, len(self.values) - 1)]
        self.handed += 1
        now = time.time()
        return AccessToken(Secret(value), now + 300, now + self.renew_in, "pro")


async def drain(stream: MarketStream) -> None:
    async for _ in stream:
        pass


async def ended_with(stream: MarketStream) -> SdkError:
    with pytest.raises(SdkError) as ended:
        await asyncio.wait_for(drain(stream), TIMEOUT)
    return ended.value


async def test_a_refused_token_ends_the_stream_with_unauthorized_and_no_reconnect() -> None:
    forged = refused_tokens()["signature"]
    async with (
        gateway_with_tokens(anonymous=None) as (_, gateway),
        MarketStream(gateway.url, Tokens([forged]), backoff=FAST) as stream,
    ):
        with pytest.raises(SdkError) as refused:
            await asyncio.wait_for(stream.subscribe_candles(BTC, "1s"), TIMEOUT)
        assert refused.value.code == "unauthorized"
        assert (await ended_with(stream)).code == "unauthorized"
        assert stream.connections == 1
        assert forged not in str(refused.value)
        with pytest.raises(SdkError) as closed:
            await stream.subscribe_ticks(BTC)
        assert closed.value.code == "unauthorized"


async def test_a_revoked_key_ends_the_stream_with_revoked() -> None:
    async with gateway_with_tokens(anonymous=None) as (bus, gateway):
        source = Tokens([key_token(KEY_ID)])
        async with MarketStream(gateway.url, source, backoff=FAST) as stream:
            await asyncio.wait_for(stream.subscribe_candles(BTC, "1s"), TIMEOUT)
            await revoke(bus, "key-revoked", f"key:{KEY_ID}")
            assert (await ended_with(stream)).code == "revoked"
            await asyncio.sleep(0.2)  # time for a reconnect, were there one
            assert stream.connections == 1
            assert source.handed == 1


async def test_a_renewed_token_is_sent_as_an_auth_frame_on_the_open_connection() -> None:
    first, renewed = issue(ttl_s=300), issue(ttl_s=600)
    candles = updates(duration=4.0)
    async with gateway_with_tokens(anonymous=None) as (bus, gateway):
        source = Tokens([first, renewed], renew_in=0.2)
        async with MarketStream(gateway.url, source, backoff=FAST) as stream:
            await asyncio.wait_for(stream.subscribe_candles(BTC, "1s"), TIMEOUT)
            expires = stream.core.expires
            assert expires is not None
            await until(lambda: (stream.core.expires or 0) >= expires + 250)
            seen = Seen.empty()
            reader = asyncio.create_task(follow(stream, seen))
            await publish(bus, candles)
            await until(lambda: seen.last_seq == len(candles))
            reader.cancel()
            assert stream.connections == 1


async def test_a_restarted_gateway_answers_the_resume_with_a_reset_snapshot() -> None:
    """Another epoch: the numbers of the old gateway mean nothing to the new one, so the
    stream gets a reset snapshot and the new gateway's numbers from there on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = GatewaySettings(port=port, instruments=(BTC,))
    candles = updates(duration=10.0)
    first, second = candles[: len(candles) // 2], candles[len(candles) // 2 :]
    url = f"ws://127.0.0.1:{port}/ws"
    seen = Seen.empty()
    async with MemoryBus(partitions=2) as bus, MarketStream(url, backoff=FAST) as stream:
        async with Gateway(bus, None, settings):  # the stream connects once it listens
            await asyncio.wait_for(stream.subscribe_candles(BTC, "1s"), TIMEOUT)
            reader = asyncio.create_task(follow(stream, seen))
            await publish(bus, first)
            await until(lambda: seen.last_seq == len(first))
        async with Gateway(bus, None, settings) as new:
            # the resume answered before the new gateway numbers anything (connected is not
            # yet resumed: an update published first would be in the reset's seq)
            await until(lambda: len(seen.resets) == 1)
            assert new.clients == 1
            await publish(bus, second)
            await until(lambda: seen.last_seq == len(second))
            reader.cancel()
    assert (stream.connections, stream.core.resumes) == (2, 1)
    assert seen.resets == [(new.epoch, 0)]
    assert seen.candles == expected(second)  # what the new gateway holds, nothing stale
    assert [seq for seq, _, _ in seen.updates] == [
        *range(1, len(first) + 1),
        *range(1, len(second) + 1),
    ]


async def test_a_silent_connection_is_taken_for_dead_and_resumed() -> None:
    """No frame for ``silence`` seconds (the gateway's heartbeats are 5 s apart here):
    the stream reconnects and resumes, and the updates published since arrive in order."""
    candles = updates(duration=4.0)
    async with (
        running() as (bus, gateway),
        MarketStream(gateway.url, backoff=FAST, silence=0.2) as stream,
    ):
        await asyncio.wait_for(stream.subscribe_candles(BTC, "1s"), TIMEOUT)
        await until(lambda: stream.connections >= 2)
        seen = Seen.empty()
        reader = asyncio.create_task(follow(stream, seen))
        await publish(bus, candles)
        await until(lambda: seen.last_seq == len(candles))
        reader.cancel()
    assert stream.core.resumes >= 1
    assert [seq for seq, _, _ in seen.updates] == list(range(1, len(candles) + 1))


async def test_ticks_missed_while_cut_are_replayed_in_order() -> None:
    batches = small_batches(duration=6.0)
    first, second = batches[: len(batches) // 2], batches[len(batches) // 2 :]
    trades: list[int] = []

    async def read_ticks(stream: MarketStream) -> None:
        async for message in stream:
            if isinstance(message, TickUpdate):
                trades.extend(tick.trade_id for tick in message.ticks)

    async with (
        running() as (bus, gateway),
        MarketStream(gateway.url, backoff=LATE) as stream,
    ):
        await asyncio.wait_for(stream.subscribe_ticks(BTC), TIMEOUT)
        reader = asyncio.create_task(read_ticks(stream))
        await publish_ticks(bus, first)
        await until(lambda: len(trades) == sum(len(batch) for batch in first))
        (connection,) = gateway.sessions
        connection.transport.abort()
        await publish_ticks(bus, second)
        await until(lambda: len(trades) == sum(len(batch) for batch in batches))
        reader.cancel()
    assert (stream.connections, stream.core.resumes) == (2, 1)
    assert trades == [int(i) for batch in batches for i in batch.trade_id]
