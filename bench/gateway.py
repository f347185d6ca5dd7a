"""WebSocket fan-out: the gateway against naive loops and Starlette, clients in another process.

The server process (pinned to core 0) runs an in-process bus, a publisher that puts candle
updates of ``--instruments`` instruments on ``md.candles``, and one contender:

- ``gateway``: :class:`ws_gateway.Gateway` (``websockets`` server; each message framed once,
  written to every client's socket without awaiting, one write per client per round);
- ``naive``: the same ``websockets`` server, fanning out with ``await ws.send(text)`` for each
  client in turn (the loop the gateway must beat);
- ``broadcast``: ``websockets.asyncio.server.broadcast(clients, text)`` (one frame built per
  client, no backpressure and no conflation);
- ``starlette``: a Starlette WebSocket route under uvicorn, one queue and one writer task per
  client doing ``await websocket.send_text(text)`` (the best shape ASGI allows).

The client process (this one, pinned to core 1) opens ``--clients`` raw WebSocket connections
(a minimal asyncio protocol, so that the clients cost as little as possible), each subscribed
to the 1m candles of ``--per-client`` instruments, and measures delivered messages per second
and the latency from publish to receipt (the publisher stamps ``time.time_ns()`` into each
candle's ``last_trade_id``; both processes read the same clock). Two phases per run: paced at
``--offered`` deliveries per second (publishes/s times subscribers per channel), then flat out.

Usage: ``python -m bench.gateway [--clients 1000,5000] [--contenders gateway,naive,...]
[--offered 20000] [--seconds 5] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import resource
import socket
import sys
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import msgspec
from opentelemetry import trace
from prometheus_client import generate_latest

from bench.common import Discard
from core.candles import Candle, CandleStatus
from core.codecs import candle_key, decode_candle, encode_candle
from core.intervals import Interval
from core.topics import CANDLES
from streams.bus import Bus, next_offsets
from streams.memory import MemoryBus
from telemetry import tracing
from telemetry.metrics import REGISTRY
from ws_gateway import Gateway, GatewaySettings, Limits
from ws_gateway.wire import ChannelFrames, ChannelKey, candle_json

CONTENDERS = ("gateway", "naive", "broadcast", "starlette")
TELEMETRY = "gateway-telemetry"
"""The gateway with tracing at 1% and a scrape a second (``bench/telemetry.py``; not one of
this benchmark's own contenders)."""
SCRAPE_EVERY_S = 1.0
INTERVAL = Interval.parse("1m")
MINUTE_NS = INTERVAL.ns
OPEN_TIME = 1_767_225_600 * 1_000_000_000
SERVER_CPU, CLIENT_CPU = 0, 1
CONNECT_CONCURRENCY = 200
BUS_CAPACITY = 64
"""Records the bench bus retains past the slowest group: a flat-out publisher waits there."""


def instruments(count: int) -> list[str]:
    return [f"BENCH:I{k:03d}" for k in range(count)]


def raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def pin(cpu: int | None) -> None:
    if cpu is None:
        return
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the server process -----------------------------------------------------------------------


class Publisher:
    """Candle updates round-robin over the instruments; each a new revision of the open bar,
    with the publish time (UTC ns) in ``last_trade_id``."""

    def __init__(self, bus: Bus, names: list[str], traced: bool = False) -> None:
        self.topic = bus.topic(CANDLES)
        self.names = names
        self.revision = 0
        self.published = 0
        self.traced = traced
        """Whether each candle is published as the engine does when tracing: the sampler
        asked, and a sampled one published in its span with the trace context's header."""

    def candle(self, instrument: str) -> Candle:
        return Candle(
            instrument=instrument,
            interval=INTERVAL,
            open_time=OPEN_TIME,
            price_scale=2,
            size_scale=6,
            open_raw=8_700_012,
            high_raw=8_712_345,
            low_raw=8_690_001,
            close_raw=8_705_432,
            volume_raw=12_345_678,
            quote_volume_raw=107_400_000_000_000,
            taker_buy_volume_raw=6_000_000,
            trades=1234,
            first_trade_id=1,
            last_trade_id=time.time_ns(),
            revision=self.revision,
            status=CandleStatus.OPEN,
        )

    async def run(self, per_second: float | None, seconds: float) -> int:
        """Publish at ``per_second`` (None: as fast as the bus takes them) for ``seconds``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        names = self.names
        while (elapsed := loop.time() - start) < seconds:
            due = 64 if per_second is None else int(elapsed * per_second) - sent
            for _ in range(max(0, due)):
                if sent % len(names) == 0:
                    self.revision += 1
                candle = self.candle(names[sent % len(names)])
                if self.traced and (span := tracing.sampled_root("engine.step")) is not None:
                    with trace.use_span(span, end_on_exit=True):
                        headers = tracing.headers_now()
                        await self.topic.publish(
                            candle_key(candle), encode_candle(candle), headers=headers
                        )
                else:
                    await self.topic.publish(candle_key(candle), encode_candle(candle))
                sent += 1
            await asyncio.sleep(0 if per_second is None else 0.002)
        self.published += sent
        return sent


class Contender:
    """A server under test: ``start`` returns its port."""

    async def start(self) -> int:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class GatewayContender(Contender):
    def __init__(self, bus: Bus, names: list[str]) -> None:
        limits = Limits(max_lag=60.0, max_pending=100_000)
        settings = GatewaySettings(
            port=0,
            instruments=tuple(names),
            limits=limits,
            max_connections_per_address=0,  # every client comes from 127.0.0.1
        )
        self.gateway = Gateway(bus, None, settings)

    async def start(self) -> int:
        await self.gateway.__aenter__()
        return self.gateway.port

    async def stop(self) -> None:
        await self.gateway.__aexit__(None, None, None)


class Channels:
    """The minimal contenders' shared part: subscriptions, sequence numbers, message bytes
    (the same messages the gateway sends), and a bus consumer calling ``fan_out``."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.subscribers: dict[str, list[Any]] = defaultdict(list)
        self.frames: dict[str, ChannelFrames] = {}
        self.seq: dict[str, int] = defaultdict(int)
        self.task: asyncio.Task[None] | None = None

    def subscribe(self, request: str | bytes, client: Any) -> bytes | None:
        body = json.loads(request)
        if body.get("op") != "subscribe":
            return None
        key = f"{body['instrument']}|{body['interval']}"
        self.subscribers[key].append(client)
        return msgspec.json.encode({"type": "subscribed", "id": body.get("id")})

    def forget(self, client: Any) -> None:
        for clients in self.subscribers.values():
            if client in clients:
                clients.remove(client)

    def message(self, value: bytes) -> tuple[list[Any], str]:
        candle = decode_candle(value)
        key = f"{candle.instrument}|{candle.interval.label}"
        frames = self.frames.get(key)
        if frames is None:
            channel = ChannelKey("candles", candle.instrument, candle.interval.label)
            frames = self.frames[key] = ChannelFrames(channel, "bench")
        self.seq[key] += 1
        return self.subscribers[key], frames.update(self.seq[key], candle_json(candle)).decode()

    def consume(self, fan_out: Callable[[list[Any], str], Awaitable[None]]) -> None:
        async def loop() -> None:
            subscription = self.bus.subscribe("bench-mini", [CANDLES], start="latest")
            async with subscription:
                while True:
                    records = await subscription.poll(500, 0.25)
                    for record in records:
                        clients, text = self.message(record.value)
                        await fan_out(clients, text)
                    if records:
                        await subscription.commit(next_offsets(records))

        self.task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class WebsocketsContender(Contender):
    """``naive`` (await each send in turn) or ``broadcast`` (websockets' broadcast)."""

    def __init__(self, bus: Bus, mode: str) -> None:
        self.channels = Channels(bus)
        self.mode = mode
        self.server: Any = None

    async def start(self) -> int:
        from websockets.asyncio.server import ServerConnection, broadcast, serve
        from websockets.exceptions import ConnectionClosed

        channels = self.channels

        async def handler(connection: ServerConnection) -> None:
            try:
                async for request in connection:
                    reply = channels.subscribe(request, connection)
                    if reply is not None:
                        await connection.send(reply.decode())
            except ConnectionClosed:
                pass
            finally:
                channels.forget(connection)

        async def naive(clients: list[Any], text: str) -> None:
            for client in list(clients):
                with contextlib.suppress(ConnectionClosed):
                    await client.send(text)

        async def broadcast_all(clients: list[Any], text: str) -> None:
            broadcast(clients, text)

        self.server = await serve(handler, "127.0.0.1", 0, compression=None, backlog=4096)
        channels.consume(naive if self.mode == "naive" else broadcast_all)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        await self.channels.stop()
        self.server.close()
        await self.server.wait_closed()


class StarletteContender(Contender):
    """A Starlette WebSocket route under uvicorn; one queue and writer task per client."""

    QUEUE = 1000

    def __init__(self, bus: Bus) -> None:
        self.channels = Channels(bus)
        self.server: Any = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import WebSocketRoute
        from starlette.websockets import WebSocket, WebSocketDisconnect

        channels = self.channels

        async def endpoint(websocket: WebSocket) -> None:
            await websocket.accept()
            queue: asyncio.Queue[str] = asyncio.Queue(self.QUEUE)

            async def write() -> None:
                while True:
                    await websocket.send_text(await queue.get())

            writer = asyncio.create_task(write())
            try:
                while True:
                    reply = channels.subscribe(await websocket.receive_text(), queue)
                    if reply is not None:
                        queue.put_nowait(reply.decode())
            except WebSocketDisconnect:
                pass
            finally:
                channels.forget(queue)
                writer.cancel()

        async def fan_out(queues: list[Any], text: str) -> None:
            for queue in queues:
                if queue.qsize() < self.QUEUE:
                    queue.put_nowait(text)

        app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app,
            ws="websockets-sansio",
            log_level="warning",
            lifespan="off",
            backlog=4096,
            ws_ping_interval=None,
            ws_per_message_deflate=False,
        )
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            await asyncio.sleep(0.01)
        channels.consume(fan_out)
        port: int = sock.getsockname()[1]
        return port

    async def stop(self) -> None:
        await self.channels.stop()
        self.server.should_exit = True
        if self.task is not None:
            await self.task


