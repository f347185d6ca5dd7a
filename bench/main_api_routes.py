"""The main API's routes under load: p50/p99 of ``GET /api/v1/alerts`` and
``GET /api/v1/watchlists`` (each request with an account's token, read from PostgreSQL) at a
fixed rate, open loop (:func:`bench.edge.paced_gets`, the edge benchmark's load generator), the
server in a process of its own (``mdp main-api``'s :func:`main_api.process.running`).
Baseline in the same run: ``GET /healthz`` of the same server (no token, no database).

Every account has ``alerts_per_account`` alerts and two watchlists; the requests go to the
accounts in turn, each with its own token (the signature checked once, then remembered, as
for a client that keeps its token).

Target (issue 16): p99 at most 20 ms at 1,000 requests/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Final

from access.keyset import KeySet
from access.settings import TokenSettings
from auth.claims import access_claims
from auth.plans import load_plans
from auth.signing import Keyring, generate_key
from bench.common import child_server, scratch_schema
from bench.edge import AUDIENCE, ISSUER, Figure, paced_gets
from core.alerts import AlertSpec, Condition
from machine import free_port
from main_api.settings import MainApiSettings, PlanLimits
from main_api.store import MainStore
from main_api.webhooks.settings import WebhookSettings

ROUTE_P99_MS: Final = 20.0
_LIMITS: Final = PlanLimits(watchlists=5, instruments=50, alerts=2_000)
PATHS: Final = ("/healthz", "/api/v1/alerts", "/api/v1/watchlists")
ACCOUNTS: Final = 100
ACCOUNTS_SMOKE: Final = 5
ALERTS_PER_ACCOUNT: Final = 20


async def seed(url: str, schema: str, accounts: int, alerts_per_account: int) -> None:
    """Each account's alerts and two watchlists."""
    async with MainStore.open(url, schema) as store:
        for account in range(1, accounts + 1):
            for n in range(alerts_per_account):
                spec = AlertSpec(
                    alert_id=f"b-{account}-{n}", account=account, instrument="SYN:COIN0USD",
                    condition=Condition.ABOVE, threshold=Decimal(100 + n),
                )  # fmt: skip
                await store.create_alert(spec, _LIMITS, "pro")
            for name in ("majors", "alts"):
                await store.create_watchlist(account, name, ["SYN:COIN0USD"], _LIMITS, "pro")


def serve(port: int) -> None:
    """The server process: the main API on ``port`` (the database, schema and key set from
    the environment), until terminated."""
    settings = MainApiSettings(
        os.environ["DATABASE_URL"],
        TokenSettings(keys=KeySet.from_jwks(os.environ["BENCH_JWKS"].encode())),
        port=port, schema=os.environ["BENCH_SCHEMA"],
        webhooks=WebhookSettings(worker=False),
    )  # fmt: skip

    async def forever() -> None:
        from main_api.process import running

        async with running(settings):
            await asyncio.Event().wait()

    asyncio.run(forever())


@contextlib.contextmanager
def server_process(url: str, schema: str, jwks: bytes) -> Iterator[int]:
    """The main API in a child process; its port."""
    port = free_port()
    env = {"DATABASE_URL": url, "BENCH_SCHEMA": schema, "BENCH_JWKS": jwks.decode()}
    with child_server("bench.main_api_routes", port, "/readyz", env):
        yield port


def tokens(keyring: Keyring, accounts: int) -> list[str]:
    """One access token of each account, as the auth service issues them."""
    pro = load_plans().get("pro")
    now = int(time.time())
    minted = []
    for account in range(1, accounts + 1):
        claims = access_claims(
            issuer=ISSUER, audience=AUDIENCE, kind="account", principal=account,
            account_id=account, session=f"s{account}", scopes=("read",), plan=pro, now=now,
            ttl_s=600,
        )  # fmt: skip
        minted.append(keyring.sign(claims))
    return minted


async def _load(
    port: int, minted: list[str], rate: float, seconds: float, connections: int
) -> list[Figure]:
    figures = []
    for path in PATHS:
        lines = [f"Authorization: Bearer {token}\r\n" for token in minted]
        headers = itertools.repeat("") if path == "/healthz" else itertools.cycle(lines)
        await paced_gets(port, path, headers, rate, min(1.0, seconds), connections)  # warm-up
        latencies, achieved, failures = await paced_gets(
            port, path, headers, rate, seconds, connections
        )
        name = f"GET {path}" + (" (baseline)" if path == "/healthz" else "")
        figures.append(Figure(name, latencies, rate, achieved, failures))
    return figures


def run(
    url: str,
    *,
    rate: float,
    seconds: float,
    accounts: int = ACCOUNTS,
    alerts_per_account: int = ALERTS_PER_ACCOUNT,
    connections: int = 16,
) -> list[Figure]:
    """Seed a schema of its own on ``url``, serve it and offer each path at ``rate``."""
    key = generate_key(int(time.time()) - 60)
    jwks = json.dumps({"keys": [key.public_jwk()]}).encode()
    minted = tokens(Keyring((key,), 600), accounts)
    with scratch_schema(url, "bench_routes") as schema:
        asyncio.run(seed(url, schema, accounts, alerts_per_account))
        with server_process(url, schema, jwks) as port:
            return asyncio.run(_load(port, minted, rate, seconds, connections))


def report(figures: list[Figure], accounts: int, alerts_per_account: int) -> None:
    print(
        f"\nmain API routes, open loop ({accounts} accounts, {alerts_per_account} alerts and"
        " 2 watchlists each, one token per account)"
    )
    head = f"{'offered/s':>10} {'done/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'fail':>5}"
    print(f"  {'what':<34} {head}")
    for figure in figures:
        print(
            f"  {figure.name:<34} {figure.offered:>10,.0f} {figure.achieved:>10,.0f}"
            f" {figure.percentile(0.5):>8.2f} {figure.percentile(0.99):>8.2f}"
            f" {figure.failures:>5}"
        )
    worst = max(f.percentile(0.99) for f in figures if "baseline" not in f.name)
    verdict = "met" if worst <= ROUTE_P99_MS else "NOT met"
    print(f"  worst route p99: {worst:.2f} ms (target <= {ROUTE_P99_MS:.0f} ms: {verdict})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench.main_api_routes --serve PORT (run by bench.alerts)")
