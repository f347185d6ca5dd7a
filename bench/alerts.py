"""The alert evaluator: ticks/s with many alerts, against a naive baseline in the same run.

- ``main_api.alerts.AlertEvaluator``: thresholds indexed per stream (sorted), each tick checks
  only the alerts it can change;
- baseline (:class:`NaiveEvaluator`): every live alert of the instrument checked on every
  tick, with exact decimals. It is written apart from the evaluator, from the semantics in
  :mod:`core.alerts`, so the tests also use it as the oracle the evaluator must agree with.

Workload: ``--alerts`` alerts spread over ``--instruments`` instruments, all six conditions,
thresholds within 5% of the start price, half ``once`` and half ``rearm``; a random walk of
ticks (1 bp steps, ``--rate`` ticks/s of event time over all instruments) in batches of
``--batch`` ticks of one instrument, round robin.

Then the service's figures (:mod:`bench.alert_service`, :mod:`bench.alert_delivery`,
:mod:`bench.main_api_routes`): the snapshot a round stores (no database); and, on PostgreSQL
(``--database-url``, default ``DATABASE_URL``, else a private server; skipped with a message
when none can be had, or with ``--no-database``), a firing storm through the evaluator service,
tick to alert on a WebSocket at ``--rate`` ticks/s for ``--ws-seconds`` with the ``--alerts``
population (twice: a storm of 1 bp steps, and Binance-like steps; ``--delivery`` picks one),
and the main API's routes at ``--route-rate`` requests/s.

Usage: ``python -m bench.alerts [--alerts N] [--ticks N] [--naive-ticks N] [--repeat N]
[--database-url URL | --no-database] [--storm-alerts N] [--storm-ticks N] [--ws-seconds S]
[--watched N] [--route-rate R] [--route-seconds S] [--delivery-only]
[--delivery both|storm|realistic] [--warm-up-echo]
[--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import decimal
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

import numpy as np

from bench import alert_delivery as delivery
from bench import alert_service as service
from bench import main_api_routes as routes
from bench.common import Figure, print_table, scratch_database
from core.alerts import AlertFired, AlertSpec, Arming, Condition, Source
from core.alerts import fired as firing
from core.candles import Candle, CandleStatus
from core.gaps import FeedGap
from core.intervals import Interval
from core.numbers import to_decimal
from core.ticks import TickBatch
from main_api.alerts import AlertEvaluator

_EXACT = decimal.Context(prec=120)
"""Wide enough that a product of two prices or percentages is exact."""

Stream = tuple[str, str, str]
Input = TickBatch | Candle | FeedGap


class _Alert:
    __slots__ = ("arming", "cool_until", "fired", "live", "reset", "spec", "stream")

    def __init__(self, spec: AlertSpec, stream: Stream, arming: int) -> None:
        self.spec = spec
        self.stream = stream
        self.live = True
        self.arming = arming
        self.fired = False
        self.reset = False
        self.cool_until = 0


def _stream(spec: AlertSpec) -> Stream:
    if spec.source is Source.TICKS:
        return (spec.instrument, "ticks", "")
    assert spec.interval is not None
    return (spec.instrument, "candles", Interval.parse(spec.interval).label)


class NaiveEvaluator:
    """Every live alert of a stream checked on every price of that stream, in alert id order.

    Same inputs and changes as :class:`~main_api.alerts.AlertEvaluator`, same firings.
    """

    def __init__(self) -> None:
        self.alerts: dict[str, _Alert] = {}
        self.last: dict[Stream, tuple[Decimal, int]] = {}
        self.candle_at: dict[Stream, tuple[int, int]] = {}
        self.gaps: dict[Stream, list[tuple[int, int]]] = {}
        self.windows: dict[tuple[Stream, int], deque[tuple[int, Decimal]]] = {}
        self.bounds: dict[int, tuple[Decimal, Decimal]] = {}
        """The (lowest, highest) price of each window of the stream at the current price."""
        self.by_stream: dict[Stream, list[_Alert]] = {}
        """Each stream's alerts in alert id order (a plain list: no index of thresholds)."""

    def apply_changes(self, specs: Iterable[AlertSpec], deleted_ids: Iterable[str] = ()) -> None:
        for alert_id in deleted_ids:
            self.alerts.pop(alert_id, None)
        for spec in specs:
            old = self.alerts.get(spec.alert_id)
            if old is not None and old.spec == spec:
                continue
            arming = 1
            if old is not None:
                arming = old.arming + (1 if old.fired or not old.live else 0)
            self.alerts[spec.alert_id] = _Alert(spec, _stream(spec), arming)
        self.by_stream = {}
        for alert_id in sorted(self.alerts):
            alert = self.alerts[alert_id]
            self.by_stream.setdefault(alert.stream, []).append(alert)
        self._windows_in_use()

    def _windows_in_use(self) -> None:
        """A window exists while a live move alert of its stream and length does."""
        wanted = {
            (alert.stream, alert.spec.window_s)
            for alert in self.alerts.values()
            if alert.live and alert.spec.condition in (Condition.MOVE_UP, Condition.MOVE_DOWN)
        }
        for key in list(self.windows):
            if key not in wanted:
                del self.windows[key]
        for key in wanted:
            self.windows.setdefault(key, deque())

    def step(self, item: Input) -> list[AlertFired]:
        if isinstance(item, FeedGap):
            stream = (item.instrument, "ticks", "")
            self.gaps.setdefault(stream, []).append((item.start_ns, item.end_ns))
            return []
        if isinstance(item, Candle):
            return self._candle(item)
        fired = []
        stream = (item.instrument, "ticks", "")
        for row in range(len(item)):
            price = to_decimal(int(item.price[row]), item.price_scale)
            ts = int(item.ts_event[row])
            gap = self._gap(stream, ts)
            for alert, arming in self._price(stream, price, ts, False):
                fired.append(firing(alert.spec, arming, price, ts, gap, int(item.trade_id[row])))
        return fired

    def _gap(self, stream: Stream, ts: int) -> bool:
        """A price at or after a gap's last nanosecond spans it, unless the one before it
        was already past the gap."""
        flagged = False
        kept = []
        last = self.last.get(stream)
        for start, end in self.gaps.get(stream, []):
            if last is not None and last[1] > start and last[1] >= end - 1:
                continue
            if ts >= end - 1:
                flagged = flagged or last is not None
            else:
                kept.append((start, end))
        self.gaps[stream] = kept
        return flagged

    def _candle(self, candle: Candle) -> list[AlertFired]:
        if candle.status is CandleStatus.OPEN:
            return []
        stream = (candle.instrument, "candles", candle.interval.label)
        seen = self.candle_at.get(stream)
        revision = False
        if seen is not None:
            if candle.open_time < seen[0]:
                return []
            if candle.open_time == seen[0]:
                if candle.revision <= seen[1]:
                    return []
                revision = True
        gap = candle.gap or (seen is not None and candle.open_time - seen[0] > candle.interval.ns)
        self.candle_at[stream] = (candle.open_time, candle.revision)
        ts = candle.close_time
        return [
            firing(alert.spec, arming, candle.close, ts, gap, None, candle.open_time)
            for alert, arming in self._price(stream, candle.close, ts, revision)
        ]

    def _price(
        self, stream: Stream, price: Decimal, ts: int, revision: bool
    ) -> list[tuple[_Alert, int]]:
        before = self.last.get(stream)
        previous = None if before is None else before[0]
        for (of, window_s), points in self.windows.items():
            if of != stream:
                continue
            if revision and points:
                points.pop()
            points.append((ts, price))
            while points[0][0] < ts - window_s * 1_000_000_000:
                points.popleft()
            prices = [p for _, p in points]
            self.bounds[window_s] = (min(prices), max(prices))
        self.last[stream] = (price, ts)
        found = []
        ended = False
        for alert in self.by_stream.get(stream, []):
            if not alert.live:
                continue
            spec = alert.spec
            if spec.expires_at is not None and ts >= spec.expires_at:
                alert.live = False
                ended = True
                continue
            side, crossed = self._condition(alert, previous, price)
            if alert.fired:
                alert.reset = alert.reset or not side
                if alert.reset and ts >= alert.cool_until:
                    alert.fired, alert.reset = False, False
                    alert.arming += 1
            if not alert.fired and crossed:
                found.append((alert, alert.arming))
                if spec.arming is Arming.ONCE:
                    alert.live = False
                    ended = True
                else:
                    alert.fired = True
                    alert.cool_until = ts + spec.cooldown_s * 1_000_000_000
        if ended:
            self._windows_in_use()
        return found

    def _condition(
        self, alert: _Alert, previous: Decimal | None, price: Decimal
    ) -> tuple[bool, bool]:
        """(on the alert's side, fires if armed)."""
        spec = alert.spec
        t = spec.threshold
        match spec.condition:
            case Condition.ABOVE:
                return price >= t, price >= t
            case Condition.BELOW:
                return price <= t, price <= t
            case Condition.CROSS_UP:
                return price >= t, previous is not None and previous < t <= price
            case Condition.CROSS_DOWN:
                return price <= t, previous is not None and previous > t >= price
        low, high = self.bounds[spec.window_s]
        if spec.condition is Condition.MOVE_UP:
            side = _EXACT.multiply(100, price - low) >= _EXACT.multiply(t, low)
        else:
            side = _EXACT.multiply(100, high - price) >= _EXACT.multiply(t, high)
        return side, side