def make_contender(name: str, bus: Bus, names: list[str]) -> Contender:
    if name in ("gateway", TELEMETRY):
        return GatewayContender(bus, names)
    if name in ("naive", "broadcast"):
        return WebsocketsContender(bus, name)
    if name == "starlette":
        return StarletteContender(bus)
    raise ValueError(f"unknown contender {name!r}")


def server_process(name: str, instrument_count: int, pipe: Connection, cpu: int | None) -> None:
    pin(cpu)
    raise_open_files()
    asyncio.run(_serve(name, instruments(instrument_count), pipe))


def _telemetry_on() -> Callable[[], None]:
    """Tracing at 1% (spans handed to a batch processor that exports nowhere) and a scrape of
    the metrics every :data:`SCRAPE_EVERY_S` on a thread, as Prometheus would; the stop."""
    settings = tracing.TraceSettings("gateway", sample=tracing.DEFAULT_SAMPLE)
    tracing.configure(settings, Discard(), batched=True)
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(SCRAPE_EVERY_S):
            generate_latest(REGISTRY)

    thread = threading.Thread(target=scrape, name="scrape", daemon=True)
    thread.start()

    def stopping() -> None:
        stop.set()
        thread.join()
        tracing.shutdown()

    return stopping


async def _serve(name: str, names: list[str], pipe: Connection) -> None:
    telemetry_off = _telemetry_on() if name == TELEMETRY else lambda: None
    async with MemoryBus(partitions=4, capacity=BUS_CAPACITY) as bus:
        contender = make_contender(name, bus, names)
        port = await contender.start()
        publisher = Publisher(bus, names, traced=name == TELEMETRY)
        pipe.send(("ready", port))
        while True:
            command, *args = await asyncio.to_thread(pipe.recv)
            if command == "stop":
                break
            per_second, seconds = args
            cpu = cpu_seconds()
            sent = await publisher.run(per_second, seconds)
            pipe.send(("published", sent, cpu_seconds() - cpu))
        await contender.stop()
    telemetry_off()
    pipe.send(("stopped",))


