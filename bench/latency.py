"""Tick -> candle latency end to end, producer's send to a WebSocket client's receipt, both modes.

Ticks are offered at a fixed rate (``--rate``, default 20,000 ticks/s) in batches of
``--batch`` ticks (500), one instrument after another (``--instruments``, 10), for
``--seconds`` per mode after a warm-up. Per batch, the time from its send to the first 1s
candle update that contains its last tick (``last_trade_id`` at least the batch's last id),
seen at each hop:

1. ``engine polled`` (cluster only): the worker's round that took the batch's record began
   (the clock its journal step carries: its poll, or Faust's take, had returned);
2. ``engine consumed``: the engine's poll returned the batch's record (embedded: observed on
   the bus; cluster: the timestamp of the worker's journal step that covers it, taken when the
   worker sent it: the step has run);
3. ``candle published``: the candle record's timestamp on ``md.candles`` (cluster: taken when
   the worker sends it, once the broker has its journal step);
4. ``candle consumed``: a consumer of ``md.candles`` in this process read it: the figure
   ``bench.kafka`` reports (its definition, measured on the same batches);
5. ``gateway read``: the gateway's poll returned it (embedded only: in cluster mode the gateway
   is another process);
6. ``client receipt``: a WebSocket client in another process, on 127.0.0.1, subscribed to the
   1s candles of every instrument, received it.

Modes: ``embedded`` runs what ``mdp up`` runs on its in-process bus (engine runner, storage
writer on a scratch database, gateway) in this process; ``cluster`` runs a Kafka broker (or
``--bootstrap``, whose platform topics it resets), one ``mdp worker`` process and one
``mdp gateway --bus kafka`` process; ``--consumer`` picks how the worker reads ``md.ticks``
(``mdp worker --consumer``, and the same default). The engine runs with ``--throttle``
(default 0, as in ``bench.kafka``: every batch updates its open candles). Clocks:
``time.time_ns`` in every process of this machine; Kafka timestamps are whole milliseconds.

Usage: ``python -m bench.latency [--smoke] [--modes embedded,cluster] [--seconds S]
[--rate N] [--batch N] [--instruments N] [--throttle MS] [--consumer batch|faust]
[--bootstrap HOST:PORT] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self, cast

from bench.common import scratch_database
from bench.kafka import (
    WORKER_STOP_S,
    broker,
    live_batch,
    mdp_process,
    reset_topics,
    wait_for_log,
)
from core import codecs
from core.engine import CandleEngine, EngineConfig
from core.intervals import parse_intervals
from core.topics import CANDLES, TICKS
from machine import settle_heap, stop_process
from storage import PostgresStore
from storage.writer import StorageWriter
from streams.bus import Bus, Offsets, Record, Start, Subscription, Topic, TopicPartition
from streams.engine_runner import DEFAULT_GROUP, EngineRunner
from streams.kafka.admin import STEPS
from streams.kafka.bus import KafkaBus
from streams.kafka.engine_worker import CONSUMERS, DEFAULT_CONSUMER
from streams.kafka.journal import Step, decode_entry
from streams.kafka.settings import KafkaSettings
from streams.memory import MemoryBus
from ws_gateway import Gateway, GatewaySettings

TARGET_P99_MS = 20.0
MODES = ("embedded", "cluster")
HOPS = (
    "engine polled",
    "engine consumed",
    "candle published",
    "candle consumed",
    "gateway read",
    "client receipt",
)
ONE_SECOND = parse_intervals(["1s"])[0]


@dataclass(frozen=True, slots=True)
class Sizes:
    seconds: float
    warmup: float
    rate: int
    batch: int
    instruments: int


@dataclass(frozen=True, slots=True)
class Options:
    throttle_ms: float = 0.0
    """The engine's throttle: 0 (every batch updates its open candles), as in bench.kafka."""
    gateway_ticks: bool = True
    """False: the gateway reads md.candles only (a diagnosis: what its tick channels cost)."""
    consumer: str = DEFAULT_CONSUMER
    """Cluster mode: how the worker reads md.ticks (``mdp worker --consumer``)."""


FULL = Sizes(60.0, 3.0, 20_000, 500, 10)
SMOKE = Sizes(2.0, 1.0, 2_000, 100, 4)


# -- the pure part: batches sent, candles seen, latencies -------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """One batch offered: its instrument, last trade id, send time and place on md.ticks."""

    instrument: str
    last_id: int
    sent_ns: int
    partition: int
    offset: int
    measured: bool
    """False for the warm-up's batches."""


