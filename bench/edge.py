"""The edge's cost: the same requests through HAProxy (with JWT verification) and sent directly.

One run, one machine, traffic on 127.0.0.1 only:

- **HTTP**: a small ``/v1/candles`` page (``--rows`` candles, JSON) of the history API
  (``bench.history``'s server process, final pages cached), offered at ``--rate`` requests/s
  (open loop: each request leaves at its scheduled time on one of ``--connections``
  keep-alive connections of a minimal HTTP/1.1 client), through the edge with a bearer
  token the edge checks (ES256, ``kid``, ``exp``, ``iss``, ``aud``, the revocation map, the
  rate limit on every request; the signature once, at the warm-up, then remembered by the
  token's hash, as a client's token is) and directly, at the same time: half the rate and
  half the connections each, none pausing, so that the machine's moments fall on both paths
  alike; latency is from sending a request to its last byte. (Phases of seconds, one path
  after the other, moved the p99 by tens of ms between phases on two shared cores; turns of a
  tenth of a second made every path's p99 20-30 ms: the first request on each connection
  after its turn's pause.) The same requests through the edge without a token, and with a
  new token each time, tell the proxy's own cost from the token's.
- **WebSocket**: ``--clients`` clients subscribed to 1m candles (``bench.gateway``'s server
  process and clients), half directly and half through the edge at the same time, on the
  same channels: each publish reaches both halves, and delivery latency is from publish to
  receipt at ``--ws-rate`` deliveries/s in all. The clients connect without a token: the
  edge checks a token once, at the upgrade, and passes the connection's bytes through after
  that, so delivery costs the same either way (the bench's gateway has no key to check
  tokens with).
- **Token issue rate** of the auth service (an API key exchanged for an access token on the
  scratch database, through :class:`auth.service.AuthService`): a figure only.

- **Variants** of the edge's configuration (:data:`VARIANTS`: one HAProxy thread instead of
  one per core, ``http-reuse always``, no access log), each its own HAProxy started beside
  the edge as it is configured, measured beside the edge as configured at the same time
  (HTTP with one token, and WebSocket), so that a change of the configuration is judged
  against the configuration of the same moments.
- **CPU**: each row says how busy the machine's cores were during it (all processes, from
  ``/proc/stat``) and, through an edge, the CPU its HAProxy worker spent a request (or a
  delivery).

Targets: at most 1 ms added at p99 for HTTP, WebSocket delivery p99 unchanged within noise,
and p99 through the edge under 5 ms (the seed's gateway SLA of 50 ms with a 10x margin).

Usage: ``python -m bench.edge [--smoke] [--rate 2000] [--seconds 5] [--clients 1000]
[--ws-rate 20000] [--rows 60] [--connections 32] [--no-variants] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import os
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final, TypeAlias

import jwt

from auth.service import AuthService
from auth.settings import AuthSettings
from auth.signing import generate_key
from auth.store import AuthStore
from bench import gateway as ws
from bench import history
from bench.common import scratch_database
from core.secrets import Secret
from edge.config import EdgeSettings, RateLimits, TokenPolicy, Upstream, VerifyKey
from edge.haproxy import Haproxy
from machine import free_port

HTTP_ADDED_P99_MS: Final = 1.0
P99_TARGET_MS: Final = 5.0
ISSUER, AUDIENCE = "ganntec-auth", "ganntec"
Headers: TypeAlias = Iterator[str]
"""The extra header lines of each request in turn (``""`` for none)."""
VARIANTS: Final[dict[str, dict[str, object]]] = {
    "1 thread": {"threads": 1},
    "http-reuse always": {"server_reuse": "always"},
    "no access log": {"access_log": False},
}
"""Changes of :class:`EdgeSettings` measured beside the edge as configured (its field values)."""
_TICK_S: Final = 1 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU spent over a phase: the machine's busy fraction (all cores) and an HAProxy's."""

    busy: float
    """Busy share of all the machine's cores, 0 to 1."""
    edge_s: float
    """CPU seconds of the HAProxy in front (0 for direct requests)."""

    def __add__(self, other: Cpu) -> Cpu:
        return Cpu((self.busy + other.busy) / 2, self.edge_s + other.edge_s)


