"""The admin port of the cluster-mode services: ``--admin-port`` serves the process's
Prometheus metrics on ``/metrics``, ``/healthz`` and ``/readyz`` (:mod:`telemetry.admin`)
while the command runs.

The services that read the bus add :func:`add_readiness_options`: ``--ready-max-lag`` and
``--ready-stale`` set when their ``lag`` and ``bus`` checks fail (:mod:`streams.consumers`).

Off unless given: several instances of a service often share a host (a gateway per core),
where any fixed default would collide; a deployment names each instance's port (0: a free
one, printed). The address is 127.0.0.1 unless ``--admin-host`` names the pod network's.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Mapping

from streams.consumers import DEFAULT_MAX_LAG, DEFAULT_STALE, WATCHES
from telemetry.admin import DEFAULT_HOST, AdminServer, admin_server
from telemetry.readiness import READINESS, Check


def add_admin_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("admin")
    group.add_argument(
        "--admin-port", type=int, metavar="PORT",
        help="serve this process's Prometheus metrics on /metrics, and /healthz and /readyz,"
        " at this port (default: not served; 0: a free port, printed)",
    )  # fmt: skip
    group.add_argument(
        "--admin-host", default=DEFAULT_HOST, metavar="ADDRESS",
        help=f"the admin port's address (default {DEFAULT_HOST}; never a public one)",
    )  # fmt: skip


@contextlib.contextmanager
def serving_admin(args: argparse.Namespace) -> Iterator[AdminServer | None]:
    """The admin server the parsed options ask for, for the ``with`` block (None when they
    ask for none); its URL printed on stderr as ``metrics: URL``."""
    port = getattr(args, "admin_port", None)
    if port is None:
        yield None
        return
    if not 0 <= port <= 65535:
        raise ValueError(f"--admin-port must be between 0 and 65535, got {port}")
    with admin_server(args.admin_host, port) as server:
        print(f"metrics: {server.url}", file=sys.stderr, flush=True)
        yield server


def add_readiness_options(parser: argparse.ArgumentParser, *, lag: bool = True) -> None:
    """``--ready-stale``, and ``--ready-max-lag`` for a process that consumes (``lag``)."""
    group = parser.add_argument_group("readiness (/readyz on the admin port)")
    if lag:
        group.add_argument(
            "--ready-max-lag", type=int, default=DEFAULT_MAX_LAG, metavar="N",
            help="not ready while a partition is more than N records behind its end"
            f" (default {DEFAULT_MAX_LAG:,})",
        )  # fmt: skip
    group.add_argument(
        "--ready-stale", type=float, default=DEFAULT_STALE, metavar="SECONDS",
        help="not ready once the bus has not answered (or the loop not come round, or no"
        f" partition been assigned) for this long (default {DEFAULT_STALE:g})",
    )  # fmt: skip


def check_readiness_options(args: argparse.Namespace) -> None:
    """Refuse thresholds that cannot work (``ValueError``)."""
    if getattr(args, "ready_max_lag", 0) < 0:
        raise ValueError("--ready-max-lag must not be negative")
    if args.ready_stale <= 0:
        raise ValueError("--ready-stale must be positive")


def consumer_checks(args: argparse.Namespace) -> dict[str, Check]:
    """The ``bus`` and ``lag`` checks of a process whose processors read the bus."""
    return {
        "bus": WATCHES.bus_check(time.monotonic, args.ready_stale),
        "lag": WATCHES.lag_check(args.ready_max_lag),
    }


@contextlib.contextmanager
def ready_when(checks: Mapping[str, Check]) -> Iterator[None]:
    """``/readyz`` answers with ``checks`` for the ``with`` block."""
    removals = [READINESS.add(name, check) for name, check in checks.items()]
    try:
        yield
    finally:
        for remove in removals:
            remove()
