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
``http://ADMIN-HOST:ADMIN-PORT/metrics``. The machine's ``haproxy`` runs as a child of this
command, with its configuration in the state folder. See ``docs/edge.md``.

A trading service partitioned by account (``mdp trading serve --partition I/N``) is given one
``--trading I/N=HOST:PORT`` per partition; each ``/trading`` request goes to the partition of
its token's ``acct``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from access.jwks import JwksCache
from access.keyset import KeySet
from auth.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from core.partitions import Partition, PartitionError
from edge.config import (
    EdgeSettings,
    RateLimits,
    TokenPolicy,
    Upstream,
    VerifyKey,
    trading_partitions,
)
from edge.haproxy import EdgeError, Haproxy
from edge.keys import MAX_DOCUMENT_BYTES, MAX_KEYS, KeySetError, parse_jwks, pems_of, write_keys
from edge.revocations import RevocationFeed
from edge.runtime import Runtime
from machine import state_dir

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
DEFAULT_PORT = 8080
DEFAULT_ADMIN_PORT = 8404
_DEFAULT_LIMITS = RateLimits()
JWKS_PATH = "/auth/.well-known/jwks.json"
FETCH_TIMEOUT_S = 5.0
KEYS_LOOK_S = 1.0


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
    api = Upstream("api", tuple(args.api))
    auth = Upstream("auth", tuple(args.auth)) if args.auth else None
    trading = trading_upstreams(args.trading) if args.trading else None
    main_api = Upstream("main-api", tuple(args.main_api)) if args.main_api else None
    return EdgeSettings(
        host=args.host,
        port=args.port,
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        chart=api,
        history=api,
        gateway=Upstream("gateway", tuple(args.gateway), websocket=True),
        auth=auth,
        trading=trading,
        main_api=main_api,
        tokens=tokens,
        anonymous=not args.no_anonymous,
        limits=RateLimits(
            anonymous_per_address=args.anonymous_rate, logins_per_address=args.login_rate
        ),
        error_dir=folder,
    )


def trading_upstreams(given: list[str]) -> Upstream | tuple[Upstream, ...]:
    """``--trading`` values: ``HOST:PORT`` (``0/1``, every account) or ``I/N=HOST:PORT``, one
    for each partition of N (raises ValueError when one is missing, given twice or of another
    N, or when the two forms are mixed)."""
    split = [value.partition("=") for value in given]
    if not any(sep for _, sep, _ in split):
        return Upstream("trading", tuple(given))
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
        return Upstream("trading", (servers[wanted[0]],))
    return trading_partitions([(servers[partition],) for partition in wanted])


def jwks_url(args: argparse.Namespace) -> str | None:
    """Where the keys come from: ``--jwks-url``, else the first ``--auth`` instance's key set
    (unless ``--keys`` names a folder)."""
    if args.jwks_url is not None:
        return str(args.jwks_url)
    if args.keys is None and args.auth:
        return f"http://{args.auth[0]}{JWKS_PATH}"
    return None


def keys_in(folder: Path) -> tuple[VerifyKey, ...]:
    """The ``<kid>.pem`` files of ``folder``, at most :data:`MAX_KEYS`."""
    if not folder.is_dir():
        raise ValueError(f"--keys {folder}: no such folder")
    files = sorted(folder.glob("*.pem"))
    if len(files) > MAX_KEYS:
        raise ValueError(f"--keys {folder}: {len(files)} keys, at most {MAX_KEYS}")
    return tuple(VerifyKey(path.stem, path.absolute()) for path in files)