class CpuMeter:
    """Reads ``/proc``: the machine's CPU counters and an HAProxy's workers' CPU time."""

    def __init__(self, haproxy_pid: int | None) -> None:
        self._pid = haproxy_pid
        self._start = self._read()

    def stop(self) -> Cpu:
        (busy0, total0, edge0), (busy1, total1, edge1) = self._start, self._read()
        return Cpu((busy1 - busy0) / max(1, total1 - total0), (edge1 - edge0) * _TICK_S)

    def _read(self) -> tuple[int, int, int]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        return sum(fields) - idle, sum(fields), self._edge_ticks()

    def _edge_ticks(self) -> int:
        """utime + stime of the master's children (the workers, every thread included)."""
        if self._pid is None:
            return 0
        ticks = 0
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self._pid}/task/{self._pid}/children").read_text().split()
            for child in children:
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{child}/stat").read_text()
                    fields = stat.rpartition(")")[2].split()
                    ticks += int(fields[11]) + int(fields[12])
        return ticks


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    latencies_ns: array[int]
    offered: float
    achieved: float
    failures: int = 0
    cpu: Cpu | None = None
    seconds: float = 0.0
    variant: str = ""
    """The :data:`VARIANTS` entry it was measured through (``""``: none)."""
    beside: Figure | None = None
    """What it is compared with, measured over the same moments: the direct path for a path
    through the edge, the edge as configured for a variant."""

    def percentile(self, q: float) -> float:
        return ws.percentile(self.latencies_ns, q)

    @property
    def edge_us(self) -> float | None:
        """HAProxy's CPU per request (or delivery), µs."""
        if self.cpu is None or not self.cpu.edge_s or not self.achieved or not self.seconds:
            return None
        return self.cpu.edge_s / (self.achieved * self.seconds) * 1e6


# -- HTTP ----------------------------------------------------------------------------------------


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bool:
    """One keep-alive GET; whether it was answered 200."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200")


@dataclass(frozen=True, slots=True)
class Edge:
    """One HAProxy in front: its label in the rows, its port and its master's process id."""

    label: str
    port: int
    pid: int | None