# ---- the workload

START_PRICE = 100_000
PRICE_SCALE = 2
WINDOWS_S = (60, 300)
STEP_BP = 0.02


def instruments(count: int) -> list[str]:
    return [f"SYN:COIN{i}USD" for i in range(count)]


def synthetic_alerts(count: int, names: Sequence[str], seed: int = 7) -> list[AlertSpec]:
    """``count`` alerts over ``names``: all six conditions, thresholds within 5% of the start
    price (moves: 0.05% to 2% within 60 s or 300 s), half once and half rearm."""
    rng = random.Random(seed)
    conditions = list(Condition)
    specs = []
    for i in range(count):
        condition = conditions[i % len(conditions)]
        move = condition in (Condition.MOVE_UP, Condition.MOVE_DOWN)
        if move:
            threshold = Decimal(rng.randint(5, 200)) / 100
        else:
            threshold = Decimal(rng.randint(START_PRICE * 95, START_PRICE * 105)) / 100
        rearm = i % 2 == 1
        specs.append(
            AlertSpec(
                alert_id=f"a{i}",
                account=i % 1000,
                instrument=names[i % len(names)],
                condition=condition,
                threshold=threshold,
                window_s=rng.choice(WINDOWS_S) if move else 0,
                arming=Arming.REARM if rearm else Arming.ONCE,
                cooldown_s=60 if rearm else 0,
            )
        )
    return specs


