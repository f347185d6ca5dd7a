"""Database pool use (``mdp_db_pool_connections``), read from a psycopg_pool pool's own
counters when Prometheus scrapes: nothing is counted on the hot path."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from telemetry.live import Reading
from telemetry.metrics import DB_POOL_CONNECTIONS


class Pool(Protocol):
    """What is read of a pool (``psycopg_pool``'s sync and async pools both have it)."""

    name: str

    def get_stats(self) -> dict[str, int]: ...


def pool_reading(pool: Pool) -> Reading:
    """The pool's connections in use and idle, and the requests waiting for one."""
    stats = pool.get_stats()
    size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
    return [
        ((pool.name, "used"), float(size - idle)),
        ((pool.name, "idle"), float(idle)),
        ((pool.name, "waiting"), float(stats.get("requests_waiting", 0))),
    ]


def watch_pool(pool: Pool) -> Callable[[], None]:
    """Report ``pool`` under its name until the returned function is called."""
    return DB_POOL_CONNECTIONS.watch(lambda: pool_reading(pool))


@contextlib.contextmanager
def pool_watched(pool: Pool) -> Iterator[None]:
    """Report ``pool`` under its name for the ``with`` block (the store that owns it is open)."""
    unwatch = watch_pool(pool)
    try:
        yield
    finally:
        unwatch()