async def paced_gets(
    port: int, path: str, headers: Headers, rate: float, seconds: float, connections: int
) -> tuple[array[int], float, int]:
    """GET ``path`` at ``rate`` requests/s for ``seconds`` (open loop), each request with the
    next of ``headers``; latencies (ns), the rate achieved and the failures."""
    total = max(1, round(rate * seconds))
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{next(headers)}\r\n".encode()
        for _ in range(total)
    ]
    latencies: array[int] = array("q")
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    start = time.perf_counter_ns() + 50_000_000

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (index := await queue.get()) >= 0:
                due = start + index * 1_000_000_000 / rate
                delay = (due - time.perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = time.perf_counter_ns()
                if not await _exchange(reader, writer, requests[index]):
                    failures += 1
                latencies.append(time.perf_counter_ns() - sent)
        finally:
            writer.close()

    for index in range(total):
        queue.put_nowait(index)
    for _ in range(connections):
        queue.put_nowait(-1)
    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, total / (time.perf_counter() - began), failures


HttpWay: TypeAlias = tuple[str, int, int | None, Headers, str]
"""One path of requests: its row's label, the port, its HAProxy's pid (``None``: direct), the
extra header lines of each request and the :data:`VARIANTS` entry it goes through."""


async def measure_http(
    direct: int, edges: list[Edge], path: str, tokens: Iterator[str], sizes: argparse.Namespace
) -> list[Figure]:
    """Each path through the edge beside the direct path at the same moments (half the rate
    and half the connections each, so the history API is offered ``--rate`` in all): with one
    token (its signature remembered after the first request), with a new token each request
    (each signature verified) and without one (the proxy's own cost); each variant, with one
    token, beside the edge as configured. Both halves run at once without pauses, so the
    machine's moments fall on both and no connection waits for its turn (after a warm-up)."""
    one = f"Authorization: Bearer {next(tokens)}\r\n"
    fresh = (f"Authorization: Bearer {token}\r\n" for token in tokens)
    edge, *variants = edges
    straight: HttpWay = ("direct", direct, None, itertools.repeat(""), "")
    with_token: HttpWay = ("through the edge (JWT)", edge.port, edge.pid, itertools.repeat(one), "")
    pairs: list[tuple[HttpWay, HttpWay]] = [
        (straight, with_token),
        (straight, ("through the edge (JWT, new each time)", edge.port, edge.pid, fresh, "")),
        (straight, ("through the edge (no token)", edge.port, edge.pid, itertools.repeat(""), "")),
    ]  # fmt: skip
    for variant in variants:
        label = f"through the edge (JWT, {variant.label})"
        pairs.append((with_token, (label, variant.port, variant.pid, itertools.repeat(one),
                                   variant.label)))  # fmt: skip
    warmed: set[int] = set()
    for _, port, _, headers, _ in itertools.chain.from_iterable(pairs):
        if port not in warmed:  # connections, caches
            warmed.add(port)
            await paced_gets(port, path, headers, sizes.rate, 0.5, sizes.connections)
    figures: list[Figure] = []
    rate, connections = sizes.rate / 2, max(1, sizes.connections // 2)
    for pair in pairs:
        meters = [CpuMeter(pid) for _, _, pid, _, _ in pair]
        parts = await asyncio.gather(
            *(paced_gets(port, path, headers, rate, sizes.seconds, connections)
              for _, port, _, headers, _ in pair)
        )  # fmt: skip
        base, measured = (
            Figure(f"/v1/candles {label}", latencies, rate, achieved, failures, meter.stop(),
                   sizes.seconds, variant)
            for (label, _, _, _, variant), meter, (latencies, achieved, failures)
            in zip(pair, meters, parts, strict=True)
        )  # fmt: skip
        if not figures:
            figures.append(base)  # the direct row: its first half
        figures.append(replace(measured, beside=base))
    return figures


# -- WebSocket -----------------------------------------------------------------------------------


async def measure_websocket(
    gateway: int, edges: list[Edge], pipe: Connection, sizes: argparse.Namespace
) -> list[Figure]:
    """Direct and through the edge at once: half the clients each, subscribed to the same
    channels, so that every publish reaches both and their latencies share their moments; then
    each variant the same way beside the edge as configured."""
    names = ws.instruments(sizes.instruments)
    edge, *variants = edges
    Way: TypeAlias = tuple[str, int, int | None, str]  # label, port, HAProxy's pid, variant
    pairs: list[tuple[Way, Way]] = [
        (("direct", gateway, None, ""), ("through the edge", edge.port, edge.pid, ""))
    ]
    for variant in variants:
        pairs.append(
            (
                ("through the edge", edge.port, edge.pid, ""),
                (f"through the edge ({variant.label})", variant.port, variant.pid, variant.label),
            )
        )
    figures: list[Figure] = []
    half = max(1, sizes.clients // 2)
    for pair in pairs:
        groups = []
        clients = []
        for label, port, _, _ in pair:
            tally = ws.Tally()
            clients += await ws.connect_clients(port, half, names, 1, tally)
            groups.append((tally, label, half / len(names)))
        await asyncio.sleep(0.2)
        meters = [CpuMeter(pid) for _, _, pid, _ in pair]
        phases = await ws.measure_together(pipe, groups, sizes.ws_rate, sizes.seconds)
        measured = [
            Figure(
                f"candle delivery {label}", tally.latencies, phase.offered or 0.0,
                phase.delivered, cpu=meter.stop(), seconds=sizes.seconds, variant=variant,
            )
            for (label, _, _, variant), meter, phase, (tally, _, _) in zip(
                pair, meters, phases, groups, strict=True
            )
        ]  # fmt: skip
        if not measured[1].variant:  # the direct row, then the edge beside it
            figures.append(measured[0])
        figures.append(replace(measured[1], beside=measured[0]))
        for client in clients:
            if client.transport is not None:
                client.transport.close()
        await asyncio.sleep(0.5)
    return figures


# -- the auth service's token issue rate ---------------------------------------------------------


async def token_issue_rate(database_url: str, count: int) -> float:
    async with AuthStore.open(database_url) as store:
        service = AuthService(store, AuthSettings())
        await service.start()
        account = await service.create_account("bench@example.org", Secret("x" * 12), "pro")
        _, issued = await service.create_key(account, "bench", ["read"])
        presented = issued.presented()
        await service.key_token(presented)
        began = time.perf_counter()
        for _ in range(count):
            await service.key_token(presented)
        return count / (time.perf_counter() - began)


# -- the run -------------------------------------------------------------------------------------


def edge_settings(
    folder: Path, api: str, gateway_port: int, key_file: Path, kid: str
) -> EdgeSettings:
    api_upstream = Upstream("api", (api,))
    return EdgeSettings(
        host="127.0.0.1", port=free_port(), admin_host="127.0.0.1", admin_port=free_port(),
        chart=api_upstream, history=api_upstream,
        gateway=Upstream("gateway", (f"127.0.0.1:{gateway_port}",), websocket=True),
        tokens=TokenPolicy(ISSUER, AUDIENCE, (VerifyKey(kid, key_file),)),
        limits=RateLimits(anonymous_per_address=10_000_000, token_default=10_000_000),
        max_connections_per_address=0,  # every client comes from 127.0.0.1
        error_dir=folder,
    )  # fmt: skip


async def run(sizes: argparse.Namespace, database_url: str, api_base: str) -> list[Figure]:
    key = generate_key(int(time.time()))
    private = key.private_pem.reveal()
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "key:k_bench", "acct": 1, "sid": "",
              "iat": now, "nbf": now, "exp": now + 3600, "rpm": 10_000_000}  # fmt: skip
    tokens = (  # distinct by their jti: each a token the edge has never seen
        jwt.encode(claims | {"jti": str(n)}, private, "ES256", headers={"kid": key.kid})
        for n in itertools.count()
    )
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(
        target=ws.server_process, args=("gateway", sizes.instruments, child, None)
    )
    server.start()
    try:
        gateway_port = (await asyncio.wait_for(asyncio.to_thread(parent.recv), 60))[1]
        with tempfile.TemporaryDirectory(prefix="mdp-bench-edge-") as scratch:
            folder = Path(scratch)
            key_file = folder / f"{key.kid}.pem"
            key_file.write_text(key.public_pem)
            api = api_base.removeprefix("http://")
            settings = edge_settings(folder / "edge", api, gateway_port, key_file, key.kid)
            variants = VARIANTS if sizes.variants else {}
            with contextlib.ExitStack() as stack:
                edges: list[Edge] = []
                for label, change in {"the edge": {}, **variants}.items():
                    edge_folder = folder / f"edge{len(edges)}"
                    variant = replace(
                        settings, port=free_port(), admin_port=free_port(),
                        error_dir=edge_folder, **change,  # type: ignore[arg-type]
                    )  # fmt: skip
                    haproxy = stack.enter_context(Haproxy(edge_folder))
                    await asyncio.to_thread(haproxy.start, variant)
                    edges.append(Edge(label, variant.port, haproxy.pid))
                path = history_path(sizes.rows)
                direct_port = int(api.rpartition(":")[2])
                figures = await measure_http(direct_port, edges, path, tokens, sizes)
                figures += await measure_websocket(gateway_port, edges, parent, sizes)
    finally:
        parent.send(("stop",))
        await asyncio.to_thread(server.join, 30)
        if server.is_alive():
            server.kill()
    return figures


def history_path(rows: int) -> str:
    end_ms = (history.T0 + rows * history.MINUTE.ns) // 1_000_000
    return (
        f"/v1/candles?instrument={history.INSTRUMENT}&interval=1m&start=2026-01-01T00:00:00Z"
        f"&end={end_ms}&limit={rows}&format=json"
    )


def report(figures: list[Figure], issue_rate: float) -> None:
    print(
        f"\n  {'what':<62} {'offered/s':>10} {'done/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'busy %':>7} {'edge us':>8}"
    )
    for figure in figures:
        busy = "" if figure.cpu is None else f"{figure.cpu.busy * 100:.0f}"
        edge_us = figure.edge_us
        print(
            f"  {figure.name:<62} {figure.offered:>10,.0f} {figure.achieved:>10,.0f}"
            f" {figure.percentile(0.5):>8.2f} {figure.percentile(0.99):>8.2f}"
            f" {busy:>7} {'' if edge_us is None else f'{edge_us:.0f}':>8}"
            + (f"  ({figure.failures} failed)" if figure.failures else "")
            + ("  (short of the offered rate)" if figure.achieved < 0.95 * figure.offered else "")
        )
    print("  busy %: the machine's cores, all processes; edge us: HAProxy's CPU a request")
    by_name = {figure.name: figure for figure in figures}
    for kind, target in (("/v1/candles", HTTP_ADDED_P99_MS), ("candle delivery", None)):
        edge = next(
            figure for name, figure in by_name.items() if name.startswith(f"{kind} through")
        )
        assert edge.beside is not None  # the direct path over the same moments
        added = edge.percentile(0.99) - edge.beside.percentile(0.99)
        verdict = "" if target is None else f" (target <= {target:.0f} ms)"
        print(f"  {kind}: the edge adds {added:+.2f} ms at p99{verdict}")
    for figure in figures:
        if figure.beside is not None:
            change = figure.percentile(0.99) - figure.beside.percentile(0.99)
            against = "the edge as configured" if figure.variant else "direct"
            print(f"  {figure.name}: {change:+.2f} ms at p99 against {against} at the same moments")
    edge_rows = [fig for fig in figures if "through" in fig.name and not fig.variant]
    worst = max(figure.percentile(0.99) for figure in edge_rows)
    print(f"  worst p99 through the edge: {worst:.2f} ms (target < {P99_TARGET_MS:.0f} ms)")
    print(f"  auth service: {issue_rate:,.0f} access tokens issued per second (one connection)")


def main(argv: Sequence[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench.edge", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--rate", type=float, default=2000.0, help="HTTP requests/s (2000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (5)")
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients (1000)")
    parser.add_argument("--ws-rate", type=float, default=20_000.0, help="deliveries/s (20000)")
    parser.add_argument("--instruments", type=int, default=100, help="(100)")
    parser.add_argument("--rows", type=int, default=60, help="candles in the page (60)")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections (32)")
    parser.add_argument("--tokens", type=int, default=2000, help="tokens issued (2000)")
    parser.add_argument(
        "--no-variants", dest="variants", action="store_false",
        help="only the edge as configured, without the variants of its configuration",
    )  # fmt: skip
    parser.add_argument("--database-url", help="a server for the scratch database")
    sizes = parser.parse_args(argv)
    if sizes.smoke:
        sizes.rate, sizes.seconds, sizes.clients, sizes.ws_rate = 100.0, 0.5, 10, 200.0
        sizes.instruments, sizes.connections, sizes.tokens = 5, 4, 20
    ws.raise_open_files()
    with scratch_database(sizes.database_url) as database_url:
        history.stock(database_url, sizes.rows)
        with history.server_process(database_url) as api_base:
            figures = asyncio.run(run(sizes, database_url, api_base))
        issue_rate = asyncio.run(token_issue_rate(database_url, sizes.tokens))
    report(figures, issue_rate)
    return figures


if __name__ == "__main__":
    main()
