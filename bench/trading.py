"""The trading service's latencies against the issue's targets, at the service level.

One run, one PostgreSQL (a private server with fsync off by default, as the other store
benchmarks; ``--durable`` turns it on), the paper venue, the memory bus, and beside the
service, as it runs in production, the outbox (:class:`trading.store.outbox.OutboxPublisher`,
default settings) and the read-model projector following the log, wired by
:func:`trading.followers.start_followers` as ``mdp trading serve`` and ``mdp trading follow``
wire them (the partition's keep filter, the readiness checks, a watch), the projector's read
model timed (woken by its notification of each append, with the default fallback poll;
``--poll-only`` turns the wake-ups off, so the followers only poll, every ``--follow-idle``).
The service's group commits run in a worker thread on the library's pool, as ``mdp trading
serve`` runs them (on an async connection on the event loop they took less CPU and more time
under load; that contender is gone: ``docs/trading.md``, "Speed").
The followers have a connection pool of their own, as a process of their own would; with
``--followers separate`` they run in a process of their own (:mod:`bench.trading_followers`,
as ``mdp trading follow`` runs them beside ``mdp trading serve --followers separate``), on a
memory bus of theirs where the fills are received, and tell their times back on a pipe.

- **Order acknowledgement**: limit buys resting far from the price, offered at ``--rate``
  orders/s over ``--accounts`` accounts in turn (open loop: each leaves at its scheduled
  time, so a slow order makes the next ones queue), from the scheduled time to the return of
  :meth:`TradingService.place` with ``order-accepted`` stored. The **baseline** is one plain
  ``INSERT`` transaction per order (a row of the same size, a pool of as many connections as
  the store's) at the same rate, in the same run, on the same server. The HTTP hop is not in
  it: :data:`Placer` is where a REST client will take the service's place.
- **Tick-to-fill**: trades fed to :meth:`TradingService.on_ticks` at ``--tick-rate`` ticks/s
  in micro-batches of ``--tick-batch`` (as ``md.ticks`` carries them), one batch after
  another (open loop: a batch arrives at its time whether or not the last one is done);
  every ``--fill-every``-th trade prints through the price of the next resting order and
  fills it (``--fill-accounts K``: the next K, of K accounts, at one price). Latency from the
  batch's arrival to that ``order-filled`` received from ``trading.events`` on the bus,
  published by the outbox (``perf_counter``: the machine's monotonic clock, the same in both
  processes when the followers run apart).
- **Projection lag**: from an event's ``ts`` (the service's clock just before its append) to
  the commit of the projector's batch holding it (seen when the next batch starts or the
  catch-up ends), for every event the two phases store but ``order-filled`` (whose ``ts`` is
  the trade's).

Targets (issue #15): ack p99 at most 5 ms, tick-to-fill p99 at most 20 ms, projection lag
p99 at most 50 ms.

Usage: ``python -m bench.trading [--rate 500] [--seconds 10] [--accounts 50]
[--tick-rate 20000] [--tick-seconds 10] [--tick-batch 20] [--fill-every 100]
[--fill-accounts 1] [--follow-idle 2.0] [--poll-only] [--followers in-process|separate] [--durable]
[--database-url URL] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

import msgspec
import psycopg_pool
from psycopg import Cursor
from psycopg.rows import DictRow

from bench.common import scratch_database
from bench.event_store import Spread, spread
from core.partitions import Partition
from core.ticks import Side, Tick
from core.topic_codecs import codec_for
from core.topics import TRADING_EVENTS
from core.trading_events import (
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderType,
    TradingEvent,
)
from streams.memory import MemoryBus
from trading.domain.orders import OrderRequest
from trading.followers import Tuning, start_followers
from trading.paper.matcher import PaperMatcher
from trading.readmodels.tables import DEFAULT_SCHEMA, model
from trading.service.shell import TradingService
from trading.store.aggregates import Versioned
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.projector import Projector, ReadModel
from trading.store.wire import EVENT_CODEC
from trading.watch import ProcessFailed, Watch

ACK_P99_MS: Final = 5.0
FILL_P99_MS: Final = 20.0
LAG_P99_MS: Final = 50.0
RESTING: Final = "KRAKEN:XBTUSDT"
"""The acknowledgement phase's instrument (no trade: its orders rest)."""
FILLED: Final = "KRAKEN:ETHUSDT"
"""The tick phase's instrument."""
TOP: Final = Decimal(999)
STEP: Final = Decimal("0.01")
ABOVE: Final = Decimal("1000.5")
"""The price of the trades that fill nothing (above every resting buy)."""
IN_PROCESS: Final = "in-process"
SEPARATE: Final = "separate"
SETTLE_S: Final = 30.0
"""How long the run waits for the last fills to come out of the outbox."""