Seen = tuple[str, int, int]
"""A 1s candle update observed at a hop: instrument, last trade id, time (ns)."""


def first_seen(sent: Sequence[Sent], seen: Iterable[Seen]) -> list[int | None]:
    """For each batch, the time of the first update (in ``seen``'s order) of its instrument
    whose last trade id reaches the batch's last; None when none does."""
    waiting: dict[str, deque[int]] = defaultdict(deque)
    for index, batch in enumerate(sent):
        waiting[batch.instrument].append(index)
    found: list[int | None] = [None] * len(sent)
    for instrument, last_id, ns in seen:
        queue = waiting.get(instrument)
        while queue and sent[queue[0]].last_id <= last_id:
            found[queue.popleft()] = ns
    return found


def record_times(sent: Sequence[Sent], consumed: dict[tuple[int, int], int]) -> list[int | None]:
    """For each batch, when the record at its (partition, offset) was consumed."""
    return [consumed.get((batch.partition, batch.offset)) for batch in sent]


@dataclass(frozen=True, slots=True)
class Spread:
    p50: float
    p99: float
    max: float
    count: int


def spread(milliseconds: Sequence[float]) -> Spread | None:
    if not milliseconds:
        return None
    p99 = (
        statistics.quantiles(milliseconds, n=100, method="inclusive")[98]
        if len(milliseconds) > 1
        else milliseconds[0]
    )
    return Spread(statistics.median(milliseconds), p99, max(milliseconds), len(milliseconds))


@dataclass(slots=True)
class Observed:
    """What one run saw: the batches and, per hop, the candles or records at that hop."""

    sent: list[Sent] = field(default_factory=list)
    candles: dict[str, list[Seen]] = field(default_factory=lambda: defaultdict(list))
    records: dict[tuple[int, int], int] = field(default_factory=dict)
    """When the engine consumed each md.ticks record, by (partition, offset)."""
    polled: dict[tuple[int, int], int] = field(default_factory=dict)
    """Cluster mode: when the worker's round that took each record began."""

    def see(self, hop: str, record: Record, ns: int) -> None:
        """Note a md.candles record observed at ``hop`` at ``ns`` if it is a 1s update."""
        candle = codecs.decode_candle(record.value)
        if candle.interval == ONE_SECOND and candle.last_trade_id is not None:
            self.candles[hop].append((candle.instrument, candle.last_trade_id, ns))

    def _times(self) -> tuple[list[Sent], dict[str, list[int | None]]]:
        """The measured batches, and when each reached each hop (None: not seen there)."""
        measured = [batch for batch in self.sent if batch.measured]
        times = {hop: first_seen(measured, self.candles[hop]) for hop in self.candles}
        times["engine consumed"] = record_times(measured, self.records)
        if self.polled:
            times["engine polled"] = record_times(measured, self.polled)
        return measured, {hop: found for hop, found in times.items() if any(found)}

    def hops(self) -> dict[str, list[float]]:
        """Milliseconds from send to each hop, over the measured batches seen there."""
        measured, times = self._times()
        return {
            hop: [
                (ns - batch.sent_ns) / 1e6 for batch, ns in zip(measured, found, strict=True) if ns
            ]
            for hop, found in times.items()
        }

    def stages(self) -> dict[str, list[float]]:
        """Milliseconds each batch spent between one hop of the path to the client and the
        next (``send -> engine polled``, ...), over the batches seen at both: where a tail
        comes from, which the times from the send do not tell. The bench's own consumer of
        md.candles is no hop of that path."""
        measured, times = self._times()
        path = ["send", *(hop for hop in HOPS if hop in times and hop != "candle consumed")]
        times["send"] = [batch.sent_ns for batch in measured]
        found: dict[str, list[float]] = {}
        for before, after in itertools.pairwise(path):
            found[f"{before} -> {after}"] = [
                (end - start) / 1e6
                for start, end in zip(times[before], times[after], strict=True)
                if start and end
            ]
        return found

    def missed(self) -> int:
        """Measured batches the client never received an update of."""
        measured = [batch for batch in self.sent if batch.measured]
        return sum(ns is None for ns in first_seen(measured, self.candles["client receipt"]))


@dataclass(frozen=True, slots=True)
class Result:
    mode: str
    hops: dict[str, Spread]
    batches: int
    missed: int
    stages: dict[str, Spread] = field(default_factory=dict)