def fetch_keys(url: str, folder: Path) -> tuple[VerifyKey, ...]:
    """The key set at ``url``, written into ``folder`` (raises KeySetError or OSError), for a
    caller without an event loop; the command follows the key set with :class:`Keys`."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
            document = answer.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise KeySetError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KeySetError(f"{url} cannot be reached: {reason}") from None
    return write_keys(folder, parse_jwks(document))


class Keys:
    """The keys the edge checks tokens with: ``--keys DIR``, or a key set URL followed by
    :class:`access.jwks.JwksCache` (async: a slow or absent auth service never holds the event
    loop; a failed fetch keeps the last good key set)."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self._args = args
        self.url = jwks_url(args)
        self._folder = folder / "keys"
        self._cache: JwksCache | None = None
        self._written: tuple[KeySet, tuple[VerifyKey, ...]] | None = None
        self._fetching: asyncio.Task[bool] | None = None

    @contextlib.asynccontextmanager
    async def following(self) -> AsyncIterator[None]:
        """Follow the key set URL (if any) while inside."""
        if self.url is None:
            yield
            return
        every = float(self._args.jwks_every)
        async with JwksCache(self.url, every, timeout_s=FETCH_TIMEOUT_S) as cache:
            self._cache = cache
            try:
                yield
            finally:
                self._cache = None
                if self._fetching is not None:  # ended before the cache closes its client
                    self._fetching.cancel()
                    await asyncio.gather(self._fetching, return_exceptions=True)

    def _fetched(self) -> tuple[VerifyKey, ...]:
        """The cache's keys, written as files when they changed."""
        assert self._cache is not None
        fetched = self._cache.keys
        if fetched is None:
            return ()
        if self._written is None or not fetched.same_as(self._written[0]):
            self._written = (fetched, write_keys(self._folder, pems_of(fetched)))
        return self._written[1]

    def refresh_soon(self) -> None:
        """Fetch the key set now, in the background (SIGHUP): a fetch that hangs delays no
        reload; what it brings is taken in within a second."""
        if self._cache is not None and (self._fetching is None or self._fetching.done()):
            self._fetching = asyncio.create_task(self._cache.refresh())

    def policy(self) -> TokenPolicy | None:
        """What tokens must be, with the keys as they are now (None: no keys are configured;
        no key yet: every token is refused); raises KeySetError, ValueError or OSError when
        the keys cannot be read."""
        if self._args.keys is not None:
            found = keys_in(self._args.keys)
        elif self._cache is not None:
            found = self._fetched()
        else:
            return None
        return TokenPolicy(self._args.issuer, self._args.audience, found)


def run(args: argparse.Namespace) -> int:
    folder = state_dir("edge")
    try:
        return asyncio.run(_serve(args, folder, Keys(args, folder)))
    except _BadInputError as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (EdgeError, ValueError, OSError) as exc:
        print(f"mdp edge: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


class _BadInputError(Exception):
    """A setting the command refuses before it starts anything."""


async def _serve(args: argparse.Namespace, folder: Path, keys: Keys) -> int:
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
    keys: Keys,
    settings: EdgeSettings,
    stop: asyncio.Event,
    reread: asyncio.Event,
) -> int:
    edge = Haproxy(folder)
    await asyncio.to_thread(edge.start, settings)
    try:
        print(f"mdp edge: listening on {edge.url()}", file=sys.stderr, flush=True)
        print(f"metrics: {edge.metrics_url()}", file=sys.stderr, flush=True)
        running = _Running(edge, settings, keys)
        tasks = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(running.follow_keys(reread)),
            asyncio.create_task(running.watch()),
        ]
        if args.bus == "kafka":
            tasks.append(asyncio.create_task(running.follow_revocations(args)))
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


class _Running:
    """The running edge's tasks: keys, revocations and HAProxy's health."""

    def __init__(self, edge: Haproxy, settings: EdgeSettings, keys: Keys) -> None:
        self._edge = edge
        self._settings = settings
        self._keys = keys
        self._feed: RevocationFeed | None = None

    async def watch(self) -> None:
        """Returns (with an error) when HAProxy stops by itself."""
        while self._edge.pid is not None:
            await asyncio.sleep(0.5)
        raise EdgeError("HAProxy stopped")

    async def follow_keys(self, reread: asyncio.Event) -> None:
        """Reload when the key set changed (looked at every second; the cache fetches it every
        ``--jwks-every`` seconds), and on SIGHUP (the key set fetched, or ``--keys`` read, now)."""
        while True:
            try:
                await asyncio.wait_for(reread.wait(), KEYS_LOOK_S)
                forced = True
            except TimeoutError:
                forced = False
            reread.clear()
            if forced:
                self._keys.refresh_soon()
            if forced or self._keys.url is not None:
                await self._reload(forced=forced)

    async def follow_revocations(self, args: argparse.Namespace) -> None:
        """``auth.events`` from Kafka into the revocation map, for ever."""
        from mdp.cluster_options import kafka_bus  # Kafka's client only when it is used

        async with kafka_bus(args) as bus:
            runtime = Runtime(self._settings.runtime_socket)
            self._feed = RevocationFeed(bus, runtime, self._settings.revocation_map)
            await self._feed.run()

    async def _reload(self, *, forced: bool) -> None:
        """Read the keys again and reload when they changed (or when ``forced``: SIGHUP); a
        failure keeps the running configuration."""
        try:
            tokens = await asyncio.to_thread(self._keys.policy)
            wanted = dataclasses.replace(self._settings, tokens=tokens)
            if wanted == self._settings and not forced:
                return
            await asyncio.to_thread(self._edge.reload, wanted)
        except (EdgeError, KeySetError, ValueError, OSError) as exc:
            print(f"mdp edge: error: not reloaded, still serving as before: {exc}", file=sys.stderr)
            return
        self._settings = wanted
        if self._feed is not None:
            await self._feed.sync()  # what changed while the new workers started
        print("mdp edge: reloaded", file=sys.stderr, flush=True)