Placer = Callable[[OrderRequest], Awaitable[bool]]
"""What an order is placed through, true when it is acknowledged: the service here (accepted
and stored); a REST client will take its place to add the HTTP hop."""

BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain_orders (
    account bigint, client_order_id text, request bytea, PRIMARY KEY (account, client_order_id))
"""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a spread, what was offered and achieved, its target."""

    spread: Spread
    offered: str
    target_ms: float | None
    failures: int = 0

    @property
    def name(self) -> str:
        return self.spread.name

    @property
    def met(self) -> bool:
        return self.failures == 0 and self.spread.p99_ms <= (self.target_ms or float("inf"))


@dataclass
class Lags:
    """Projection lags: each event's ``ts`` noted as projected, stamped when committed."""

    pending: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def committed(self) -> None:
        now = time.time_ns()
        self.seconds.extend((now - ts) / 1e9 for ts in self.pending)
        self.pending.clear()


def request(account: int, client_order_id: str, instrument: str, price: Decimal) -> OrderRequest:
    return OrderRequest(
        account=account, client_order_id=client_order_id, instrument=instrument,
        side=OrderSide.BUY, type=OrderType.LIMIT, quantity=STEP, price=price,
    )  # fmt: skip


async def offer(
    count: int, rate: float, action: Callable[[int, float], Coroutine[Any, Any, None]]
) -> float:
    """Start ``action(n, due)`` for each ``n`` at its time ``due`` (``perf_counter``), without
    waiting for the earlier ones (open loop); return the rate achieved."""
    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(action(n, due)))
    sent = time.perf_counter() - start
    await asyncio.gather(*tasks)
    return count / sent if sent > 0 else float("inf")


async def acknowledgements(
    name: str, place: Placer, count: int, rate: float, accounts: int, target: float | None,
    whose: str = "the followers' included",
) -> Row:  # fmt: skip
    """``place`` each order at its time; latency from that time to the acknowledgement."""
    seconds: list[float] = []
    failures = 0

    async def one(n: int, due: float) -> None:
        nonlocal failures
        acknowledged = await place(request(n % accounts + 1, f"ack-{n}", RESTING, Decimal(100)))
        seconds.append(time.perf_counter() - due)
        failures += not acknowledged

    start, cpu = time.perf_counter(), time.process_time()
    achieved = await offer(count, rate, one)
    done = count / (time.perf_counter() - start)
    per_order = (time.process_time() - cpu) / count * 1000
    offered = (
        f"{rate:,.0f}/s offered, {achieved:,.0f}/s sent, {done:,.0f}/s acknowledged,"
        f" {per_order:.2f} ms of this process's CPU an order ({whose})"
    )
    return Row(spread(name, seconds), offered, target, failures)


def service_placer(service: TradingService) -> Placer:
    async def place(order: OrderRequest) -> bool:
        return (await service.place(order)).order.status is OrderStatus.ACCEPTED

    return place


def insert_placer(pool: psycopg_pool.AsyncConnectionPool) -> Placer:
    """One plain INSERT transaction per order (the baseline)."""

    async def place(order: OrderRequest) -> bool:
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO bench_plain_orders VALUES (%s, %s, %s)",
                (order.account, order.client_order_id, msgspec.msgpack.encode(order)),
            )
        return True

    return place


# -- tick to fill --------------------------------------------------------------------------------


def trades(count: int, fill_every: int, start_ns: int, rate: float) -> list[Tick]:
    """``count`` trades ``1 / rate`` apart from ``start_ns``; the ``fill_every``-th ones print
    through the next resting order's price (:func:`resting_price`), the others above all."""
    ticks = []
    for n in range(count):
        fill, rest = divmod(n + 1, fill_every)
        price = resting_price(fill - 1) - STEP / 2 if rest == 0 else ABOVE
        ts = start_ns + int(n * 1e9 / rate)
        ticks.append(Tick(FILLED, n, price, Decimal(1), Side.SELL, ts, ts))
    return ticks