# -- offering ticks and reading candles -------------------------------------------------------


def instruments(count: int) -> list[str]:
    return [f"BENCH:L{i:02d}" for i in range(count)]


async def offer(topic: Topic, sizes: Sizes, observed: Observed, measuring: asyncio.Event) -> None:
    """Publish ``sizes.rate`` ticks/s in ``sizes.batch``-tick batches, instrument after
    instrument, one send per slot on schedule: for the warm-up, until ``measuring`` is set
    (the client is subscribed), then ``sizes.seconds`` more, measured."""
    names = instruments(sizes.instruments)
    next_id = dict.fromkeys(names, 1)
    every = sizes.batch / sizes.rate
    started = time.perf_counter()
    measured_from: float | None = None
    slot = 0
    while measured_from is None or time.perf_counter() - measured_from < sizes.seconds:
        if measured_from is None and measuring.is_set():
            measured_from = max(time.perf_counter(), started + sizes.warmup)
        if measured_from is None and time.perf_counter() - started > 120:
            raise TimeoutError("the WebSocket client did not subscribe within 120 s")
        name = names[slot % len(names)]
        first = next_id[name]
        next_id[name] = first + sizes.batch
        sent_ns = time.time_ns()
        measured = measured_from is not None and time.perf_counter() >= measured_from
        batch = live_batch(name, first, sizes.batch, sent_ns)
        record = await topic.publish(name.encode(), codecs.encode_tick_batch(batch))
        observed.sent.append(
            Sent(name, first + sizes.batch - 1, sent_ns, record.partition, record.offset, measured)
        )
        slot += 1
        await asyncio.sleep(max(0.0, started + slot * every - time.perf_counter()))


async def ready(subscription: Subscription, partitions: int) -> None:
    """Poll until every partition is assigned (a ``latest`` start is then fixed)."""
    deadline = time.monotonic() + 60
    while len(subscription.assignment()) < partitions:
        if time.monotonic() > deadline:
            raise TimeoutError("no partition assignment within 60 s")
        await subscription.poll(timeout=0.05)


async def read_candles(
    subscription: Subscription, observed: Observed, until: asyncio.Event
) -> None:
    """The consumer-side figure (``bench.kafka``'s): candles as this process reads them."""
    while not until.is_set():
        for record in await subscription.poll(1000, 0.05):
            received = time.time_ns()
            observed.see("candle published", record, record.timestamp_ns)
            observed.see("candle consumed", record, received)


# -- the WebSocket client, in a process of its own --------------------------------------------


def client_process(url: str, names: list[str], pipe: Connection) -> None:
    """Subscribe to the 1s candles of ``names``; say "ready"; on "stop", send what it saw.
    Its heap is settled first (:func:`machine.settle_heap`), as this process's: the measuring
    processes' own collections must not pause the sends and the receipts they time."""
    settle_heap()
    asyncio.run(_client(url, names, pipe))


async def _client(url: str, names: list[str], pipe: Connection) -> None:
    from websockets.asyncio.client import connect

    seen: list[Seen] = []
    async with connect(url, compression=None, max_size=None) as ws:
        for number in range(len(names)):
            await ws.send(_subscribe(names, number))
        subscribed = 0
        while subscribed < len(names):
            message = json.loads(await ws.recv())
            if message["type"] == "error" and message.get("code") == "unknown_instrument":
                await asyncio.sleep(0.1)  # its first ticks have not reached the gateway yet
                await ws.send(_subscribe(names, message["id"]))
            elif message["type"] == "error":
                raise RuntimeError(f"the gateway refused a subscription: {message}")
            subscribed += message["type"] == "subscribed"
        pipe.send("ready")
        while not pipe.poll():
            with contextlib.suppress(TimeoutError):
                frame = await asyncio.wait_for(ws.recv(), 0.1)
                received = time.time_ns()
                message = json.loads(frame)
                if message["type"] == "candle" and message["interval"] == "1s":
                    candle = message["candle"]
                    if candle.get("last_trade_id") is not None:
                        seen.append((message["instrument"], candle["last_trade_id"], received))
    pipe.send(seen)


def _subscribe(names: list[str], number: int) -> str:
    return json.dumps({"op": "subscribe", "id": number, "channel": "candles",
                       "instrument": names[number], "interval": "1s", "snapshot": 0})  # fmt: skip