# -- the client process ---------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What every client received: candle messages, and latencies while recording."""

    candles: int = 0
    recording: bool = False
    latencies: array[int] = field(default_factory=lambda: array("q"))
    closed: int = 0


_CANDLE = b'{"type":"candle"'
_SUBSCRIBED = b'{"type":"subscribed"'
_LAST_TRADE = b'"last_trade_id":'


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (RFC 6455: clients mask, with any key; this one is fixed)."""
    mask = b"\x5a\xa5\x3c\xc3"
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    else:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    return header + mask + masked


class BenchClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, then counts candle messages and their latency."""

    def __init__(self, host: str, port: int, tally: Tally, subscriptions: list[bytes]) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.handshake = (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.tally = tally
        self.subscriptions = subscriptions
        self.buffer = b""
        self.open = False
        self.acked = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before subscribing"))

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            data = self.buffer + data
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(data[:60].decode(errors="replace")))
                return
            self.open = True
            assert self.transport is not None
            self.transport.write(b"".join(self.subscriptions))
            data = data[end + 4 :]
        self.buffer = self._frames(data)

    def _frames(self, data: bytes) -> bytes:
        tally = self.tally
        now = time.time_ns()
        pos, size = 0, len(data)
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = data[pos] & 0x0F
            if opcode == 1:
                if data.startswith(_CANDLE, start):
                    tally.candles += 1
                    if tally.recording:
                        at = data.find(_LAST_TRADE, start, end) + len(_LAST_TRADE)
                        stamp = int(data[at : data.find(b",", at, end)])
                        tally.latencies.append(now - stamp)
                elif data.startswith(_SUBSCRIBED, start):
                    self.acked += 1
                    if self.acked == len(self.subscriptions) and not self.ready.done():
                        self.ready.set_result(None)
            elif opcode == 9 and self.transport is not None:  # ping: pong
                self.transport.write(client_frame(data[start:end], opcode=10))
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
            pos = end
        return data[pos:]


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    offered: float | None
    """Deliveries/s asked of the server (None: flat out)."""
    delivered: float
    p50_ms: float
    p99_ms: float
    server_cpu: float
    client_cpu: float
    seconds: float


