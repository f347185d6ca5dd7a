"""Helpers of the cluster-mode end-to-end tests: ``mdp`` services in processes of their own,
and what they left in Kafka and the database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, Any, Self

import psycopg

from core import codecs
from core.candles import Candle
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import parse_intervals
from ingest.files.reader import read_ticks
from machine import stop_process
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings

KRAKEN = Path("kraken-xbtusdt-2025-11-10")
INSTRUMENT = "KRAKEN:XBTUSDT"
LAST_MINUTE = 1762807740 * 1_000_000_000  # 20:49 UTC, Kraken's last official row
WAIT = 90.0

Row = tuple[Decimal, ...]


class Service:
    """One ``mdp`` sub-command running in its own process; its output goes to a log file."""

    def __init__(self, name: str, args: list[str], folder: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = folder / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mdp.cli", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no chance to save or flush anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        code = stop_process(self.process, timeout)
        self._log.close()
        return code

    def wait_for(self, text: str, count: int = 1, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(text) < count:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {text!r} in time:\n{self.log[-3000:]}")
            time.sleep(0.1)


class Cluster:
    """The services of one test, sharing a group name suffix, stopped at the end."""

    def __init__(self, bootstrap: str, database_url: str, folder: Path) -> None:
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.folder = folder
        self.suffix = uuid.uuid4().hex[:8]
        self.env = os.environ | {
            "KAFKA_BOOTSTRAP": bootstrap,
            "DATABASE_URL": database_url,
            "XDG_STATE_HOME": str(folder / "state"),  # the workers' Faust folders
        }
        self.services: list[Service] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for service in self.services:
            service.stop()
        if exc is not None:
            for service in self.services:
                print(f"----- {service.name} -----\n{service.log[-6000:]}")

    def start(self, name: str, *args: str) -> Service:
        service = Service(f"{name}-{len(self.services)}", list(args), self.folder, self.env)
        self.services.append(service)
        return service

    def worker(self, *extra: str) -> Service:
        return self.start(
            "worker", "worker", "--group", f"engine-{self.suffix}", "--interval", "1m",
            "--clock-offset", "60", "--checkpoint-every", "0.5", *extra,
        )  # fmt: skip

    def writer(self) -> Service:
        return self.start("writer", "writer", "--group", f"writer-{self.suffix}", "--batch", "50")

    def ingest(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mdp.cli", "ingest", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )


def engine_config() -> EngineConfig:
    return EngineConfig(
        intervals=parse_intervals(["1m"]),
        empty_by_venue=MappingProxyType({"KRAKEN": EmptyPolicy.FILL}),
    )


def official(shared_data: Path) -> dict[int, Row]:
    rows = json.loads((shared_data / KRAKEN / "ohlc-1m.json").read_text())["result"]["XBTUSDT"]
    return {
        t * 1_000_000_000: (Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v), Decimal(n))
        for t, o, h, lo, c, _, v, n in rows
    }


def content(candle: Candle) -> tuple[Any, ...]:
    """Everything a candle says, but its revision number and status."""
    return (
        candle.open_raw, candle.high_raw, candle.low_raw, candle.close_raw, candle.volume_raw,
        candle.quote_volume_raw, candle.taker_buy_volume_raw, candle.trades,
        candle.first_trade_id, candle.last_trade_id, candle.price_scale, candle.size_scale,
    )  # fmt: skip


def clean_run(shared_data: Path) -> dict[int, tuple[Any, ...]]:
    """The candles of one engine fed the whole file, closed by a clock a minute ahead."""
    engine = CandleEngine(engine_config())
    (batch,) = list(read_ticks(shared_data / KRAKEN / "trades.json"))
    final: dict[int, Candle] = {}
    output = engine.feed(batch)
    output.extend(engine.advance(int(batch.ts_recv.max()) + 60 * 1_000_000_000))
    for candle in output.candles:
        final[candle.open_time] = candle
    return {t: content(c) for t, c in final.items() if t <= LAST_MINUTE}


def stored_minutes(url: str) -> dict[int, tuple[Row, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT (extract(epoch FROM open_time))::bigint * 1000000000, open, high, low,"
            " close, volume, trades, status FROM candles"
            " WHERE instrument = %s AND interval = '1m'",
            (INSTRUMENT,),
        ).fetchall()
    return {
        int(t): ((Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v), Decimal(n)), s)
        for t, o, h, lo, c, v, n, s in rows
    }


def tick_rows(url: str) -> tuple[int, int]:
    """All tick rows, and the distinct (instrument, trade id) among them."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (instrument, trade_id)) FROM ticks"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def kraken_complete(url: str) -> bool:
    stored = stored_minutes(url)
    return LAST_MINUTE in stored and stored[LAST_MINUTE][1] != "open"


def read_topic(bootstrap: str, topic: str, idle: float = 2.0) -> list[bytes]:
    """Every value of ``topic``, read by a new group until ``idle`` seconds bring nothing."""

    async def read() -> list[bytes]:
        async with (
            KafkaBus(KafkaSettings(bootstrap), create_topics=False) as bus,
            bus.subscribe(f"reader-{uuid.uuid4().hex}", [topic]) as sub,
        ):
            values: list[bytes] = []
            while records := await sub.poll(2000, idle):
                values.extend(r.value for r in sorted(records, key=lambda r: r.offset))
            return values

    return asyncio.run(read())


def final_candles(bootstrap: str, idle: float = 2.0) -> dict[tuple[str, str, int], Candle]:
    """The last revision of every candle on ``md.candles``."""
    final: dict[tuple[str, str, int], Candle] = {}
    for value in read_topic(bootstrap, "md.candles", idle):
        candle = codecs.decode_candle(value)
        key = (candle.instrument, candle.interval.label, candle.open_time)
        if key not in final or candle.revision >= final[key].revision:
            final[key] = candle
    return final
