"""``mdp edge``: the platform's one public entry point, HAProxy in front of every service.

It routes ``/`` (the chart page) and ``/v1``, ``/udf`` (the history API) to ``--api``
instances, ``/ws`` to ``--gateway`` instances (WebSockets passed through), ``/auth`` to
``--auth``, ``/trading`` to ``--trading`` and ``/api`` to ``--main-api`` (each 503 without
one). Bearer tokens are
checked here against the public keys in ``--keys`` (one ``<kid>.pem`` per key; ``SIGHUP``
reads the folder again and reloads without dropping a connection). Request rates are limited
per principal (the token's plan) and per address. With ``--bus kafka`` revocations on
``auth.events`` reach HAProxy at once, through its runtime API, without a reload; ``/trading``
needs a token that may trade. HAProxy's Prometheus metrics are at
``http://METRICS-HOST:METRICS-PORT/metrics`` (``mdp up`` calls it ``--edge-metrics-port``;
the other commands' ``--admin-port`` is their own metrics server, which the edge has not).
The machine's ``haproxy`` runs as a child of this command, with its configuration in the
state folder. See ``docs/edge.md``.

A trading service partitioned by account (``mdp trading serve --partition I/N``) is given one
``--trading I/N=HOST:PORT`` per partition; each ``/trading`` request goes to the partition of
its token's ``acct``.

Without a mesh, ``--backend-tls-ca`` and ``--backend-tls-cert`` (``mdp certs``) put every
service behind the edge on mutual TLS: their certificates checked against the CA, the edge's
presented (``docs/security.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from auth.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from certs.tls import TlsFiles
from core.partitions import Partition, PartitionError
from edge.config import (
    CONNECTIONS_PER_ADDRESS,
    BackendTls,
    EdgeSettings,
    RateLimits,
    TokenPolicy,
    Upstream,
    trading_partitions,
)
from edge.haproxy import EdgeError, Haproxy
from edge.keeper import JWKS_PATH, EdgeKeeper, KeySource
from machine import state_dir
from mdp.common_options import EXIT_BAD_INPUT, EXIT_FAILED
from mdp.tls_options import record_expiry

DEFAULT_PORT = 8080
DEFAULT_METRICS_PORT = 8404
_DEFAULT_LIMITS = RateLimits()
_DEFAULT_CAP = CONNECTIONS_PER_ADDRESS


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "edge",
        help="run the edge (HAProxy) in front of the services",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="public address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"({DEFAULT_PORT})")
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="HAProxy's metrics address (127.0.0.1)"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=DEFAULT_METRICS_PORT,
        help=f"HAProxy's Prometheus metrics port ({DEFAULT_METRICS_PORT})",
    )  # fmt: skip
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
        "--trading", action="append", metavar="[I/N=]HOST:PORT",
        help="a trading service instance (mdp trading serve); I/N= names its partition, one"
        " --trading per partition (mdp trading serve --partition I/N); without one /trading is 503",
    )  # fmt: skip
    parser.add_argument(
        "--main-api", action="append", metavar="HOST:PORT",
        help="a main API instance (mdp main-api); without one /api is 503",
    )  # fmt: skip
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--keys", type=Path, metavar="DIR", help="public keys tokens are signed with (<kid>.pem)"
    )
    keys.add_argument(
        "--jwks-url", metavar="URL",
        help="the auth service's key set, read every --jwks-every seconds (default with --auth:"
        f" http://AUTH{JWKS_PATH})",
    )  # fmt: skip
    parser.add_argument("--jwks-every", type=float, default=30.0, metavar="SECONDS", help="(30)")
    parser.add_argument(
        "--issuer", default=DEFAULT_ISSUER, help=f"a token's iss ({DEFAULT_ISSUER})"
    )
    parser.add_argument(
        "--audience", default=DEFAULT_AUDIENCE, help=f"a token's aud ({DEFAULT_AUDIENCE})"
    )
    parser.add_argument(
        "--no-anonymous", action="store_true", help="refuse requests without a token"
    )
    parser.add_argument(
        "--anonymous-rate", type=int, default=_DEFAULT_LIMITS.anonymous_per_address,
        metavar="N", help="requests per minute per address without a token",
    )  # fmt: skip
    parser.add_argument(
        "--login-rate", type=int, default=_DEFAULT_LIMITS.logins_per_address,
        metavar="N", help="login attempts per minute per address",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections-per-address", type=int, default=_DEFAULT_CAP, metavar="N",
        help="WebSocket upgrades refused (429) from an address holding N connections"
        f" ({_DEFAULT_CAP}; 0: no cap)",
    )  # fmt: skip
    parser.add_argument(
        "--follow-dns", action="store_true",
        help="look the services' host names up again as their addresses change (compose,"
        " Kubernetes); one that does not resolve yet is a server down, not a failed start",
    )  # fmt: skip
    parser.add_argument(
        "--backend-tls-ca", type=Path, metavar="FILE",
        help="speak TLS to every service behind the edge, whose certificates must come from"
        " this CA (PEM; mdp certs); with --backend-tls-cert",
    )  # fmt: skip
    parser.add_argument(
        "--backend-tls-cert", type=Path, metavar="FILE",
        help="the edge's certificate and key in one PEM file (mdp certs issue edge: edge.pem),"
        " presented to the services, which require one; the key set is fetched with it too",
    )  # fmt: skip
    parser.add_argument(
        "--bus", choices=["none", "kafka"], default="none",
        help="where revocations (auth.events) come from: kafka ($KAFKA_BOOTSTRAP), or none"
        " (a revoked token then passes the edge until it expires; the services still refuse it)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def settings_from(
    args: argparse.Namespace, folder: Path, tokens: TokenPolicy | None
) -> EdgeSettings:
    """The edge's settings from the command line and the token policy (raises ValueError when
    bad); ``tokens`` None: no token is accepted."""
    tls = backend_tls(args)
    api = Upstream("api", tuple(args.api), tls=tls)
    auth = Upstream("auth", tuple(args.auth), tls=tls) if args.auth else None
    trading = trading_upstreams(args.trading, tls) if args.trading else None
    main_api = Upstream("main-api", tuple(args.main_api), tls=tls) if args.main_api else None
    return EdgeSettings(
        host=args.host,
        port=args.port,
        admin_host=args.metrics_host,
        admin_port=args.metrics_port,
        chart=api,
        history=api,
        gateway=Upstream("gateway", tuple(args.gateway), websocket=True, tls=tls),
        auth=auth,
        trading=trading,
        main_api=main_api,
        tokens=tokens,
        anonymous=not args.no_anonymous,
        limits=RateLimits(
            anonymous_per_address=args.anonymous_rate, logins_per_address=args.login_rate
        ),
        max_connections_per_address=args.max_connections_per_address,
        follow_dns=args.follow_dns,
        error_dir=folder,
    )


def backend_tls(args: argparse.Namespace) -> BackendTls | None:
    """``--backend-tls-ca`` and ``--backend-tls-cert`` (ValueError unless both or neither, and
    files that exist)."""
    ca, cert = args.backend_tls_ca, args.backend_tls_cert
    if ca is None and cert is None:
        return None
    if ca is None or cert is None:
        raise ValueError("--backend-tls-ca and --backend-tls-cert go together")
    for option, path in (("--backend-tls-ca", ca), ("--backend-tls-cert", cert)):
        if not path.is_file():
            raise ValueError(f"{option} {path}: no such file")
    record_expiry(ca, cert)
    return BackendTls(ca.resolve(), cert.resolve())  # HAProxy runs in the edge's folder


def key_set_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """What the edge fetches the auth service's key set with: its certificate presented, the
    auth service's checked against the CA (None without ``--backend-tls-*``)."""
    tls = backend_tls(args)
    return None if tls is None else TlsFiles(tls.cert, tls.cert, tls.ca).client_context()