class Spawned:
    """A bench function in a process of its own, spoken to over a pipe: ``async with
    Spawned(target, *args) as child`` waits for its first message (:attr:`first`);
    :meth:`ask` sends one and returns the answer."""

    def __init__(self, target: Callable[..., None], *args: object) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=target, args=(*args, child))

        self.first: object = None

    async def __aenter__(self) -> Self:
        self._process.start()
        self.first = await self._receive("start")
        return self

    async def ask(self, message: object) -> object:
        self._pipe.send(message)
        return await self._receive("answer")

    async def _receive(self, what: str) -> object:
        if not await asyncio.to_thread(self._pipe.poll, 90):
            raise RuntimeError(f"the bench's child process did not {what} within 90 s")
        return self._pipe.recv()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.kill()


# -- embedded mode ----------------------------------------------------------------------------


class TimedSubscription(Subscription):
    """A subscription that tells ``on_poll`` what each poll returned, and when."""

    def __init__(self, inner: Subscription, on_poll: Callable[[list[Record], int], None]) -> None:
        self.inner = inner
        self.on_poll = on_poll

    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        records = await self.inner.poll(max_records, timeout)
        if records:
            self.on_poll(records, time.time_ns())
        return records

    async def commit(self, offsets: Offsets) -> None:
        await self.inner.commit(offsets)

    async def committed(self) -> dict[TopicPartition, int]:
        return await self.inner.committed()

    def assignment(self) -> frozenset[TopicPartition]:
        return self.inner.assignment()

    async def close(self) -> None:
        await self.inner.close()


class TimedBus(Bus):
    """A bus that tells ``on_poll`` what the engine's and the gateway's polls returned, and
    when (``"engine"`` or ``"gateway"``, the records, the time)."""

    def __init__(
        self,
        inner: Bus,
        on_poll: Callable[[str, list[Record], int], None],
        gateway_ticks: bool = True,
    ) -> None:
        self.inner = inner
        self.on_poll = on_poll
        self.gateway_ticks = gateway_ticks
        """False: the gateway reads md.candles only (a diagnosis: what its ticks cost)."""
        self.cluster_id = inner.cluster_id  # a started bus's

    def topic(self, name: str) -> Topic:
        return self.inner.topic(name)

    def subscribe(
        self, group: str, topics: Collection[str], *, start: Start = "earliest"
    ) -> Subscription:
        if group.startswith(GATEWAY_PREFIX) and not self.gateway_ticks:
            topics = [topic for topic in topics if topic != TICKS]
        inner = self.inner.subscribe(group, topics, start=start)
        for role, prefix in (("engine", DEFAULT_GROUP), ("gateway", GATEWAY_PREFIX)):
            if group.startswith(prefix):
                return TimedSubscription(inner, functools.partial(self.on_poll, role))
        return inner

    async def close(self) -> None:
        await self.inner.close()


GATEWAY_PREFIX = GatewaySettings().group_prefix


def observe(observed: Observed) -> Callable[[str, list[Record], int], None]:
    """Note the engine's md.ticks records and the gateway's md.candles records in ``observed``."""

    def on_poll(role: str, records: list[Record], ns: int) -> None:
        for record in records:
            if role == "engine" and record.topic == TICKS:
                observed.records[record.partition, record.offset] = ns
            elif role == "gateway" and record.topic == CANDLES:
                observed.see("gateway read", record, ns)

    return on_poll


async def embedded(sizes: Sizes, options: Options, database_url: str | None) -> Observed:
    """What ``mdp up`` runs on its in-process bus, in this process."""
    observed = Observed()
    names = tuple(instruments(sizes.instruments))
    engine = CandleEngine(EngineConfig(throttle_ns=round(options.throttle_ms * 1e6)))
    with scratch_database(database_url) as url:
        async with contextlib.AsyncExitStack() as stack:
            store = await stack.enter_async_context(PostgresStore.open(url))
            bus = TimedBus(
                await stack.enter_async_context(MemoryBus(partitions=4)),
                observe(observed),
                options.gateway_ticks,
            )
            gateway = await stack.enter_async_context(
                Gateway(bus, None, GatewaySettings(port=0, instruments=names))
            )
            writer = StorageWriter(bus, store)
            runner = EngineRunner(bus, engine)
            tasks = [asyncio.create_task(writer.run()), asyncio.create_task(runner.run())]
            try:
                candles = bus.subscribe("bench-latency", [CANDLES], start="latest")
                async with candles:
                    await run_offer(bus, candles, gateway.url, sizes, observed)
            finally:
                runner.stop()
                writer.stop()
                await asyncio.gather(*tasks)
    return observed


