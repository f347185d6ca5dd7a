"""Cluster mode through Kafka: producers, one candle worker end to end, latency, baseline.

Measured in one run, against a local single-node broker it starts (or ``--bootstrap``, whose
platform topics it deletes and makes anew: never point it at a cluster you care about):

1. Producers: messages/s of 100-byte records and ticks/s of 1,000-tick batches, ``acks=all``,
   for each client tried (kafka-python, aiokafka, confluent-kafka).
2. End to end: a backlog of synthetic tick batches on ``md.ticks``, then one ``mdp worker``
   process (its ``--consumer``, the candle engine, seven intervals): ticks/s from its first
   journaled step to its last (so the figure is the sustained rate, not the start-up),
   counting the ticks each step's records carry (batches hold any number of ticks up to the
   batch size).
3. Baseline, same run: candles the idiomatic Faust way (``bench.faust_baseline``: one message
   per tick, a tumbling window table updated per tick), events/s.
4. Latency: ticks offered at a fixed rate (20,000/s), p50/p99 from a batch being produced to
   the first 1s candle update containing its last tick being consumed (the worker runs with
   ``--throttle 0``: every batch updates its open candles). ``bench.latency`` measures on to a
   WebSocket client's receipt, in both modes, with this figure beside it.

``--against CHECKOUT`` runs only the end-to-end part: this checkout's worker and another
checkout's (an older commit; run by its own ``.venv`` if it has one) in turns on the same
data, ``--runs`` times each, with the medians beside each other. The machine's load moves the
figure by more than most changes do, so a before/after is only read from one such run.

``--consumer`` picks how this checkout's worker reads ``md.ticks`` (``mdp worker --consumer``,
with the same default; the other checkout of ``--against`` runs its own default). Each
end-to-end run also gives the worker's CPU seconds per million ticks over the sustained span
(from ``/proc``): on a machine other jobs load, a steadier figure than the rate.

Usage: ``python -m bench.kafka [--smoke] [--ticks N] [--rate N] [--bootstrap HOST:PORT]
[--consumer batch|faust] [--against CHECKOUT [--runs N]]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from core import codecs
from core.intervals import parse_intervals
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS
from ingest.synthetic import SyntheticFeed
from machine import stop_process
from streams.kafka.admin import STEPS, KafkaAdmin, TopicSpec, platform_topics
from streams.kafka.bus import KafkaBus
from streams.kafka.engine_worker import CONSUMERS, DEFAULT_CONSUMER
from streams.kafka.journal import Step, decode_entry
from streams.kafka.launcher import LocalKafka
from streams.kafka.settings import KafkaSettings

PARTITIONS = 4
TARGET_TICKS_PER_S = 200_000
TARGET_RATIO = 20.0
WORKER_STOP_S = 60.0
"""How long a worker has to stop on SIGTERM before it is killed."""
TARGET_P99_MS = 50.0


@dataclass(frozen=True, slots=True)
class Sizes:
    producer_messages: int
    producer_batches: int
    ticks: int
    batch: int
    instruments: int
    baseline_events: int
    latency_seconds: float
    rate: int


FULL = Sizes(200_000, 300, 4_000_000, 2_000, 16, 30_000, 15.0, 20_000)
SMOKE = Sizes(2_000, 10, 40_000, 1_000, 4, 500, 2.0, 2_000)


# -- the broker and its topics ----------------------------------------------------------------


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    folder = Path(tempfile.mkdtemp(prefix="mdp-bench-kafka-"))
    local = LocalKafka(folder, partitions=PARTITIONS, say=lambda text: print(f"  {text}"))
    try:
        yield local.start().bootstrap
    finally:
        local.stop()
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def reset_topics(bootstrap: str, extra: dict[str, int] | None = None) -> None:
    specs = platform_topics(PARTITIONS)
    with KafkaAdmin(KafkaSettings(bootstrap)) as admin:
        names = [spec.name for spec in specs] + list(extra or {})
        existing = admin.partitions(names)
        if existing:
            admin.delete(list(existing))
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.ensure(specs, strict=True)
                if extra:
                    admin.ensure([TopicSpec(name, n) for name, n in extra.items()])
                if admin.leaderless(names):
                    raise RuntimeError("partitions without a leader yet")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


# -- 1. producers -----------------------------------------------------------------------------


def tick_batches(ticks: int, batch: int, instruments: int, seed: int = 1) -> list[TickBatch]:
    names = tuple(f"BENCH:I{i:03d}" for i in range(instruments))
    per_instrument_rate = 1000.0
    duration = ticks / (per_instrument_rate * instruments)
    feed = SyntheticFeed(
        instruments=names,
        rate=per_instrument_rate,
        duration=duration,
        start_ns=time.time_ns() - round(duration * 1e9),
        seed=seed,
        batch_size=batch,
    )
    return list(feed.batches())


def produce_kafka_python(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4 << 20
    )
    started = time.perf_counter()
    for key, value in values:
        producer.send(topic, value=value, key=key)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return seconds


def produce_aiokafka(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> float:
    from aiokafka import AIOKafkaProducer

    async def run() -> float:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=4 << 20,
        )
        await producer.start()
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
        await producer.stop()
        return seconds

    return asyncio.run(run())


def produce_confluent(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> float:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": 4 << 20,
        }
    )
    started = time.perf_counter()
    for key, value in values:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    producer.flush()
    return time.perf_counter() - started


PRODUCERS: dict[str, Callable[[str, str, list[tuple[bytes, bytes]]], float]] = {
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
    "confluent-kafka": produce_confluent,
}


def producer_figures(bootstrap: str, sizes: Sizes) -> dict[str, tuple[float, float]]:
    """Per client: (100-byte messages/s, ticks/s in 1,000-tick batches)."""
    small = [(b"k%d" % (i % 64), b"x" * 100) for i in range(sizes.producer_messages)]
    batches = tick_batches(sizes.producer_batches * 1000, 1000, 8)
    encoded = [(b.instrument.encode(), codecs.encode_tick_batch(b)) for b in batches]
    ticks = sum(len(b) for b in batches)
    topics = {f"bench.producer.{name}.{kind}": 4 for name in PRODUCERS for kind in ("m", "t")}
    reset_topics(bootstrap, topics)
    figures = {}
    for name, produce in PRODUCERS.items():
        messages = produce(bootstrap, f"bench.producer.{name}.m", small)
        batched = produce(bootstrap, f"bench.producer.{name}.t", encoded)
        figures[name] = (len(small) / messages, ticks / batched)
    return figures


# -- 2. end to end through one worker ---------------------------------------------------------


def mdp_process(
    log: Path, *args: str, env: dict[str, str] | None = None, tree: Path | None = None
) -> subprocess.Popen[bytes]:
    """``mdp`` with ``args``, of this checkout or of ``tree`` (another checkout: its code, run
    by its own ``.venv`` if it has one, else by this interpreter)."""
    python = sys.executable
    if tree is not None and (tree / ".venv" / "bin" / "python").is_file():
        python = str(tree / ".venv" / "bin" / "python")
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [python, "-m", "mdp.cli", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=tree,
            env=os.environ | {"XDG_STATE_HOME": str(log.parent / "state")} | (env or {}),
        )


Carried = dict[tuple[int, int], int]
"""Ticks carried by each record of the backlog, by (partition, offset)."""


async def publish_backlog(bootstrap: str, batches: list[TickBatch]) -> Carried:
    """Every batch onto md.ticks; returns how many ticks each record carries."""
    carried: Carried = {}
    async with KafkaBus(KafkaSettings(bootstrap, max_message_bytes=4 << 20)) as bus:
        topic = bus.topic(TICKS)
        for start in range(0, len(batches), 200):
            chunk = batches[start : start + 200]
            items = [(b.instrument.encode(), codecs.encode_tick_batch(b)) for b in chunk]
            records = await topic.publish_many(items)
            for record, batch in zip(records, chunk, strict=True):
                carried[record.partition, record.offset] = len(batch)
    return carried


def partition_ends(carried: Carried) -> dict[int, int]:
    """The end offset of each partition the backlog went to."""
    ends: dict[int, int] = {}
    for partition, offset in carried:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def ticks_of(steps: Iterable[Step], carried: Carried) -> int:
    """The ticks the steps' records carry (batches hold any number of ticks)."""
    return sum(
        carried[step.partition, offset] for step in steps for offset in range(step.start, step.end)
    )


