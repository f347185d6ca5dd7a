"""A running gateway on 127.0.0.1 (a free port) fed through an in-process bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from core.alert_reads import AlertReads
from core.candles import Candle
from core.codecs import (
    candle_key,
    encode_candle,
    encode_feed_gap,
    encode_tick_batch,
    instrument_key,
)
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS
from core.trading_reads import TradingReads
from storage.repository import MarketDataStore
from streams.memory import MemoryBus
from ws_gateway import Gateway, GatewaySettings
from ws_gateway.auth import Authenticator

from .market import BTC, ETH

TIMEOUT = 5.0
"""The longest any single wait in these tests may take."""


@contextlib.asynccontextmanager
async def running(
    store: MarketDataStore | None = None,
    authenticator: Authenticator | None = None,
    clock: Callable[[], int] = time.time_ns,
    bus: MemoryBus | None = None,
    reads: TradingReads | None = None,
    alert_reads: AlertReads | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[MemoryBus, Gateway]]:
    """A gateway on a bus of its own (or ``bus``), reading accounts' snapshots from
    ``reads`` and their fired alerts from ``alert_reads`` when given."""
    settings.setdefault("instruments", (BTC, ETH))
    config = GatewaySettings(port=0, **settings)
    async with contextlib.AsyncExitStack() as stack:
        if bus is None:
            bus = await stack.enter_async_context(MemoryBus(partitions=2))
        gateway = Gateway(
            bus, store, config, authenticator, clock=clock, reads=reads, alert_reads=alert_reads
        )
        await asyncio.wait_for(gateway.__aenter__(), TIMEOUT)
        try:
            yield bus, gateway
        finally:
            await asyncio.wait_for(gateway.__aexit__(None, None, None), 2 * TIMEOUT)


@contextlib.asynccontextmanager
async def client(
    gateway: Gateway, path: str = "/ws", **options: Any
) -> AsyncIterator[ClientConnection]:
    url = f"ws://127.0.0.1:{gateway.port}{path}"
    options.setdefault("close_timeout", 1.0)
    ws = await asyncio.wait_for(connect(url, open_timeout=TIMEOUT, **options), TIMEOUT)
    try:
        yield ws
    finally:
        try:
            await asyncio.wait_for(ws.close(), TIMEOUT)
        finally:
            ws.transport.abort()


async def stalled_socket(gateway: Gateway) -> socket.socket:
    """A connected socket with a tiny receive buffer, for a client that stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", gateway.port)), TIMEOUT)
    except BaseException:
        sock.close()  # not left to the garbage collector (a ResourceWarning in a later test)
        raise
    return sock


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def close_frame(ws: ClientConnection, timeout: float = TIMEOUT) -> Close:
    """Read (and drop) messages until the connection closes; the close frame received."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await recv(ws, max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        received = closed.rcvd
    if received is None:
        raise AssertionError("the connection closed without a close frame")
    return received


async def recv_type(ws: ClientConnection, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message of type ``kind``, skipping heartbeats."""
    deadline = time.monotonic() + timeout
    while True:
        message = await recv(ws, max(0.01, deadline - time.monotonic()))
        if message["type"] == kind:
            return message
        assert message["type"] == "heartbeat", message


async def recv_many(ws: ClientConnection, count: int, timeout: float = TIMEOUT) -> list[Any]:
    """The next ``count`` messages that are not heartbeats."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        message = await recv(ws, max(0.01, deadline - time.monotonic()))
        if message["type"] != "heartbeat":
            out.append(message)
    return out


async def request(ws: ClientConnection, **body: Any) -> None:
    await asyncio.wait_for(ws.send(json.dumps(body)), TIMEOUT)


async def subscribe(
    ws: ClientConnection, instrument: str = BTC, interval: str = "1s", **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Subscribe to a candle channel; the ``subscribed`` and ``snapshot`` messages."""
    await request(
        ws,
        op="subscribe",
        id=1,
        channel="candles",
        instrument=instrument,
        interval=interval,
        **extra,
    )
    return await recv_type(ws, "subscribed"), await recv_type(ws, "snapshot")


async def resume(
    ws: ClientConnection,
    seq: int,
    epoch: str | None,
    rid: int,
    channel: str = "candles",
    instrument: str = BTC,
    interval: str | None = "1s",
) -> dict[str, Any]:
    """Resume a channel after ``seq`` of ``epoch``; the ``subscribed`` answer."""
    where: dict[str, Any] = {"channel": channel, "instrument": instrument}
    if channel == "candles":
        where["interval"] = interval
    await request(ws, op="resume", id=rid, seq=seq, epoch=epoch, **where)
    return await recv_type(ws, "subscribed")


async def publish(bus: MemoryBus, candles: Iterable[Candle]) -> None:
    topic = bus.topic(CANDLES)
    for candle in candles:
        await asyncio.wait_for(topic.publish(candle_key(candle), encode_candle(candle)), TIMEOUT)


async def publish_ticks(bus: MemoryBus, batches: Iterable[TickBatch]) -> None:
    topic = bus.topic(TICKS)
    for batch in batches:
        key = instrument_key(batch.instrument)
        await asyncio.wait_for(topic.publish(key, encode_tick_batch(batch)), TIMEOUT)


async def publish_gap(bus: MemoryBus, gap: FeedGap) -> None:
    """A venue connector's feed-gap marker, on ``md.ticks`` under the instrument's key."""
    topic = bus.topic(TICKS)
    await asyncio.wait_for(
        topic.publish(instrument_key(gap.instrument), encode_feed_gap(gap)), TIMEOUT
    )


async def until(condition: Any, timeout: float = TIMEOUT) -> None:
    """Wait (bounded) until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
