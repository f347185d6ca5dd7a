"""Alert changes applied in slices (real PostgreSQL): a batch of the change feed larger than
``CHANGE_SLICE`` reaches the states one slice a poll, and a state's change number moves to the
batch's last only with its last slice (a state stored between two slices applies the batch
again after a restart); each slice's rows are stored with it, not left to the next round."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from core.alerts import AlertSpec, Condition
from core.topics import TICKS
from main_api.alerts import runner
from main_api.alerts.runner import Evaluating, EvaluatorService
from main_api.changes import AlertChanges
from main_api.settings import PlanLimits
from main_api.store import MainStore
from streams.memory import MemoryBus
from tests.main_api.alerts.factories import INSTRUMENT

LIMITS = PlanLimits(watchlists=5, instruments=50, alerts=100)
ALERTS = 5


@pytest.fixture
def schema(fresh_database: str) -> Iterator[tuple[str, str]]:
    name = "main_api_slices"
    yield fresh_database, name
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
async def store(schema: tuple[str, str]) -> AsyncIterator[MainStore]:
    async with MainStore.open(*schema) as opened:
        yield opened


def stored(url: str, schema: str) -> list[str]:
    """The alerts whose evaluator rows are stored."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT id FROM {}.main_api_evaluator_rows WHERE kind = 'alert' ORDER BY id"
            ).format(sql.Identifier(schema))
        ).fetchall()
    return [row[0] for row in rows]


def applied(hook: Evaluating, ids: list[str]) -> list[str]:
    """The alerts of ``ids`` some state holds."""
    return [
        alert_id
        for alert_id in ids
        if any(state.evaluator.state_of(alert_id) is not None for state in hook.states.values())
    ]


async def test_a_burst_of_changes_is_applied_a_slice_a_poll(
    store: MainStore, schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "CHANGE_SLICE", 2)
    async with MemoryBus(partitions=4) as bus:
        service = EvaluatorService(store, bus, schema[0])
        hook = Evaluating(service, bus)
        assigned = [(TICKS, partition) for partition in range(4)]
        await hook.own(assigned)
        started = {state.change_seq for state in hook.states.values()}
        ids = [f"s{i}" for i in range(ALERTS)]
        for i, alert_id in enumerate(ids):
            await store.create_alert(
                AlertSpec(alert_id=alert_id, account=1, instrument=INSTRUMENT,
                          condition=Condition.ABOVE, threshold=Decimal(100 + i)),
                LIMITS, "pro",
            )  # fmt: skip
        batch, last = await AlertChanges(store).changes_after(max(started))
        assert len(batch) == ALERTS
        await service.queue.put((batch, last))
        seen = []
        for _ in range(3):
            await hook.own(assigned)
            seen.append((
                applied(hook, ids), stored(*schema),
                {state.change_seq for state in hook.states.values()},
            ))  # fmt: skip
        assert seen == [
            (ids[:2], ids[:2], started),
            (ids[:4], ids[:4], started),
            (ids, ids, {last}),
        ]
        await hook.own(assigned)  # nothing left to apply
        assert applied(hook, ids) == ids