def trading_upstreams(
    given: list[str], tls: BackendTls | None = None
) -> Upstream | tuple[Upstream, ...]:
    """``--trading`` values: ``HOST:PORT`` (``0/1``, every account) or ``I/N=HOST:PORT``, one
    for each partition of N (raises ValueError when one is missing, given twice or of another
    N, or when the two forms are mixed)."""
    split = [value.partition("=") for value in given]
    if not any(sep for _, sep, _ in split):
        return Upstream("trading", tuple(given), tls=tls)
    servers: dict[Partition, str] = {}
    for named, sep, server in split:
        if not sep:
            raise ValueError(f"--trading {named}: name its partition (I/N=HOST:PORT) as the others")
        try:
            partition = Partition.parse(named)
        except PartitionError as exc:
            raise ValueError(f"--trading {named}{sep}{server}: {exc}") from None
        if partition in servers:
            raise ValueError(f"--trading: partition {partition} is given twice")
        servers[partition] = server
    count = next(iter(servers)).count
    wanted = [Partition(index, count) for index in range(count)]
    if sorted(servers, key=lambda p: (p.count, p.index)) != wanted:
        listed = " ".join(str(partition) for partition in wanted)
        raise ValueError(f"--trading: give each partition of {count} once: {listed}")
    if count == 1:
        return Upstream("trading", (servers[wanted[0]],), tls=tls)
    upstreams = trading_partitions([(servers[partition],) for partition in wanted])
    return tuple(dataclasses.replace(upstream, tls=tls) for upstream in upstreams)


