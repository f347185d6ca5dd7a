"""Tick to alert on a WebSocket: the whole path of a firing, on a real PostgreSQL.

Ticks are published on the in-process bus (``md.ticks``) at ``rate`` ticks/s, in batches of
one instrument every ``1 / batches_per_s`` seconds; the evaluator service (the processor,
its round's transaction, pipelined with the next round's step, then its new firings published
on ``alerts.events`` from memory, the relay behind them) evaluates them; the gateway's
``alerts`` channel (reading its snapshots from the main API's tables) delivers each firing to
a WebSocket client of the alerts' account, subscribed with an access token. Latency: the
time a firing arrives at the client minus the time the batch holding its crossing trade was
published. Everything runs in one process (one event loop), so the figure includes the
publisher's and the client's share of it.

Warm-up: the first batch of each instrument is published and evaluated before the clock
starts. The alerts already true at the start price (``above`` below it, ``below`` above
it: a sixth of the population) fire there, all at once: a storm of the set-up, not the
steady state the latency target is about. The warm-up is over when the stored states cover
those batches and the relay has published every firing recorded (the warm-up's storm would
otherwise be published ahead of the measured firings); the measured account's firings of the
warm-up are left out of the latencies.

And, unless ``echo`` (the figures before 2026-12-05 01:30 UTC), the warm-up's echo with it:
the ``once`` alerts its storm ended (half of those firings) come back to the evaluator through
the change feed, and each state stores their rows (some 5,000 deletions at 100,000 alerts):
with ``echo``, in the first rounds of the measured window, where that burst set the p99. A
service that starts does not see it (its states are restored from their rows and brought up
to the last change before its first round): it is the benchmark's population, a sixth of it
true at the first price. Without ``echo`` the warm-up waits until every state has applied the
changes up to the last one there was when the warm-up's firings were published, then
publishes the second batch of each instrument, whose round stores those rows, and waits for
it as for the first.

Where the time goes: each firing is also taken off ``alerts.events`` by a consumer of the
benchmark's own, which splits the latency into publish to ``alerts.events`` (the evaluator's
wait for its round, the round, its transaction and the publish) and ``alerts.events`` to the
client (the gateway); how many firings the fast path published and how many the relay read
back and published (none, unless a fast publish failed); and the evaluator's rounds are timed
by stage
(:class:`~main_api.alerts.runner.RoundTiming`: the pure step, taking the deltas, the
transaction) with the rows each stored. The transaction's time is wall time on the shared
event loop: it includes the other tasks' turns while it waits on the database (the next
round's step among them, since the two overlap).

The measured account has ``watched`` re-arming cross alerts (one second of cool-down) near
the start price; ``background`` more alerts of other accounts (the benchmark's population,
thresholds within 5% of the start price) are evaluated with them; each round stores the
rows it changed.

Target (issue 16): p99 at most 50 ms.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import sql
from websockets.asyncio.client import connect

from access.jwks import JwksCache
from access.keyset import KeySet
from auth.signing import Keyring, generate_key
from bench.alert_service import covered
from bench.common import scratch_schema
from bench.main_api_routes import tokens
from core.alerts import AlertSpec, Arming, Condition, decode_fired
from core.ticks import TickBatch
from core.topic_codecs import TICKS_CODEC
from core.topics import ALERTS_EVENTS, TICKS
from main_api.alert_reads import AlertSnapshots
from main_api.alerts.runner import EvaluatorService, EvaluatorSettings, RoundTiming
from main_api.store import MainStore
from main_api.tables import alert_params
from streams.bus import next_offsets
from streams.memory import MemoryBus
from ws_gateway import Gateway
from ws_gateway.settings import GatewaySettings
from ws_gateway.tokens import AccessTokens

ALERT_P99_MS: Final = 50.0
WATCHER: Final = 1
"""The measured account."""
_INSERT: Final = (
    "INSERT INTO main_api_alerts (alert_id, account, instrument, condition, threshold, source,"
    " interval, window_s, arming, cooldown_s, expires_at, status, created_at, updated_at,"
    " change_seq) VALUES (%(alert_id)s, %(account)s, %(instrument)s, %(condition)s,"
    " %(threshold)s, %(source)s, %(interval)s, %(window_s)s, %(arming)s, %(cooldown_s)s,"
    " %(expires_at)s, 'active', 0, 0, nextval('main_api_change_seq'))"
)


@dataclass(frozen=True, slots=True)
class Warm:
    """The warm-up: the first batch of each instrument, evaluated, stored and published before
    the clock starts (the alerts already true at the start price fire there, all at once)."""

    seconds: float
    fired: int
    recorded: int
    delivered: int = 0
    """The measured account's warm-up firings that reached the client (not measured)."""
    echo: bool = False
    """Whether the change feed's echo of the warm-up is left in the measured window."""