def random_walk(
    ticks: int,
    names: Sequence[str],
    batch: int,
    rate: int,
    step_bp: float = STEP_BP,
    seed: int = 11,
) -> list[TickBatch]:
    """Random-walk trades in batches of one instrument, round robin; ``rate`` ticks per
    second of event time over all instruments. 40% of the trades keep the price, the others
    move it up or down by an exponentially distributed step of mean ``step_bp`` basis points
    (Binance BTCUSDT on 2026-01-01, ``../shared/data``: 40% unchanged, mean step 0.013 bp)."""
    rng = np.random.default_rng(seed)
    step_ns = 1_000_000_000 * len(names) // rate
    start = 1_767_225_600_000_000_000
    prices = dict.fromkeys(names, START_PRICE * 10**PRICE_SCALE)
    counts = dict.fromkeys(names, 0)
    batches = []
    made = 0
    while made < ticks:
        for name in names:
            n = min(batch, ticks - made)
            if n <= 0:
                break
            unit = prices[name] * step_bp / 10_000
            sizes = np.rint(rng.exponential(unit, n)).astype(np.int64)
            signs = rng.choice(np.array([-1, 0, 1], dtype=np.int64), n, p=[0.3, 0.4, 0.3])
            price = np.maximum(prices[name] + np.cumsum(signs * sizes), 1)
            prices[name] = int(price[-1])
            first = counts[name]
            index = np.arange(first, first + n, dtype=np.int64)
            ts = start + index * step_ns
            counts[name] += n
            made += n
            batches.append(
                TickBatch(
                    name,
                    PRICE_SCALE,
                    0,
                    index,
                    price,
                    np.ones(n, dtype=np.int64),
                    np.zeros(n, dtype=np.int8),
                    ts,
                    ts,
                    np.ones(n, dtype=np.int64),
                )
            )
    return batches