def resting_price(n: int) -> Decimal:
    return TOP - n * STEP


async def tick_to_fill(
    service: TradingService, received: asyncio.Queue[tuple[int, float]], rate: float,
    seconds: float, batch: int, fill_every: int, accounts: int, per_trade: int = 1,
) -> Row:  # fmt: skip
    """``per_trade`` resting orders of as many accounts at each price level: each filling
    trade fills them all."""
    levels = int(rate * seconds) // fill_every
    fills = levels * per_trade
    for n in range(fills):  # each level a step below the last, its orders in other accounts
        order, _ = await service.place(
            request(n % accounts + 1, f"rest-{n}", FILLED, resting_price(n // per_trade))
        )
        assert order.status is OrderStatus.ACCEPTED, order
    ticks = trades(levels * fill_every, fill_every, time.time_ns(), rate)
    arrivals: dict[int, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < fills:
            trade_id, at = await received.get()
            latencies.append(at - arrivals[trade_id])

    receiving = asyncio.create_task(receive())
    start = time.perf_counter()
    for first in range(0, len(ticks), batch):
        due = start + first / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        arrivals.update((tick.trade_id, due) for tick in ticks[first : first + batch])
        await service.on_ticks(ticks[first : first + batch])
    achieved = len(ticks) / (time.perf_counter() - start)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiving, SETTLE_S)
    name = "tick-to-fill (on_ticks to order-filled on the bus)"
    offered = (
        f"{rate:,.0f}/s offered, {achieved:,.0f}/s fed, {fills:,} fills"
        f" ({per_trade} account(s) on each filling trade)"
    )
    return Row(spread(name, latencies), offered, FILL_P99_MS, fills - len(latencies))


# -- followers -----------------------------------------------------------------------------------


def timed_model(lags: Lags, schema: str = DEFAULT_SCHEMA) -> ReadModel[TradingEvent]:
    """The trading read models, noting each projected event's ``ts`` (but a fill's); a batch's
    are stamped when the next batch of the catch-up starts (its claim and read after the
    commit: a little late), or when the catch-up ends. Stamped only at the catch-up's end, the
    first batches' would count the later ones' time too: a catch-up of thousands of events
    takes seconds."""
    live = model(schema)

    def project(curs: Cursor[DictRow], items: Sequence[Versioned[TradingEvent]]) -> None:
        lags.committed()  # the batch before this one (of one catch-up) has committed
        live.project(curs, items)
        lags.pending.extend(i.event.ts for i in items if not isinstance(i.event, OrderFilled))

    return ReadModel(live.schema, live.ddl, project)


class TimedProjector(Projector[TradingEvent]):
    """The service's projector of the timed read model (:func:`timed_model`): ``started`` is
    told once its tables are there, and the last batch of each catch-up is stamped at its end
    (in the projector's thread, as the batches before it)."""

    def __init__(
        self, database: Database, schema: str, lags: Lags, started: Callable[[], object]
    ) -> None:
        super().__init__(database, EventStore(database, EVENT_CODEC), timed_model(lags, schema))
        self._lags = lags
        self._started = started

    def start(self) -> None:
        super().start()
        self._started()

    def catch_up(self) -> int:
        count = super().catch_up()
        self._lags.committed()
        return count


async def watch_fills(
    bus: MemoryBus, stop: asyncio.Event, on_fill: Callable[[int, float], None]
) -> None:
    """Tell ``on_fill(trade_id, perf_counter)`` of each ``order-filled`` of the tick phase's
    instrument received from ``trading.events``, until ``stop`` is set."""
    codec = codec_for(TRADING_EVENTS)
    async with bus.subscribe("bench-fills", [TRADING_EVENTS], start="latest") as subscription:
        while not stop.is_set():
            for record in await subscription.poll(10_000, timeout=0.1):
                event = codec.decode(record.value).event
                if isinstance(event, OrderFilled) and event.instrument == FILLED:
                    on_fill(event.trade_id, time.perf_counter())


async def followers(
    database: Database,
    bus: MemoryBus,
    lags: Lags,
    stop: asyncio.Event,
    idle_s: float,
    listen: bool,
    started: asyncio.Event | None = None,
) -> None:
    """The outbox and the projector as the service runs them (:mod:`trading.followers`: the
    partition's keep filter, the readiness checks, under a watch), every account's, each
    following the log until ``stop`` is set, woken by its notifications (if ``listen``) and
    polling it every ``idle_s`` when it has nothing new, the projector timed (``lags``);
    ``started`` is set once the projector's tables are there. One of them ending before
    ``stop`` ends this too, raising :class:`~trading.watch.ProcessFailed` naming it."""
    loop = asyncio.get_running_loop()

    def tables_made() -> None:  # in the projector's thread
        if started is not None:
            loop.call_soon_threadsafe(started.set)

    def timed(database: Database, schema: str) -> Projector[TradingEvent]:
        return TimedProjector(database, schema, lags, tables_made)

    tuning = Tuning(idle_s=idle_s, listen=listen, projector=timed)
    watch, stopping = Watch(on_failure=stop.set), asyncio.Event()
    await start_followers(database, bus, DEFAULT_SCHEMA, Partition(), watch, stopping, tuning)
    await stop.wait()
    stopping.set()
    await watch.close()
    if watch.failure is not None:
        raise ProcessFailed(watch.failure.reason)


class Apart:
    """The followers' process (:mod:`bench.trading_followers`), its lines read as they come:
    ``fill TRADE_ID PERF_COUNTER``, ``lag SECONDS...``, and ``cpu SECONDS`` at its end."""

    def __init__(
        self,
        child: asyncio.subprocess.Process,
        lags: Lags,
        received: asyncio.Queue[tuple[int, float]],
    ) -> None:
        self.child, self.lags, self.received = child, lags, received
        self.cpu_s: float | None = None

    async def ready(self) -> None:
        """Read lines until ``ready`` (lags of the events stored before it may come first)."""
        assert self.child.stdout is not None
        while (line := await self.child.stdout.readline()).strip() != b"ready":
            if not line:
                raise RuntimeError("the followers' process ended before it was ready")
            self.take(line)

    async def read(self) -> None:
        assert self.child.stdout is not None
        async for line in self.child.stdout:
            self.take(line)

    def take(self, line: bytes) -> None:
        kind, *values = line.split()
        if kind == b"fill":
            self.received.put_nowait((int(values[0]), float(values[1])))
        elif kind == b"lag":
            self.lags.seconds.extend(float(value) for value in values)
        elif kind == b"cpu":
            self.cpu_s = float(values[0])


@contextlib.asynccontextmanager
async def separate_followers(
    url: str, idle_s: float, listen: bool, lags: Lags, received: asyncio.Queue[tuple[int, float]]
) -> AsyncIterator[Apart]:
    """The outbox and the projector in a process of their own for the block; its end stops
    them (a line on their stdin) and waits for their last lines."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.trading_followers", url, str(idle_s),
        "listen" if listen else "poll",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**20,
    )  # fmt: skip
    apart = Apart(child, lags, received)
    try:
        await apart.ready()
        reading = asyncio.create_task(apart.read())
        yield apart
        assert child.stdin is not None
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        await asyncio.wait_for(reading, SETTLE_S)
        await asyncio.wait_for(child.wait(), SETTLE_S)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


# -- the run -------------------------------------------------------------------------------------


async def bench(url: str, args: argparse.Namespace) -> list[Row]:
    settings = StoreSettings(url)
    if args.snapshot_every is not None:
        settings = replace(settings, snapshot_every=args.snapshot_every)
    count = int(args.rate * args.seconds)
    with Database(settings) as database, Database(settings) as follow_database:
        database.create_tables()
        service = TradingService(database, PaperMatcher())
        pool = psycopg_pool.AsyncConnectionPool(
            url, min_size=settings.pool_size, max_size=settings.pool_size,
            kwargs={"autocommit": True}, open=False,
        )  # fmt: skip
        await pool.open(wait=True)
        async with pool, MemoryBus() as bus, contextlib.AsyncExitStack() as stack:
            async with pool.connection() as conn:
                await conn.execute(BASELINE_TABLE)
            lags, stop = Lags(), asyncio.Event()
            received: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
            if args.followers == SEPARATE:
                apart = await stack.enter_async_context(
                    separate_followers(url, args.follow_idle, not args.poll_only, lags, received)
                )
            else:
                apart = None
                watching = asyncio.create_task(
                    watch_fills(bus, stop, lambda *fill: received.put_nowait(fill))
                )
                following = asyncio.create_task(
                    followers(
                        follow_database, bus, lags, stop, args.follow_idle, not args.poll_only
                    )
                )
            for account in range(1, args.accounts + 1):  # once the followers run
                await service.deposit(account, "USDT", Decimal(10**9))
            whose = "the followers apart" if apart else "the followers' included"
            plain = await acknowledgements(
                "plain INSERT transaction (baseline)", insert_placer(pool), count, args.rate,
                args.accounts, None, whose,
            )  # fmt: skip
            ack = await acknowledgements(
                "order ack (place to order-accepted stored)", service_placer(service), count,
                args.rate, args.accounts, ACK_P99_MS, whose,
            )  # fmt: skip
            fill = await tick_to_fill(
                service, received, args.tick_rate, args.tick_seconds, args.tick_batch,
                args.fill_every, args.accounts, args.fill_accounts,
            )  # fmt: skip
            await asyncio.sleep(1.0)  # the projector's last batches
            stop.set()
            if apart is None:
                await asyncio.gather(following, watching)
    if apart is not None:
        cpu = "unknown" if apart.cpu_s is None else f"{apart.cpu_s:.1f} s"
        ack = replace(ack, offered=f"{ack.offered}; the followers' process: {cpu} of CPU in all")
    lag = Row(spread("projection lag (append to read model)", lags.seconds), "", LAG_P99_MS)
    return [plain, ack, fill, lag]


def report(rows: Sequence[Row]) -> None:
    print(f"\n  {'measure':<50} {'p50 ms':>8} {'p99 ms':>8} {'n':>7} {'target p99':>11}  met")
    for row in rows:
        target = f"<= {row.target_ms:g} ms" if row.target_ms is not None else "-"
        met = ("yes" if row.met else "NO") if row.target_ms is not None else ""
        print(
            f"  {row.name:<50} {row.spread.p50_ms:>8.2f} {row.spread.p99_ms:>8.2f}"
            f" {row.spread.count:>7,} {target:>11}  {met}"
        )
    for row in rows:
        failed = f", {row.failures} failed" if row.failures else ""
        if row.offered or failed:
            print(f"  {row.name}: {row.offered}{failed}")


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--tick-rate", type=float, default=20_000.0)
    parser.add_argument("--tick-seconds", type=float, default=10.0)
    parser.add_argument("--tick-batch", type=int, default=20)
    parser.add_argument("--fill-every", type=int, default=100)
    parser.add_argument(
        "--follow-idle",
        type=float,
        default=Tuning().idle_s,
        metavar="SECONDS",
        help="how long the outbox and the projector wait at most when the log has nothing new",
    )
    parser.add_argument(
        "--poll-only",
        action="store_true",
        help="the followers do not listen for the log's notifications (they only poll)",
    )
    parser.add_argument(
        "--fill-accounts",
        type=int,
        default=1,
        metavar="K",
        help="orders of K accounts filled by each filling trade (at most --accounts)",
    )
    parser.add_argument(
        "--followers",
        choices=(IN_PROCESS, SEPARATE),
        default=IN_PROCESS,
        help="the outbox and the projector in the service's process (default), or in a"
        " process of their own (as mdp trading follow)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="snapshot an account each time its version crosses a multiple of N (0: never;"
        " the store's default when not given)",
    )
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--durable", action="store_true", help="a private server with fsync on")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs (for CI)")
    args = parser.parse_args(argv)
    if not 1 <= args.fill_accounts <= args.accounts:
        parser.error("--fill-accounts must be between 1 and --accounts")
    if args.smoke:
        args.rate, args.seconds, args.accounts = 100.0, 0.3, 5
        args.tick_rate, args.tick_seconds, args.fill_every = 2000.0, 0.3, 50
    with scratch_database(args.database_url, args.durable) as url:
        rows = asyncio.run(bench(url, args))
    print(
        f"\ntrading service, {args.accounts} accounts, {args.rate:,.0f} orders/s for"
        f" {args.seconds:g} s, {args.tick_rate:,.0f} ticks/s for {args.tick_seconds:g} s"
        f" (batches of {args.tick_batch}, a filling trade every {args.fill_every},"
        f" {args.fill_accounts} account(s) each);"
        f" followers {args.followers},"
        f" {'polling' if args.poll_only else 'woken by NOTIFY, polling'}"
        f" every {args.follow_idle:g} s"
    )
    report(rows)
    return rows


if __name__ == "__main__":
    main()