async def run_offer(
    bus: Bus, candles: Subscription, url: str, sizes: Sizes, observed: Observed
) -> None:
    """Offer ticks with the client connected and this process reading md.candles (the
    client subscribes once the gateway knows the instruments: after their first ticks)."""
    await ready(candles, bus.topic(CANDLES).partitions)
    done, measuring = asyncio.Event(), asyncio.Event()
    reading = asyncio.create_task(read_candles(candles, observed, done))
    offering = asyncio.create_task(offer(bus.topic(TICKS), sizes, observed, measuring))
    try:
        async with Spawned(client_process, url, instruments(sizes.instruments)) as client:
            measuring.set()
            await offering
            await asyncio.sleep(2.0)  # the last batches' updates arrive
            done.set()
            await reading
            seen = await client.ask("stop")
            observed.candles["client receipt"] = cast(list[Seen], seen)
    finally:
        offering.cancel()
        reading.cancel()


# -- cluster mode -----------------------------------------------------------------------------


async def read_steps(
    subscription: Subscription, group: str, observed: Observed, until: asyncio.Event
) -> None:
    """When the worker consumed each record: its journal step's broker timestamp."""
    while not until.is_set():
        for record in await subscription.poll(1000, 0.05):
            entry = decode_entry(record.value)
            if isinstance(entry, Step) and entry.group == group:
                for offset in range(entry.start, entry.end):
                    observed.records[entry.partition, offset] = record.timestamp_ns
                    observed.polled[entry.partition, offset] = entry.now_ns


def gateway_process(bootstrap: str, options: Options, pipe: Connection) -> None:
    """What ``mdp gateway --bus kafka`` runs, on a bus that notes when its polls return:
    sends its URL, then, when told to stop, the 1s candles it read (its heap settled as
    ``mdp gateway`` settles its own)."""
    settle_heap()
    asyncio.run(_gateway(bootstrap, options, pipe))


async def _gateway(bootstrap: str, options: Options, pipe: Connection) -> None:
    observed = Observed()
    settings = KafkaSettings(bootstrap, client_id="mdp-gateway")
    async with KafkaBus(settings, create_topics=False) as kafka:
        bus = TimedBus(kafka, observe(observed), options.gateway_ticks)
        async with Gateway(bus, None, GatewaySettings(port=0)) as gateway:
            pipe.send(gateway.url)
            await asyncio.to_thread(pipe.recv)
    pipe.send(observed.candles["gateway read"])


def cluster(sizes: Sizes, options: Options, bootstrap: str, folder: Path) -> Observed:
    """Kafka, one ``mdp worker`` process and the gateway in a process of its own."""
    reset_topics(bootstrap)
    group = f"bench-latency-{uuid.uuid4().hex[:8]}"
    log = folder / "worker.log"
    worker = mdp_process(
        log, "worker", "--bootstrap", bootstrap, "--group", group, "--database-url", "",
        "--throttle", f"{options.throttle_ms:g}", "--log-level", "info",
        "--consumer", options.consumer,
    )  # fmt: skip
    try:
        wait_for_log(log, "recovered", 4, worker)
        return asyncio.run(_cluster(sizes, options, bootstrap, group))
    finally:
        stop_process(worker, WORKER_STOP_S)


async def _cluster(sizes: Sizes, options: Options, bootstrap: str, group: str) -> Observed:
    observed = Observed()
    async with (
        KafkaBus(KafkaSettings(bootstrap), create_topics=False) as bus,
        Spawned(gateway_process, bootstrap, options) as gateway,
    ):
        steps = bus.subscribe(f"bench-steps-{uuid.uuid4().hex}", [STEPS], start="latest")
        candles = bus.subscribe(f"bench-latency-{uuid.uuid4().hex}", [CANDLES], start="latest")
        async with steps, candles:
            await ready(steps, bus.topic(STEPS).partitions)
            done = asyncio.Event()
            journal = asyncio.create_task(read_steps(steps, group, observed, done))
            await run_offer(bus, candles, str(gateway.first), sizes, observed)
            done.set()
            await journal
        observed.candles["gateway read"] = cast(list[Seen], await gateway.ask("stop"))
    return observed


# -- the report -------------------------------------------------------------------------------