def run(
    evaluator: AlertEvaluator | NaiveEvaluator,
    specs: Sequence[AlertSpec],
    batches: Sequence[TickBatch],
) -> list[AlertFired]:
    """Every firing of ``batches`` after the alerts ``specs`` are set."""
    evaluator.apply_changes(specs)
    return [event for batch in batches for event in evaluator.step(batch)]


def timed(
    name: str,
    make: Callable[[], AlertEvaluator | NaiveEvaluator],
    specs: Sequence[AlertSpec],
    batches: Sequence[TickBatch],
    repeat: int,
) -> tuple[Figure, int]:
    """Ticks/s of stepping ``batches`` through a fresh evaluator holding ``specs``, over
    ``repeat`` runs (setting the alerts is not timed); and the number of firings."""
    seconds = []
    fired = 0
    for _ in range(repeat):
        evaluator = make()
        evaluator.apply_changes(specs)
        start = time.perf_counter()
        fired = sum(len(evaluator.step(batch)) for batch in batches)
        seconds.append(time.perf_counter() - start)
    return Figure(name, sum(len(batch) for batch in batches), seconds), fired


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--instruments", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--naive-ticks", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=256, help="ticks per batch")
    parser.add_argument("--rate", type=int, default=20_000, help="ticks/s of event time")
    parser.add_argument("--step-bp", type=float, default=STEP_BP, help="mean price step")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run (for CI)")
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--no-database", action="store_true", help="only the figures that need no database"
    )
    parser.add_argument("--storm-alerts", type=int, default=1_000)
    parser.add_argument("--storm-ticks", type=int, default=50_000)
    parser.add_argument("--ws-seconds", type=float, default=5.0, help="ticks offered for")
    parser.add_argument("--watched", type=int, default=200, help="the WebSocket's account's")
    parser.add_argument("--route-rate", type=float, default=1_000.0, help="requests/s")
    parser.add_argument("--route-seconds", type=float, default=5.0)
    parser.add_argument(
        "--warm-up-echo", action="store_true",
        help="leave the warm-up's echo (its once alerts ended, through the change feed) in the"
        " WebSocket run's measured window, as before 2026-12-05",
    )  # fmt: skip
    parser.add_argument(
        "--delivery", choices=("both", "storm", "realistic"), default="both",
        help="which WebSocket runs (default both)",
    )  # fmt: skip
    parser.add_argument(
        "--delivery-only", action="store_true",
        help="only tick to alert on a WebSocket (no evaluator, storm or route figures)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        args.alerts, args.ticks, args.naive_ticks, args.repeat = 2_000, 20_000, 500, 1
        args.storm_alerts, args.storm_ticks, args.watched = 200, 5_000, 50
        args.rate, args.ws_seconds, args.route_rate, args.route_seconds = 2_000, 1.0, 100.0, 0.5
    names = instruments(args.instruments)
    specs = synthetic_alerts(args.alerts, names)
    if args.delivery_only:
        with scratch_database(args.database_url) as url:
            _delivery(url, args, names, specs)
        return
    batches = random_walk(args.ticks, names, args.batch, args.rate, args.step_bp)
    short = random_walk(
        args.naive_ticks, names, min(args.batch, args.naive_ticks), args.rate, args.step_bp
    )
    indexed, fired = timed("indexed (main_api.alerts)", AlertEvaluator, specs, batches, args.repeat)
    baseline, _ = timed("naive (every alert, every tick)", NaiveEvaluator, specs, short, 1)
    title = (
        f"alert evaluation: {args.alerts:,} alerts on {args.instruments} instruments,"
        f" {indexed.items:,} ticks in batches of {args.batch}, mean step {args.step_bp} bp"
        f" ({fired:,} firings; naive: the first {baseline.items:,} ticks)"
    )
    print_table(title, [indexed, baseline], baseline, "ticks/s")
    one = [spec for spec in specs if spec.instrument == names[0]]
    service.print_snapshots(
        [service.snapshot_cost(one, args.repeat), service.snapshot_cost(specs, args.repeat)]
    )
    if args.no_database:
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(args.database_url))
        except Exception as exc:  # no server to be had: the figures above stand alone
            print(f"\nskipped (no PostgreSQL: {type(exc).__name__}: {exc}): the firing storm,"
                  " tick to alert on a WebSocket and the main API's routes")  # fmt: skip
            return
        _with_database(url, args, names, specs)


