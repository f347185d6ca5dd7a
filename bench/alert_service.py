"""The alert evaluator as a service, on a real PostgreSQL: what :mod:`bench.alerts` leaves out.

- **Firing storm**: ``alerts`` re-arming alerts (no cool-down) on a fast random walk, so that
  most rounds fire many of them; the evaluator's processor (:class:`main_api.alerts.runner.
  EvaluatorService`, in-process bus) from its first poll until the stored states cover every
  tick: ticks/s and firings recorded/s (each firing with its notification, exactly once).
- **Snapshot cost**: one partition's evaluator with ``alerts`` alerts (its whole state: what
  a claim of a partition new to the group stores, as rows; until 2026-12-04 every round
  stored it for each partition it moved, now rounds store their deltas): the time of
  :meth:`~main_api.alerts.AlertEvaluator.snapshot` and its size. No database needed.

The database parts run in a schema of their own on ``url`` (dropped afterwards).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import psycopg
from psycopg import sql

from bench.common import scratch_schema
from core.alerts import AlertSpec, Arming
from core.ticks import TickBatch
from core.topic_codecs import TICKS_CODEC
from core.topics import TICKS
from main_api.alerts import AlertEvaluator
from main_api.alerts.runner import EvaluatorService, EvaluatorSettings
from main_api.settings import PlanLimits
from main_api.store import MainStore
from streams.memory import MemoryBus

STORM_STEP_BP = 5.0
"""Mean price step of the storm's walk: the thresholds (within 5% of the start) are crossed
back and forth many times."""
_LIMITS = PlanLimits(watchlists=5, instruments=50, alerts=2_000)


@dataclass(frozen=True, slots=True)
class Storm:
    alerts: int
    ticks: int
    seconds: float
    recorded: int
    rounds: int

    @property
    def ticks_per_s(self) -> float:
        return self.ticks / self.seconds

    @property
    def firings_per_s(self) -> float:
        return self.recorded / self.seconds


def rearming(specs: Sequence[AlertSpec]) -> list[AlertSpec]:
    """``specs`` re-arming at once (no cool-down): a storm's alerts."""
    return [msgspec.structs.replace(s, arming=Arming.REARM, cooldown_s=0) for s in specs]


async def covered(url: str, schema: str) -> int:
    """The records of ``md.ticks`` the stored states in ``schema`` cover."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT coalesce(sum(next_offset), 0) FROM {}.main_api_evaluator_states"
                    " WHERE topic = %s").format(sql.Identifier(schema)),
            (TICKS,),
        )  # fmt: skip
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def storm(url: str, specs: Sequence[AlertSpec], batches: Sequence[TickBatch]) -> Storm:
    """Run the evaluator service over ``batches`` (tick batches, published before it starts)
    with the alerts ``specs``; timed from its start to the last tick's state stored."""
    total = 0
    with scratch_schema(url, "bench_storm") as schema:
        async with MainStore.open(url, schema) as store, MemoryBus(partitions=4) as bus:
            for spec in specs:
                await store.create_alert(spec, _LIMITS, "pro")
            topic = bus.topic(TICKS)
            for batch in batches:
                await topic.publish(*TICKS_CODEC.record(batch))
                total += 1
            stop = asyncio.Event()
            service = EvaluatorService(store, bus, url, EvaluatorSettings(poll_timeout=0.05))
            start = time.perf_counter()
            running = asyncio.create_task(service.run(stop))
            try:
                while await covered(url, schema) < total:
                    if running.done():
                        running.result()
                        raise RuntimeError("the evaluator stopped")
                    await asyncio.sleep(0.02)
                seconds = time.perf_counter() - start
            finally:
                stop.set()
                await running
            ticks = sum(len(batch) for batch in batches)
            return Storm(len(specs), ticks, seconds, service.stats.recorded, service.stats.rounds)


def print_storm(figure: Storm) -> None:
    print(
        f"\nfiring storm: {figure.alerts:,} re-arming alerts, {figure.ticks:,} ticks (mean step"
        f" {STORM_STEP_BP} bp), evaluator service on PostgreSQL"
    )
    print(
        f"  {figure.seconds:.2f} s: {figure.ticks_per_s:,.0f} ticks/s, {figure.recorded:,}"
        f" firings recorded ({figure.firings_per_s:,.0f}/s) in {figure.rounds:,} rounds"
    )


@dataclass(frozen=True, slots=True)
class SnapshotCost:
    alerts: int
    seconds: list[float]
    size: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def snapshot_cost(specs: Sequence[AlertSpec], repeat: int) -> SnapshotCost:
    """The time of one evaluator's snapshot holding ``specs``, ``repeat`` times."""
    evaluator = AlertEvaluator()
    evaluator.apply_changes(specs)
    seconds = []
    data = b""
    for _ in range(repeat):
        start = time.perf_counter()
        data = evaluator.snapshot()
        seconds.append(time.perf_counter() - start)
    return SnapshotCost(len(specs), seconds, len(data))


def print_snapshots(figures: Sequence[SnapshotCost]) -> None:
    print(
        "\nwhole state of one partition's evaluator (stored once by a claim of a new partition;"
        " rounds store their deltas)"
    )
    for figure in figures:
        print(
            f"  {figure.alerts:>9,} alerts: {figure.median_ms:8.1f} ms (median of"
            f" {len(figure.seconds)}), {figure.size / 1e6:6.1f} MB"
        )