def result(mode: str, observed: Observed) -> Result:
    hops = {hop: s for hop, values in observed.hops().items() if (s := spread(values))}
    stages = {name: s for name, values in observed.stages().items() if (s := spread(values))}
    measured = sum(batch.measured for batch in observed.sent)
    return Result(mode, hops, measured, observed.missed(), stages)


def print_result(result: Result) -> None:
    print(f"\n{result.mode}: {result.batches:,} batches measured, {result.missed} without an"
          " update at the client")  # fmt: skip
    print(f"  {'ms from the send to':<40} {'p50':>8} {'p99':>8} {'max':>8} {'batches':>8}")
    for hop in HOPS:
        s = result.hops.get(hop)
        if s is None:
            print(f"  {hop:<40} {'n/a':>8}")
            continue
        label = hop + (" (bench.kafka's figure)" if hop == "candle consumed" else "")
        print(f"  {label:<40} {s.p50:>8.1f} {s.p99:>8.1f} {s.max:>8.1f} {s.count:>8,}")
    print(f"  {'ms between hops (each batch)':<40} {'p50':>8} {'p99':>8} {'max':>8} {'batches':>8}")
    for name, s in result.stages.items():
        print(f"  {name:<40} {s.p50:>8.1f} {s.p99:>8.1f} {s.max:>8.1f} {s.count:>8,}")
    consumed, receipt = result.hops.get("candle consumed"), result.hops.get("client receipt")
    if consumed and receipt:
        ratio = receipt.p99 / consumed.p99
        print(f"  p99 at the client {receipt.p99:.1f} ms vs consumed {consumed.p99:.1f} ms"
              f" ({ratio:.2f}x); target p99 <= {TARGET_P99_MS:g} ms")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--modes", default=",".join(MODES), help="embedded,cluster")
    parser.add_argument("--seconds", type=float, help="measured seconds per mode")
    parser.add_argument("--rate", type=int, help="ticks/s offered")
    parser.add_argument("--batch", type=int, help="ticks per batch")
    parser.add_argument("--instruments", type=int, help="instruments")
    parser.add_argument("--throttle", type=float, default=0.0, metavar="MS", help="engine throttle")
    parser.add_argument(
        "--gateway-without-ticks",
        action="store_true",
        help="diagnosis: the gateway reads md.candles only (what its tick channels cost)",
    )
    parser.add_argument(
        "--consumer",
        choices=CONSUMERS,
        default=DEFAULT_CONSUMER,
        help=f"cluster mode: how the worker reads md.ticks (mdp worker --consumer; default"
        f" {DEFAULT_CONSUMER})",
    )
    parser.add_argument("--bootstrap", help="use this broker (its platform topics are reset)")
    parser.add_argument("--database-url", help="embedded mode's server (default: a private one)")
    args = parser.parse_args(argv)
    modes = [mode for mode in args.modes.split(",") if mode]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes takes some of {','.join(MODES)}")
    sizes = SMOKE if args.smoke else FULL
    changes = {name: getattr(args, name) for name in ("seconds", "rate", "batch", "instruments")}
    sizes = dataclasses.replace(sizes, **{k: v for k, v in changes.items() if v is not None})
    if sizes.rate <= 0 or sizes.batch <= 0 or sizes.instruments <= 0 or sizes.seconds <= 0:
        parser.error("--seconds, --rate, --batch and --instruments must be positive")
    options = Options(
        args.throttle, gateway_ticks=not args.gateway_without_ticks, consumer=args.consumer
    )
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    settle_heap()  # see client_process
    folder = Path(tempfile.mkdtemp(prefix="mdp-bench-latency-"))
    without = "" if options.gateway_ticks else ", the gateway without md.ticks"
    print(f"Tick -> candle latency{' (smoke)' if args.smoke else ''}: {sizes.rate:,} ticks/s"
          f" offered in {sizes.batch:,}-tick batches, {sizes.instruments} instruments,"
          f" {sizes.seconds:g} s per mode after {sizes.warmup:g} s of warm-up, 1s candles,"
          f" throttle {options.throttle_ms:g} ms{without}, worker consumer {options.consumer};"
          f" load average {os.getloadavg()[0]:.2f};"
          f" logs in {folder}")  # fmt: skip
    results = []
    for mode in modes:
        if mode == "embedded":
            observed = asyncio.run(embedded(sizes, options, args.database_url))
        else:
            with broker(args.bootstrap) as bootstrap:
                observed = cluster(sizes, options, bootstrap, folder)
        results.append(result(mode, observed))
        print_result(results[-1])
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