@dataclass(slots=True)
class Run:
    contender: str
    clients: int
    connect_seconds: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    error: str | None = None


async def connect_clients(
    port: int, count: int, names: list[str], per_client: int, tally: Tally
) -> list[BenchClient]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    clients: list[BenchClient] = []

    async def one(k: int) -> None:
        picks = [names[(k * per_client + j) % len(names)] for j in range(per_client)]
        requests = [
            client_frame(
                msgspec.json.encode(
                    {
                        "op": "subscribe",
                        "id": j,
                        "channel": "candles",
                        "instrument": name,
                        "interval": INTERVAL.label,
                        "snapshot": 0,
                    }
                )
            )
            for j, name in enumerate(picks)
        ]
        async with gate:
            client = BenchClient("127.0.0.1", port, tally, requests)
            for attempt in range(5):
                try:
                    await loop.create_connection(lambda: client, "127.0.0.1", port)
                    break
                except OSError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2)
            await asyncio.wait_for(client.ready, 30)
        clients.append(client)

    await asyncio.gather(*(one(k) for k in range(count)))
    return clients


def percentile(values: array[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


async def measure(
    pipe: Connection,
    tally: Tally,
    name: str,
    offered: float | None,
    per_channel: float,
    seconds: float,
) -> Phase:
    """One phase: publish for ``seconds``; count what arrives, then let the rest drain."""
    return (await measure_together(pipe, [(tally, name, per_channel)], offered, seconds))[0]


async def measure_together(
    pipe: Connection,
    groups: Sequence[tuple[Tally, str, float]],
    offered: float | None,
    seconds: float,
) -> list[Phase]:
    """One phase for groups of clients subscribed to the same channels at once (each group's
    tally, name and clients per channel): the same publishes reach every group, so that the
    groups are compared over the same moments. ``offered`` counts every group's deliveries.
    """
    per_channel = sum(count for _, _, count in groups)
    per_second = None if offered is None else offered / per_channel
    before = {}
    for tally, name, _ in groups:
        tally.latencies = array("q")
        before[name] = tally.candles
    cpu = time.process_time()
    start = time.perf_counter()
    for tally, _, _ in groups:
        tally.recording = True
    pipe.send(("publish", per_second, seconds))
    reply = await asyncio.to_thread(pipe.recv)
    published, server_cpu = reply[1], reply[2]
    end = time.perf_counter()
    early = {name: tally.candles - before[name] for tally, name, _ in groups}
    expected = {name: before[name] + round(published * count) for _, name, count in groups}
    deadline = time.perf_counter() + max(0.5, seconds)
    while time.perf_counter() < deadline and any(
        tally.candles < expected[name] for tally, name, _ in groups
    ):
        await asyncio.sleep(0.01)
    drained = time.perf_counter()
    client_cpu = time.process_time() - cpu
    phases = []
    for tally, name, count in groups:
        tally.recording = False
        if offered is None:  # flat out: what arrived while the publisher ran
            rate = early[name] / (end - start)
        else:
            rate = (tally.candles - before[name]) / (drained - start)
        phases.append(
            Phase(
                name,
                None if offered is None else offered * count / per_channel,
                rate,
                percentile(tally.latencies, 0.50),
                percentile(tally.latencies, 0.99),
                server_cpu,
                client_cpu,
                end - start,
            )
        )
    return phases


async def run_one(
    contender: str,
    clients: int,
    names: list[str],
    per_client: int,
    offered: float,
    seconds: float,
    pinned: bool = True,
) -> Run:
    run = Run(contender, clients)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    cpu = SERVER_CPU if pinned else None
    process = context.Process(target=server_process, args=(contender, len(names), child, cpu))
    process.start()
    try:
        message = await asyncio.wait_for(asyncio.to_thread(parent.recv), 60)
        port = message[1]
        tally = Tally()
        started = time.perf_counter()
        connected = await connect_clients(port, clients, names, per_client, tally)
        run.connect_seconds = time.perf_counter() - started
        per_channel = clients * per_client / len(names)
        await asyncio.sleep(0.2)
        run.phases.append(await measure(parent, tally, "paced", offered, per_channel, seconds))
        run.phases.append(await measure(parent, tally, "flat out", None, per_channel, seconds))
        for client in connected:
            if client.transport is not None:
                client.transport.close()
    except (OSError, TimeoutError, ConnectionError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(OSError, BrokenPipeError):
            parent.send(("stop",))
        await asyncio.to_thread(process.join, 30)
        if process.is_alive():
            process.kill()
            process.join()
    return run


def print_runs(runs: list[Run]) -> None:
    print(
        f"\n  {'contender':<10} {'clients':>7} {'phase':<9} {'offered/s':>10} {'delivered/s':>12}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'srv cpu':>8} {'cli cpu':>8} {'srv us/msg':>10}"
    )
    for run in runs:
        if run.error is not None:
            print(f"  {run.contender:<10} {run.clients:>7} failed: {run.error}")
            continue
        for phase in run.phases:
            offered = "max" if phase.offered is None else f"{phase.offered:,.0f}"
            server, client = phase.server_cpu / phase.seconds, phase.client_cpu / phase.seconds
            per_message = server / phase.delivered * 1e6 if phase.delivered else float("nan")
            print(
                f"  {run.contender:<10} {run.clients:>7} {phase.name:<9} {offered:>10}"
                f" {phase.delivered:>12,.0f} {phase.p50_ms:>8.1f} {phase.p99_ms:>8.1f}"
                f" {server:>7.0%} {client:>7.0%} {per_message:>10.1f}"
            )


def ratios(runs: list[Run]) -> None:
    """Flat-out throughput of each contender over the naive loop's, per client count."""
    by_key = {
        (run.contender, run.clients): run.phases[-1].delivered
        for run in runs
        if run.error is None and run.phases
    }
    for clients in sorted({run.clients for run in runs}):
        naive = by_key.get(("naive", clients))
        if not naive:
            continue
        parts = [
            f"{name} {by_key[(name, clients)] / naive:.1f}x"
            for name in CONTENDERS
            if (name, clients) in by_key
        ]
        print(f"  flat out vs naive, {clients} clients: " + ", ".join(parts))


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1000,5000", help="client counts, comma-separated")
    parser.add_argument("--contenders", default="gateway,naive", help=", ".join(CONTENDERS))
    parser.add_argument("--instruments", type=int, default=10)
    parser.add_argument("--per-client", type=int, default=3, help="subscriptions per client")
    parser.add_argument("--offered", type=float, default=20_000, help="paced deliveries/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the OS place both processes (default: pinned)"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every contender")
    args = parser.parse_args(argv)
    if args.smoke:
        counts, contenders = [20], list(CONTENDERS)
        args.instruments, args.offered, args.seconds = 4, 400.0, 0.5
    else:
        counts = [int(part) for part in args.clients.split(",")]
        contenders = [part.strip() for part in args.contenders.split(",")]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    pin(None if args.no_pin else CLIENT_CPU)
    raise_open_files()
    names = instruments(args.instruments)
    print(
        f"WebSocket fan-out: {args.instruments} instruments, {args.per_client} subscriptions"
        f" per client, {args.seconds:g}s phases; "
        + (
            "processes not pinned"
            if args.no_pin
            else f"server on core {SERVER_CPU}, clients on core {CLIENT_CPU}"
        )
        + f" (python {sys.version.split()[0]})"
    )
    runs: list[Run] = []
    for clients in counts:
        for contender in contenders:
            run = asyncio.run(
                run_one(
                    contender,
                    clients,
                    names,
                    args.per_client,
                    args.offered,
                    args.seconds,
                    not args.no_pin,
                )
            )
            runs.append(run)
            print_runs([run])
    print("\nsummary")
    print_runs(runs)
    ratios(runs)
    return runs


if __name__ == "__main__":
    main()