@dataclass(frozen=True, slots=True)
class Delivery:
    latencies_ms: list[float]
    alerts: int
    ticks: int
    offered: float
    seconds: float
    behind: float
    """Seconds from the last publish until the stored states covered every tick."""
    to_bus_ms: list[float]
    """Per firing: publish of its batch to its arrival on ``alerts.events``."""
    rounds: list[RoundTiming]
    warm: Warm
    recorded: int
    """Firings recorded after the warm-up, of every account (the population's too)."""
    handed: int = 0
    """Firings the fast path published (the warm-up's included)."""
    relayed: int = 0
    """Firings the relay read back from the table and published."""
    stages: dict[str, list[float]] = field(default_factory=dict)
    """Per stage of :data:`STAGES`, each measured firing's time in it (ms), in one order."""
    collections: list[tuple[int, float]] = field(default_factory=list)
    """The garbage collector's runs in the measured window: generation, ms."""

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def watched_alerts(
    count: int, names: Sequence[str], start_price: int, band_bp: int = 30
) -> list[AlertSpec]:
    """``count`` re-arming cross alerts of :data:`WATCHER`, within ``band_bp`` basis points of
    ``start_price`` (0.3% by default)."""
    rng = random.Random(5)
    low, high = start_price * (10_000 - band_bp), start_price * (10_000 + band_bp)
    specs = []
    for i in range(count):
        threshold = Decimal(rng.randint(low, high)) / 10_000
        specs.append(AlertSpec(
            alert_id=f"w{i}", account=WATCHER, instrument=names[i % len(names)],
            condition=Condition.CROSS_UP if i % 2 else Condition.CROSS_DOWN,
            threshold=threshold, arming=Arming.REARM, cooldown_s=1,
        ))  # fmt: skip
    return specs


async def insert_alerts(url: str, schema: str, specs: Sequence[AlertSpec]) -> None:
    """``specs`` stored at once, bypassing the plans' limits (a population, not requests)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        async with conn.cursor() as cursor:
            await cursor.executemany(_INSERT, [alert_params(spec) for spec in specs])
        await conn.commit()


Sent = dict[str, list[tuple[int, int]]]
"""Per instrument, each batch's first trade id and publish time (``perf_counter_ns``)."""


