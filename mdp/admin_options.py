"""The admin port of the cluster-mode services: ``--admin-port`` serves the process's
Prometheus metrics on ``/metrics`` (:mod:`telemetry.admin`) while the command runs.

Off unless given: several instances of a service often share a host (a gateway per core),
where any fixed default would collide; a deployment names each instance's port (0: a free
one, printed). The address is 127.0.0.1 unless ``--admin-host`` names the pod network's.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from telemetry.admin import DEFAULT_HOST, AdminServer, admin_server


def add_admin_options(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(serves_admin=True)  # `mdp edge`'s own --admin-port is HAProxy's
    group = parser.add_argument_group("admin")
    group.add_argument(
        "--admin-port", type=int, metavar="PORT",
        help="serve this process's Prometheus metrics on /metrics at this port (default: not"
        " served; 0: a free port, printed)",
    )  # fmt: skip
    group.add_argument(
        "--admin-host", default=DEFAULT_HOST, metavar="ADDRESS",
        help=f"the admin port's address (default {DEFAULT_HOST}; never a public one)",
    )  # fmt: skip


@contextlib.contextmanager
def serving_admin(args: argparse.Namespace) -> Iterator[AdminServer | None]:
    """The admin server the parsed options ask for, for the ``with`` block (None when they
    ask for none); its URL printed on stderr as ``metrics: URL``."""
    port = getattr(args, "admin_port", None) if getattr(args, "serves_admin", False) else None
    if port is None:
        yield None
        return
    if not 0 <= port <= 65535:
        raise ValueError(f"--admin-port must be between 0 and 65535, got {port}")
    with admin_server(args.admin_host, port) as server:
        print(f"metrics: {server.url}", file=sys.stderr, flush=True)
        yield server