def jwks_url(args: argparse.Namespace) -> str | None:
    """Where the keys come from: ``--jwks-url``, else the first ``--auth`` instance's key set
    (unless ``--keys`` names a folder)."""
    if args.jwks_url is not None:
        return str(args.jwks_url)
    if args.keys is None and args.auth:
        scheme = "http" if args.backend_tls_ca is None else "https"
        return f"{scheme}://{args.auth[0]}{JWKS_PATH}"
    return None


def run(args: argparse.Namespace) -> int:
    folder = state_dir("edge")
    try:
        tls = key_set_tls(args)
    except (ValueError, ssl.SSLError) as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    keys = KeySource(
        folder, args.issuer, args.audience, jwks_url(args), args.jwks_every, args.keys, tls
    )
    try:
        return asyncio.run(_serve(args, folder, keys))
    except _BadInputError as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (EdgeError, ValueError, OSError) as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


class _BadInputError(Exception):
    """A setting the command refuses before it starts anything."""


async def _serve(args: argparse.Namespace, folder: Path, keys: KeySource) -> int:
    """HAProxy, the key set followed in a worker thread, and ``auth.events`` followed into the
    revocation map; the event loop stays free for signals (HAProxy's start, reloads and stop
    run in worker threads too)."""
    loop = asyncio.get_running_loop()
    stop, reread = asyncio.Event(), asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reread.set)
    async with keys.following():
        try:
            tokens = await asyncio.to_thread(keys.policy)
            settings = settings_from(args, folder, tokens)
        except ValueError as exc:
            raise _BadInputError(str(exc)) from None
        if tokens is not None and not tokens.keys and keys.url is not None:
            print("mdp edge: no keys yet, tokens are refused until they come", file=sys.stderr)
        return await _run_edge(args, folder, keys, settings, stop, reread)


async def _run_edge(
    args: argparse.Namespace,
    folder: Path,
    keys: KeySource,
    settings: EdgeSettings,
    stop: asyncio.Event,
    reread: asyncio.Event,
) -> int:
    edge = Haproxy(folder)
    await asyncio.to_thread(edge.start, settings)
    try:
        print(f"mdp edge: listening on {edge.url()}", file=sys.stderr, flush=True)
        print(f"metrics: {edge.metrics_url()}", file=sys.stderr, flush=True)
        keeper = EdgeKeeper(edge, settings, keys, _say)
        tasks = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(keeper.follow_keys(reread)),
            asyncio.create_task(keeper.watch()),
        ]
        if args.bus == "kafka":
            tasks.append(asyncio.create_task(_follow_revocations(keeper, args)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # a task that failed ends the command with its error
    finally:
        await asyncio.to_thread(edge.stop)
    print("mdp edge: stopped", file=sys.stderr, flush=True)
    return 0


def _say(line: str) -> None:
    print(f"mdp edge: {line}", file=sys.stderr, flush=True)


async def _follow_revocations(keeper: EdgeKeeper, args: argparse.Namespace) -> None:
    """``auth.events`` from Kafka into the revocation map, for ever."""
    from mdp.cluster_options import kafka_bus  # Kafka's client only when it is used

    async with kafka_bus(args) as bus:
        await keeper.follow_revocations(bus)
