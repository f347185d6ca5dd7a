"""``mdp edge``: the platform's one public entry point, HAProxy in front of every service.

It routes ``/`` (the chart page) and ``/v1``, ``/udf`` (the history API) to ``--api``
instances, ``/ws`` to ``--gateway`` instances (WebSockets passed through), ``/auth`` to
``--auth``; ``/trading`` and ``/api`` answer 503 until those services exist. Bearer tokens are
checked here against the public keys in ``--keys`` (one ``<kid>.pem`` per key; ``SIGHUP``
reads the folder again and reloads without dropping a connection). Request rates are limited
per principal (the token's plan) and per address. HAProxy's Prometheus metrics are at
``http://ADMIN-HOST:ADMIN-PORT/metrics``. The machine's ``haproxy`` runs as a child of this
command, with its configuration in the state folder. See ``docs/edge.md``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge.config import EdgeSettings, RateLimits, TokenPolicy, Upstream, VerifyKey
from edge.haproxy import EdgeError, Haproxy
from machine import state_dir

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
DEFAULT_PORT = 8080
DEFAULT_ADMIN_PORT = 8404
_DEFAULT_LIMITS = RateLimits()
MAX_KEYS = 16
"""Keys read from ``--keys``: the current one and those still valid for unexpired tokens."""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "edge",
        help="run the edge (HAProxy) in front of the services",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="public address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"({DEFAULT_PORT})")
    parser.add_argument("--admin-host", default="127.0.0.1", help="metrics address (127.0.0.1)")
    parser.add_argument(
        "--admin-port", type=int, default=DEFAULT_ADMIN_PORT, help=f"({DEFAULT_ADMIN_PORT})"
    )
    parser.add_argument(
        "--api", action="append", required=True, metavar="HOST:PORT",
        help="a history API and chart instance (mdp api); repeat for several",
    )  # fmt: skip
    parser.add_argument(
        "--gateway", action="append", required=True, metavar="HOST:PORT",
        help="a WebSocket gateway instance (mdp gateway); repeat for several",
    )  # fmt: skip
    parser.add_argument(
        "--auth", action="append", metavar="HOST:PORT", help="an auth service instance"
    )
    parser.add_argument(
        "--keys", type=Path, metavar="DIR", help="public keys tokens are signed with (<kid>.pem)"
    )
    parser.add_argument("--issuer", default="ganntec-mdp", help="a token's iss (ganntec-mdp)")
    parser.add_argument("--audience", default="ganntec-mdp", help="a token's aud (ganntec-mdp)")
    parser.add_argument(
        "--no-anonymous", action="store_true", help="refuse requests without a token"
    )
    parser.add_argument(
        "--anonymous-rate", type=int, default=_DEFAULT_LIMITS.anonymous_per_address,
        metavar="N", help="requests/s per address without a token",
    )  # fmt: skip
    parser.add_argument(
        "--login-rate", type=int, default=_DEFAULT_LIMITS.logins_per_address,
        metavar="N", help="login attempts/s per address",
    )  # fmt: skip
    parser.set_defaults(run=run)


def settings_from(args: argparse.Namespace, folder: Path) -> EdgeSettings:
    """The edge's settings from the command line (raises ValueError when bad)."""
    api = Upstream("api", tuple(args.api))
    auth = Upstream("auth", tuple(args.auth), health_path="/auth/healthz") if args.auth else None
    return EdgeSettings(
        host=args.host,
        port=args.port,
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        chart=api,
        history=api,
        gateway=Upstream("gateway", tuple(args.gateway), websocket=True),
        auth=auth,
        tokens=None if args.keys is None else TokenPolicy(
            args.issuer, args.audience, keys_in(args.keys)
        ),
        anonymous=not args.no_anonymous,
        limits=RateLimits(
            anonymous_per_address=args.anonymous_rate, logins_per_address=args.login_rate
        ),
        error_dir=folder,
    )  # fmt: skip


def keys_in(folder: Path) -> tuple[VerifyKey, ...]:
    """The ``<kid>.pem`` files of ``folder``, at most :data:`MAX_KEYS`."""
    if not folder.is_dir():
        raise ValueError(f"--keys {folder}: no such folder")
    files = sorted(folder.glob("*.pem"))
    if len(files) > MAX_KEYS:
        raise ValueError(f"--keys {folder}: {len(files)} keys, at most {MAX_KEYS}")
    return tuple(VerifyKey(path.stem, path.absolute()) for path in files)


def run(args: argparse.Namespace) -> int:
    folder = state_dir("edge")
    try:
        settings = settings_from(args, folder)
    except ValueError as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    reread = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: reread.set())
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with Haproxy(folder) as edge:
            edge.start(settings)
            print(f"mdp edge: listening on {edge.url()}", file=sys.stderr, flush=True)
            print(f"metrics: {edge.metrics_url()}", file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                if edge.pid is None:
                    print("mdp edge: error: HAProxy stopped", file=sys.stderr)
                    return EXIT_FAILED
                if reread.is_set():
                    reread.clear()
                    _reload(edge, args, folder)
    except (EdgeError, ValueError, OSError) as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print("mdp edge: stopped", file=sys.stderr, flush=True)
    return 0


def _reload(edge: Haproxy, args: argparse.Namespace, folder: Path) -> None:
    """Read the keys again and reload; a failure keeps the running configuration."""
    try:
        edge.reload(settings_from(args, folder))
    except (EdgeError, ValueError, OSError) as exc:
        print(f"mdp edge: error: not reloaded, still serving as before: {exc}", file=sys.stderr)
        return
    print("mdp edge: reloaded", file=sys.stderr, flush=True)
