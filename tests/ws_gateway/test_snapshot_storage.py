"""Snapshots from storage, against a real PostgreSQL and real ``websockets`` clients: a
gateway started on a database that holds history (however old) gives its newest candles,
also of an instrument that has had no tick since the start; instrument names in any case."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from storage import PostgresStore

from .chart import as_json
from .harness import client, publish, running, subscribe, until
from .market import BTC, ETH, final, updates

SECOND = 1_000_000_000


@pytest.fixture
async def store(migrated_database: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore.open(migrated_database) as opened:
        yield opened


async def test_a_snapshot_gives_the_newest_stored_candles_however_old(
    store: PostgresStore,
) -> None:
    # Stored by an earlier run, months before the wall clock; no tick since this start.
    history = final(updates(BTC, "1s", duration=120))
    await store.write(candles=list(history.values()))
    async with running(store, instruments=()) as (_, gateway), client(gateway) as ws:
        joined, snapshot = await subscribe(ws, BTC, "1s", snapshot=50)
        assert joined["type"] == "subscribed"
        newest = [history[t] for t in sorted(history)[-50:]]
        assert snapshot["candles"] == [as_json(c) for c in newest]
        assert snapshot["seq"] == 0


async def test_a_snapshot_joins_old_stored_candles_to_the_live_ones(store: PostgresStore) -> None:
    # The platform restarted: storage holds last week's candles, the bus brings today's.
    now = time.time_ns() // SECOND * SECOND
    stored = final(updates(ETH, "1s", duration=120, start_ns=now - 7 * 86_400 * SECOND))
    live = updates(ETH, "1s", duration=20, start_ns=now - 30 * SECOND)
    await store.write(candles=list(stored.values()))
    async with running(store) as (bus, gateway), client(gateway) as ws:
        await publish(bus, live)
        await until(lambda: gateway.stats.candles == len(live))
        _, snapshot = await subscribe(ws, ETH, "1s", snapshot=100)
        fresh = final(live)
        kept = [stored[t] for t in sorted(stored)[-(100 - len(fresh)) :]]
        assert snapshot["candles"] == [as_json(c) for c in [*kept, *fresh.values()]]
        assert snapshot["seq"] == len(live)


async def test_instrument_names_are_accepted_in_any_case(store: PostgresStore) -> None:
    history = final(updates(BTC, "1s", duration=30))
    await store.write(candles=list(history.values()))
    async with running(store, instruments=()) as (_, gateway), client(gateway) as ws:
        joined, snapshot = await subscribe(ws, "synth:BtcUsd", "1s", snapshot=5)
        assert (joined["type"], joined["instrument"]) == ("subscribed", BTC)
        assert snapshot["instrument"] == BTC
        assert len(snapshot["candles"]) == 5