def sustained_rate(steps: list[tuple[int, Step]], carried: Carried) -> float | None:
    """Ticks/s from the first journaled step to the last (``steps`` by broker time): the
    ticks of every step after the first, over the time between the first and the last;
    ``None`` when they were journaled in the same millisecond (a backlog taken in one step or
    two: too small to time)."""
    first, last = steps[0][0], steps[-1][0]
    if last <= first:
        return None
    return ticks_of((step for _, step in steps[1:]), carried) / ((last - first) / 1e9)


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user and system, all threads) process ``pid`` has used; ``None`` where
    ``/proc`` does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def follow_journal(
    bootstrap: str, group: str, ends: dict[int, int], timeout: float, pid: int | None = None
) -> tuple[list[tuple[int, Step]], float | None]:
    """The journal's steps of ``group`` (with their broker timestamps) until every partition
    is at its end, and the CPU seconds process ``pid`` (the worker) used from when its first
    step was read to then (``None`` without a pid or ``/proc``)."""
    cpu_first: float | None = None
    steps: list[tuple[int, Step]] = []
    reached: dict[int, int] = defaultdict(int)
    deadline = time.monotonic() + timeout
    async with (
        KafkaBus(KafkaSettings(bootstrap), create_topics=False) as bus,
        bus.subscribe(f"bench-journal-{uuid.uuid4().hex}", [STEPS]) as sub,
    ):
        while any(reached[p] < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not finish in {timeout:g}s: {dict(reached)}")
            for record in await sub.poll(1000, 0.5):
                entry = decode_entry(record.value)
                if isinstance(entry, Step) and entry.group == group:
                    if not steps and pid is not None:
                        cpu_first = cpu_seconds(pid)
                    steps.append((record.timestamp_ns, entry))
                    reached[entry.partition] = max(reached[entry.partition], entry.end)
    cpu_last = None if pid is None else cpu_seconds(pid)
    used = None if cpu_first is None or cpu_last is None else cpu_last - cpu_first
    return steps, used


@dataclass(frozen=True, slots=True)
class Run:
    """One worker's run on a backlog."""

    sustained: float | None
    """Ticks/s from the first journaled step to the last (``None``: too small to time)."""
    overall: float
    """Ticks/s from the worker's start."""
    ingested: int
    consumed: int
    cpu_per_million: float | None
    """The worker's CPU seconds per million ticks over the same span as ``sustained``
    (all its threads): steadier than the rate on a machine other jobs load."""


def end_to_end(
    bootstrap: str,
    sizes: Sizes,
    folder: Path,
    tree: Path | None = None,
    worker_args: tuple[str, ...] = (),
) -> Run:
    """One run of this checkout's worker (with ``worker_args``) or of ``tree``'s."""
    reset_topics(bootstrap)
    batches = tick_batches(sizes.ticks, sizes.batch, sizes.instruments)
    ticks = sum(len(b) for b in batches)
    started = time.perf_counter()
    carried = asyncio.run(publish_backlog(bootstrap, batches))
    ends = partition_ends(carried)
    print(f"  backlog: {ticks:,} ticks in {len(batches):,} batches"
          f" ({ticks / (time.perf_counter() - started):,.0f} ticks/s produced)")  # fmt: skip
    group = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    worker = mdp_process(
        folder / f"worker-{group}.log", "worker", "--bootstrap", bootstrap, "--group", group,
        "--database-url", "", "--log-level", "warning", *worker_args, tree=tree,
    )  # fmt: skip
    try:
        steps, cpu = asyncio.run(follow_journal(bootstrap, group, ends, 600, worker.pid))
    finally:
        stop_process(worker, WORKER_STOP_S)
    overall = ticks / (time.perf_counter() - started)
    steps.sort(key=lambda item: item[0])
    consumed = ticks_of((step for _, step in steps), carried)
    after_first = ticks_of((step for _, step in steps[1:]), carried)
    per_million = None if cpu is None or not after_first else cpu / after_first * 1e6
    return Run(sustained_rate(steps, carried), overall, ticks, consumed, per_million)


# -- 3. the Faust tumbling-table baseline -----------------------------------------------------


def baseline(bootstrap: str, sizes: Sizes, folder: Path) -> float:
    topic = f"bench.baseline.{uuid.uuid4().hex[:8]}"
    reset_topics(bootstrap, {topic: PARTITIONS})
    encoder = msgspec.json.Encoder()
    values = []
    for i in range(sizes.baseline_events):
        instrument = f"BENCH:I{i % 8:03d}"
        tick = {"instrument": instrument, "price": 100.0 + i % 7, "size": 0.5, "ts": 1.0 * i}
        values.append((instrument.encode(), encoder.encode(tick)))
    produce_aiokafka(bootstrap, topic, values)
    done = subprocess.run(
        [sys.executable, "-m", "bench.faust_baseline", "--bootstrap", bootstrap,
         "--topic", topic, "--count", str(sizes.baseline_events),
         "--group", f"bench-baseline-{uuid.uuid4().hex[:8]}", "--datadir", str(folder)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if "baseline:" in line:
            seconds = float(line.split()[-2])
            return sizes.baseline_events / seconds
    raise RuntimeError(f"the baseline did not report:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


# -- 4. latency -------------------------------------------------------------------------------


async def offer(bootstrap: str, sizes: Sizes) -> tuple[list[float], int]:
    """Offer ``rate`` ticks/s for ``latency_seconds``; latencies (ms) and batches lost."""
    instruments = [f"BENCH:L{i}" for i in range(4)]
    per_slot = max(1, sizes.rate // 100)  # one batch every 10 ms
    sent: dict[str, deque[tuple[int, float]]] = {name: deque() for name in instruments}
    latencies: list[float] = []
    one_second = parse_intervals(["1s"])[0]
    async with KafkaBus(KafkaSettings(bootstrap), create_topics=False) as bus:
        candles = bus.subscribe(f"bench-latency-{uuid.uuid4().hex}", [CANDLES], start="latest")
        async with candles:
            while len(candles.assignment()) < bus.topic(CANDLES).partitions:
                await candles.poll(timeout=0.05)
            producing = True

            async def consume() -> None:
                while producing or any(sent.values()):
                    for record in await candles.poll(1000, 0.05):
                        received = time.perf_counter()
                        candle = codecs.decode_candle(record.value)
                        if candle.interval != one_second or candle.last_trade_id is None:
                            continue
                        queue = sent.get(candle.instrument)
                        while queue and queue[0][0] <= candle.last_trade_id:
                            latencies.append((received - queue.popleft()[1]) * 1000)

            consumer = asyncio.create_task(consume())
            ticks = bus.topic(TICKS)
            next_id = dict.fromkeys(instruments, 1)
            started = time.perf_counter()
            slot = 0
            while time.perf_counter() - started < sizes.latency_seconds:
                name = instruments[slot % len(instruments)]
                now = time.time_ns()
                first = next_id[name]
                batch = live_batch(name, first, per_slot, now)
                next_id[name] = first + per_slot
                sent[name].append((first + per_slot - 1, time.perf_counter()))
                await ticks.publish(name.encode(), codecs.encode_tick_batch(batch))
                slot += 1
                due = started + slot * 0.01
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            producing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer, 10)
            lost = sum(len(queue) for queue in sent.values())
    return latencies, lost


def live_batch(instrument: str, first_id: int, count: int, now: int) -> TickBatch:
    import numpy as np

    rows = np.arange(count, dtype=np.int64)
    return TickBatch(
        instrument,
        2,
        4,
        first_id + rows,
        10_000 + rows % 17,
        np.full(count, 5_000, dtype=np.int64),
        np.where(rows % 2 == 0, 1, -1).astype(np.int8),
        now - (count - 1 - rows) * 1000,
        np.full(count, now, dtype=np.int64),
        np.ones(count, dtype=np.int64),
    )


def latency(
    bootstrap: str, sizes: Sizes, folder: Path, worker_args: tuple[str, ...] = ()
) -> tuple[float, float, int, int]:
    """(p50 ms, p99 ms, batches measured, batches lost), of this checkout's worker with
    ``worker_args``."""
    reset_topics(bootstrap)
    worker = mdp_process(
        folder / "latency-worker.log", "worker", "--bootstrap", bootstrap,
        "--group", f"bench-latency-{uuid.uuid4().hex[:8]}", "--database-url", "",
        "--throttle", "0", "--log-level", "info", *worker_args,
    )  # fmt: skip
    try:
        wait_for_log(folder / "latency-worker.log", "recovered", PARTITIONS, worker)
        latencies, lost = asyncio.run(offer(bootstrap, sizes))
    finally:
        stop_process(worker, WORKER_STOP_S)
    if not latencies:
        raise RuntimeError("no candle update came back")
    cuts = statistics.quantiles(latencies, n=100)
    return statistics.median(latencies), cuts[98], len(latencies), lost


def wait_for_log(path: Path, text: str, count: int, process: subprocess.Popen[bytes]) -> str:
    """Wait until ``text`` is ``count`` times in the process's log; returns the log."""
    deadline = time.monotonic() + 120
    while (log := path.read_text(errors="replace")).count(text) < count:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the process did not start:\n{log[-3000:]}")
        time.sleep(0.1)
    return log


# -- the report -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--bootstrap", help="use this broker (its platform topics are reset)")
    parser.add_argument("--ticks", type=int, help="end-to-end backlog size")
    parser.add_argument("--rate", type=int, help="latency run: ticks/s offered")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help="only the end-to-end run: this checkout's worker and CHECKOUT's (another"
        " checkout, e.g. of an older commit; its .venv if it has one) in turns on the same data",
    )
    parser.add_argument(
        "--runs", type=int, default=2, help="with --against: runs of each worker (default 2)"
    )
    parser.add_argument(
        "--consumer",
        choices=CONSUMERS,
        default=DEFAULT_CONSUMER,
        help=f"this checkout's worker reads md.ticks so (`mdp worker --consumer`; default"
        f" {DEFAULT_CONSUMER}; --against's checkout runs its own default)",
    )
    args = parser.parse_args(argv)
    if args.against is not None and not (args.against / "mdp" / "cli.py").is_file():
        parser.error(f"--against: {args.against} is not a checkout of this project")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries while leaders settle
    sizes = SMOKE if args.smoke else FULL
    if args.ticks:
        sizes = _replace(sizes, ticks=args.ticks)
    if args.rate:
        sizes = _replace(sizes, rate=args.rate)
    worker_args = ("--consumer", args.consumer)
    folder = Path(tempfile.mkdtemp(prefix="mdp-bench-"))
    print(f"Kafka cluster-mode benchmark{' (smoke)' if args.smoke else ''}; logs in {folder}")
    if args.against is not None:
        with broker(args.bootstrap) as bootstrap:
            print(f"  broker at {bootstrap}")
            compare(bootstrap, sizes, folder, args.against.resolve(), args.runs, worker_args)
        return 0
    with broker(args.bootstrap) as bootstrap:
        print(f"  broker at {bootstrap}")
        producers = producer_figures(bootstrap, sizes)
        print("\nProducers (acks=all), same broker, same run")
        print(f"  {'client':<18} {'100-byte msgs/s':>16} {'ticks/s (1,000/batch)':>22}")
        for name, (messages, ticks) in producers.items():
            print(f"  {name:<18} {messages:>16,.0f} {ticks:>22,.0f}")
        run = end_to_end(bootstrap, sizes, folder, worker_args=worker_args)
        sustained, overall, total, consumed = run.sustained, run.overall, run.ingested, run.consumed
        faust_rate = baseline(bootstrap, sizes, folder)
        p50, p99, measured, lost = latency(bootstrap, sizes, folder, worker_args)
    print(f"\nEnd to end: md.ticks -> one `mdp worker --consumer {args.consumer}` (candle engine,"
          " 7 intervals)")  # fmt: skip
    print(f"  {'contender':<44} {'rate':>14} {'x baseline':>11}")
    print(f"  {'mdp worker, sustained (ticks/s)':<44} {_rate(sustained):>14}"
          f" {_ratio(sustained, faust_rate, 1):>11}")  # fmt: skip
    print(f"  {'mdp worker, CPU s per million ticks':<44} {_cpu(run.cpu_per_million):>14}")
    print(f"  {'mdp worker, with start-up (ticks/s)':<44} {overall:>14,.0f}"
          f" {overall / faust_rate:>10.1f}x")  # fmt: skip
    print(f"  {'Faust tumbling table, baseline (events/s)':<44} {faust_rate:>14,.0f} {1:>10.1f}x")
    print(f"  ({total:,} ticks ingested, {consumed:,} consumed; targets:"
          f" >= {TARGET_TICKS_PER_S:,} ticks/s, >= {TARGET_RATIO:g}x the baseline)")  # fmt: skip
    print(f"\nLatency at {sizes.rate:,} ticks/s offered (produce -> 1s candle update consumed)")
    print(f"  p50 {p50:.1f} ms, p99 {p99:.1f} ms over {measured:,} batches, {lost} without"
          f" an update; target p99 <= {TARGET_P99_MS:g} ms")  # fmt: skip
    return 0


def compare(
    bootstrap: str,
    sizes: Sizes,
    folder: Path,
    against: Path,
    runs: int,
    worker_args: tuple[str, ...] = (),
) -> None:
    """This checkout's worker (with ``worker_args``) and ``against``'s, in turns (so a load
    that comes and goes falls on both), on backlogs of the same synthetic data; medians and
    each run, of the rate and of the worker's CPU seconds per million ticks."""
    contenders: dict[str, Path | None] = {"this checkout": None, str(against): against}
    measured: dict[str, list[Run]] = {name: [] for name in contenders}
    for run in range(runs):
        for name, tree in contenders.items():
            print(f"  run {run + 1}/{runs}: {name} (load {os.getloadavg()[0]:.1f})")
            args = worker_args if tree is None else ()
            result = end_to_end(bootstrap, sizes, folder, tree, args)
            if result.consumed != result.ingested:
                raise RuntimeError(
                    f"{name}: {result.consumed:,} ticks consumed of {result.ingested:,}"
                )
            measured[name].append(result)
    given = f" (this checkout: {' '.join(worker_args)})" if worker_args else ""
    print(f"\nOne `mdp worker`, sustained, {sizes.ticks:,} ticks in batches of up to"
          f" {sizes.batch:,}, {sizes.instruments} instruments{given}")  # fmt: skip
    print(f"  {'worker':<44} {'ticks/s':>12} {'CPU s/M':>8}  runs (ticks/s, CPU s/M ticks)")
    for name, results in measured.items():
        each = ", ".join(f"{_rate(r.sustained)} {_cpu(r.cpu_per_million)}" for r in results)
        rate = _median(r.sustained for r in results)
        print(f"  {name[-44:]:<44} {_rate(rate):>12} {_cpu(_median_cpu(results)):>8}  {each}")
    ours, theirs = (_median(r.sustained for r in rs) for rs in measured.values())
    print(f"  this checkout / the other: {_ratio(ours, theirs)} (rate)")
    ours_cpu, theirs_cpu = (_median_cpu(results) for results in measured.values())
    print(f"  CPU per tick, this checkout / the other: {_ratio(ours_cpu, theirs_cpu)}")


def _median(values: Iterable[float | None]) -> float | None:
    """The median of the values known (``None`` when none is)."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _median_cpu(results: list[Run]) -> float | None:
    return _median(r.cpu_per_million for r in results)


def _ratio(ours: float | None, theirs: float | None, places: int = 2) -> str:
    """``ours / theirs`` as ``1.23x``; ``n/a`` when either is unknown or ``theirs`` is 0 (a
    run too small to time: a few clock ticks of CPU, one step)."""
    if ours is None or not theirs:
        return "n/a"
    return f"{ours / theirs:.{places}f}x"


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def _cpu(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}"


def _replace(sizes: Sizes, **changes: Any) -> Sizes:
    import dataclasses

    return dataclasses.replace(sizes, **changes)


if __name__ == "__main__":
    sys.exit(main())