async def _publish(bus: MemoryBus, batches: Sequence[TickBatch], rate: float, sent: Sent) -> None:
    """Each batch at its time (open loop), its publish time kept by its first trade id."""
    topic = bus.topic(TICKS)
    start = time.perf_counter_ns() + 20_000_000
    made = 0
    for batch in batches:
        due = start + made * 1_000_000_000 / rate
        made += len(batch)
        delay = (due - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        key, value = TICKS_CODEC.record(batch)
        sent[batch.instrument].append((int(batch.trade_id[0]), time.perf_counter_ns()))
        await topic.publish(key, value)


def _published_at(sent: Sent, instrument: str, trade_id: int) -> int:
    """The publish time of the batch holding ``trade_id``."""
    published = sent[instrument]
    return published[bisect.bisect_right(published, (trade_id, 1 << 62)) - 1][1]


Timed = list[tuple[int, float, str, int]]
"""Per firing: its batch's publish time (``perf_counter_ns``), its latency in ms, its
``fire_id`` and when it arrived (``perf_counter_ns``)."""

STAGES: Final = (
    "published -> polled by the evaluator",
    "polled -> step began (changes applied after the poll)",
    "the step",
    "stepped -> transaction began (the round before it committing)",
    "the transaction",
    "committed, handed to the relay -> read off alerts.events",
    "alerts.events -> WebSocket received (the gateway)",
)
"""A firing's way, from the ticks' publish to the client (:func:`_stages`)."""


async def _on_bus(bus: MemoryBus, sent: Sent, latencies: Timed) -> None:
    """Each firing's time from its batch's publish to ``alerts.events``."""
    async with bus.subscribe("bench.delivery", [ALERTS_EVENTS], start="latest") as events:
        while True:
            records = await events.poll(500, timeout=1.0)
            got = time.perf_counter_ns()
            if records:  # else the in-process bus holds the publisher 10,000 records on
                await events.commit(next_offsets(records))
            for record in records:
                event = decode_fired(record.value)
                if event.account == WATCHER and event.trade_id is not None:
                    at = _published_at(sent, event.instrument, event.trade_id)
                    latencies.append((at, (got - at) / 1e6, event.fire_id, got))


async def _receive(url: str, sent: Sent, latencies: Timed, ready: asyncio.Event) -> None:
    async with connect(url, open_timeout=10) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": "alerts"}))
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            got = time.perf_counter_ns()
            if message["type"] == "snapshot":
                ready.set()
            if message["type"] != "alert":
                continue
            alert = message["alert"]
            at = _published_at(sent, alert["instrument"], alert["trade_id"])
            latencies.append((at, (got - at) / 1e6, alert["fire_id"], got))


def _stages(
    received: Timed, on_bus: Timed, rounds: Sequence[RoundTiming]
) -> dict[str, list[float]]:
    """Each received firing's time in each of :data:`STAGES` (ms), from its round's stamps
    (:class:`~main_api.alerts.runner.RoundTiming`) and its arrival on ``alerts.events``;
    firings whose round or arrival is not known are left out."""
    round_of = {fire_id: r for r in rounds for fire_id in r.fired}
    bus_at = {fire_id: got for _, _, fire_id, got in on_bus}
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for at, _, fire_id, got in received:
        r, seen = round_of.get(fire_id), bus_at.get(fire_id)
        if r is None or seen is None:
            continue
        stamps = (at, r.polled_at, r.step_at, r.stepped_at, r.began_at, r.committed_at, seen, got)
        for name, start, end in zip(STAGES, stamps, stamps[1:], strict=False):
            stages[name].append((end - start) / 1e6)
    return stages


async def measure(
    url: str,
    schema: str,
    watched: Sequence[AlertSpec],
    background: Sequence[AlertSpec],
    batches: Sequence[TickBatch],
    rate: float,
    echo: bool = False,
) -> Delivery:
    key = generate_key(int(time.time()) - 60)
    keys = KeySet.from_jwks(json.dumps({"keys": [key.public_jwk()]}).encode())
    token = tokens(Keyring((key,), 600), WATCHER)[0]
    names = tuple(sorted({batch.instrument for batch in batches}))
    sent: Sent = {name: [] for name in names}
    latencies: Timed = []
    to_bus: Timed = []
    began_ns = 0
    collector = _Collections()
    async with MainStore.open(url, schema) as store:
        await insert_alerts(url, schema, [*watched, *background])
        stop = asyncio.Event()
        async with (
            AlertSnapshots.open(url, schema) as reads,
            MemoryBus(partitions=4) as bus,
            Gateway(
                bus, None, GatewaySettings(port=0, instruments=names),
                AccessTokens(JwksCache.fixed(keys), None), alert_reads=reads,
            ) as gateway,
        ):  # fmt: skip
            service = EvaluatorService(store, bus, url, EvaluatorSettings(poll_timeout=0.01))
            running = asyncio.create_task(service.run(stop))
            ready = asyncio.Event()
            receiving = asyncio.gather(
                _receive(f"ws://127.0.0.1:{gateway.port}/ws?token={token}", sent, latencies, ready),
                _on_bus(bus, sent, to_bus),
            )
            try:
                await asyncio.wait_for(ready.wait(), 30)
                while service.hook is None or not service.hook.states:
                    await asyncio.sleep(0.05)
                warm_up = time.perf_counter()
                first = len(names)
                await _publish(bus, batches[:first], rate, sent)
                async with asyncio.timeout(120):
                    while not await _warm(url, schema, first):
                        await asyncio.sleep(0.02)
                if not echo:  # the change feed's echo of the warm-up, applied and stored
                    last = await _last_change(url, schema)
                    async with asyncio.timeout(120):
                        while not _applied(service, last):
                            await asyncio.sleep(0.02)
                    await _publish(bus, batches[first : 2 * first], rate, sent)
                    first *= 2
                    async with asyncio.timeout(120):
                        while not await _warm(url, schema, first):
                            await asyncio.sleep(0.02)
                stats = service.stats
                warm = Warm(time.perf_counter() - warm_up, stats.fired, stats.recorded, echo=echo)
                service.stats.timings.clear()
                began, began_ns = time.perf_counter(), time.perf_counter_ns()
                gc.callbacks.append(collector.seen)
                await _publish(bus, batches[first:], rate, sent)
                seconds = time.perf_counter() - began
                async with asyncio.timeout(180):  # the evaluator catches up, if behind
                    while await covered(url, schema) < len(batches):
                        await asyncio.sleep(0.02)
                behind = time.perf_counter() - began - seconds
                gc.callbacks.remove(collector.seen)
                await asyncio.sleep(1.0)  # the last firings' way to the client
            finally:
                if collector.seen in gc.callbacks:  # the window ended early
                    gc.callbacks.remove(collector.seen)
                receiving.cancel()
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiving
                await running
    ticks = sum(len(batch) for batch in batches)
    rounds = list(service.stats.timings)
    alerts = len(watched) + len(background)
    recorded = service.stats.recorded - warm.recorded
    # the warm-up's own firings (published before the clock started) are not measured
    received = [firing for firing in latencies if firing[0] >= began_ns]
    warm = replace(warm, delivered=len(latencies) - len(received))
    return Delivery(
        [firing[1] for firing in received], alerts, ticks, rate, seconds, behind,
        [firing[1] for firing in to_bus if firing[0] >= began_ns], rounds, warm, recorded,
        service.relay.handed_out, service.relay.published, _stages(received, to_bus, rounds),
        collector.runs,
    )  # fmt: skip


class _Collections:
    """The garbage collector's runs while :meth:`seen` is among ``gc.callbacks``."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, float]] = []
        self._started = 0

    def seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        elif self._started:
            self.runs.append((info["generation"], (time.perf_counter_ns() - self._started) / 1e6))


async def _last_change(url: str, schema: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT coalesce(max(change_seq), 0) FROM {}.main_api_alerts").format(
                sql.Identifier(schema)
            )
        )
        row = await cursor.fetchone()
        return 0 if row is None else int(row[0])


def _applied(service: EvaluatorService, last: int) -> bool:
    """Whether every state of ``service`` has applied the alert changes up to ``last``."""
    hook = service.hook
    return (
        hook is not None
        and not hook.applying
        and all(state.change_seq >= last for state in hook.states.values())
    )


async def _warm(url: str, schema: str, batches: int) -> bool:
    """Whether the warm-up is over: its ``batches`` covered by the stored states, and every
    firing recorded published on ``alerts.events`` by the relay (else the warm-up's storm
    would be published, in ``seq`` order, ahead of the measured firings)."""
    if await covered(url, schema) < batches:
        return False
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT (SELECT coalesce(max(seq), 0) FROM {}.main_api_fired)"
                    " <= (SELECT coalesce(max(seq), 0) FROM {}.main_api_relay)").format(
                sql.Identifier(schema), sql.Identifier(schema)
            )
        )  # fmt: skip
        row = await cursor.fetchone()
        return row is not None and bool(row[0])


def run(
    url: str,
    watched: Sequence[AlertSpec],
    background: Sequence[AlertSpec],
    batches: Sequence[TickBatch],
    rate: float,
    echo: bool = False,
) -> Delivery:
    with scratch_schema(url, "bench_delivery") as schema:
        return asyncio.run(measure(url, schema, watched, background, batches, rate, echo))


def report(figure: Delivery) -> None:
    print(
        f"\ntick to alert on a WebSocket: {figure.alerts:,} active alerts, {figure.ticks:,} ticks"
        f" offered at {figure.offered:,.0f}/s (in {figure.seconds:.2f} s; every tick's state"
        f" stored {figure.behind:.2f} s after the last), evaluator service + relay + gateway,"
        " in-process bus, PostgreSQL"
    )
    print(
        f"  warm-up (not measured): the first batch of each instrument, {figure.warm.fired:,}"
        f" firings of the alerts already true at the start price, stored and published"
        + (
            " (the change feed's echo of them, their once alerts ended, left to the measured"
            " window)"
            if figure.warm.echo
            else ", their echo through the change feed applied and stored (a second batch)"
        )
        + f" in {figure.warm.seconds:.2f} s ({figure.warm.delivered:,} of them to the client,"
        " left out of the figures below)"
    )
    p50, p99 = figure.percentile(0.5), figure.percentile(0.99)
    verdict = "met" if p99 <= ALERT_P99_MS else "NOT met"
    print(
        f"  {len(figure.latencies_ms):,} firings delivered: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        f" (target <= {ALERT_P99_MS:.0f} ms: {verdict})"
    )
    print("  where the time goes (p50 / p99 / max):")
    bus = figure.to_bus_ms
    print(
        f"    publish to alerts.events (wait for a round, the round, its transaction, the"
        f" publish): {_spread(bus)} ms ({len(bus):,} firings; of the whole run's, every"
        f" account, {figure.handed:,} published from memory after their commit,"
        f" {figure.relayed:,} read back by the relay)"
    )
    rounds = figure.rounds
    for name, values in (
        ("the pure step", [r.step_ns / 1e6 for r in rounds]),
        ("taking the deltas", [r.delta_ns / 1e6 for r in rounds]),
        ("the transaction (rows, offsets, firings)", [r.commit_ns / 1e6 for r in rounds]),
    ):
        print(f"    a round's {name}: {_spread(values)} ms")
    stages = figure.stages
    if stages and stages[STAGES[0]]:
        whole = [sum(parts) for parts in zip(*stages.values(), strict=True)]
        tail = percentile(whole, 0.99)
        slow = [i for i, ms in enumerate(whole) if ms >= tail]
        print(
            f"    a firing's way, stage by stage ({len(whole):,} firings followed; p50 / p99 /"
            f" max, and the mean over the slowest 1%, {len(slow)} firings of {tail:.1f} ms"
            " or more):"
        )
        for name, values in stages.items():
            mean = sum(values[i] for i in slow) / len(slow)
            print(f"      {name}: {_spread(values)} ms; slowest 1%: {mean:.1f} ms")
    for generation in range(3):
        runs = [ms for gen, ms in figure.collections if gen == generation]
        longest = f", the longest {max(runs):.1f} ms" if runs else ""
        print(f"    garbage collections of generation {generation}: {len(runs)}{longest}")
    rows = [float(r.rows) for r in rounds]
    print(f"    rows a round stored: {_spread(rows, '.0f')} ({len(rounds):,} rounds stored)")
    print(
        f"    firings recorded after the warm-up, every account: {figure.recorded:,}"
        f" ({figure.recorded / (figure.seconds + figure.behind):,.0f}/s)"
    )


def _spread(values: Sequence[float], form: str = ".1f") -> str:
    if not values:
        return "-"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"{p50:{form}} / {p99:{form}} / {max(values):{form}}"