def _with_database(
    url: str, args: argparse.Namespace, names: list[str], specs: list[AlertSpec]
) -> None:
    storm_specs = service.rearming(synthetic_alerts(args.storm_alerts, names))
    storm_batches = random_walk(
        args.storm_ticks, names, args.batch, args.rate, service.STORM_STEP_BP
    )
    service.print_storm(asyncio.run(service.storm(url, storm_specs, storm_batches)))
    _delivery(url, args, names, specs)
    accounts = routes.ACCOUNTS_SMOKE if args.smoke else routes.ACCOUNTS
    figures = routes.run(url, rate=args.route_rate, seconds=args.route_seconds, accounts=accounts)
    routes.report(figures, accounts, routes.ALERTS_PER_ACCOUNT)


def _delivery(url: str, args: argparse.Namespace, names: list[str], specs: list[AlertSpec]) -> None:
    ticks = round(args.rate * args.ws_seconds)
    background = specs[: args.alerts - args.watched]
    watched = delivery.watched_alerts(args.watched, names, START_PRICE)
    walk = random_walk(ticks, names, DELIVERY_BATCH, args.rate, DELIVERY_STEP_BP)
    if args.delivery != "realistic":
        print("\nstorm: 1 bp a trade, the watched alerts within 0.3% of the start price")
        delivery.report(delivery.run(url, watched, background, walk, args.rate, args.warm_up_echo))
    if args.delivery == "storm":
        return
    calm = delivery.watched_alerts(args.watched, names, START_PRICE, CALM_BAND_BP)
    steps = random_walk(ticks, names, DELIVERY_BATCH, args.rate, STEP_BP)
    print(
        f"\nrealistic: {STEP_BP} bp a trade (Binance-like), the watched alerts within"
        f" {CALM_BAND_BP / 100:.2f}% of the start price"
    )
    delivery.report(delivery.run(url, calm, background, steps, args.rate, args.warm_up_echo))


DELIVERY_BATCH = 20
"""Ticks per published batch in the WebSocket run (at 20,000 ticks/s: a batch every ms)."""
DELIVERY_STEP_BP = 1.0
"""Mean price step of the WebSocket run: its watched alerts (within 0.3%) are crossed often.
At 20,000 ticks/s over ten instruments the price moves about 0.5% a second, so that the
population (every threshold within 5%, moves of 0.05% to 2%) fires 29,000 times in 5 s at
100,000 alerts: a storm, kept as the hard case."""
CALM_BAND_BP = 2
"""The watched alerts' band in the realistic run: with Binance-like steps (``STEP_BP``) a
price moves about 2 bp in the 5 s, so the watched alerts sit within that to be crossed."""


if __name__ == "__main__":
    main()
