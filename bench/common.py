"""What the benchmarks share: repeated runs, medians, a printed table, a scratch database."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from psycopg import sql
from psycopg.conninfo import make_conninfo

from machine import stop_process
from storage import PostgresServer, migrate

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


class Discard(SpanExporter):
    """A span exporter that sends nowhere: tracing's whole cost in a benchmark but the
    network's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured contender: items per second over several runs."""

    name: str
    items: int
    seconds: list[float]

    @property
    def median_rate(self) -> float:
        return self.items / statistics.median(self.seconds)

    @property
    def best_rate(self) -> float:
        return self.items / min(self.seconds)


def measure(name: str, items: int, action: Callable[[], object], repeat: int) -> Figure:
    """Run ``action`` ``repeat`` times (after one warm-up) and keep each wall time."""
    action()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return Figure(name, items, seconds)


def print_table(title: str, figures: list[Figure], baseline: Figure, unit: str) -> None:
    """Medians and best runs, each with its ratio to ``baseline``'s median."""
    print(f"\n{title}")
    print(f"  {'contender':<34} {'median ' + unit:>18} {'best ' + unit:>18} {'x baseline':>11}")
    for figure in figures:
        ratio = figure.median_rate / baseline.median_rate
        print(
            f"  {figure.name:<34} {figure.median_rate:>18,.0f} {figure.best_rate:>18,.0f}"
            f" {ratio:>10.1f}x"
        )


@contextlib.contextmanager
def scratch_database(url: str | None, durable: bool = False) -> Iterator[str]:
    """A new migrated database on ``url``'s server (or a private server), dropped afterwards."""
    with contextlib.ExitStack() as stack:
        if url is None:
            folder = Path(tempfile.mkdtemp(prefix="mdp-bench-pg-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            server = PostgresServer(folder, durable=durable)
            url = server.start()
            stack.callback(server.stop)
            settings = "fsync on" if durable else "fsync and synchronous_commit off"
            print(f"private PostgreSQL server in {folder} ({settings})")
        name = f"mdp_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            scratch = make_conninfo(url, dbname=name)
            migrate(scratch)
            yield scratch
        finally:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@contextlib.contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """A schema name of its own on ``url`` (``prefix`` and a random tail), the schema dropped
    afterwards (whoever made it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextlib.contextmanager
def child_server(module: str, port: int, ready_path: str, env: dict[str, str]) -> Iterator[str]:
    """``python -m module --serve port`` in a child process (``env`` added to this one's: the
    database address goes through the environment, not the command line that `ps` shows),
    once ``ready_path`` answers 200; its base URL. Terminated after the block."""
    command = [sys.executable, "-m", module, "--serve", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=os.environ | env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the bench server exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the bench server did not answer within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(process, 10)
