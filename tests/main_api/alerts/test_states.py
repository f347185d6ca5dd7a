"""The evaluator's stored rows (real PostgreSQL): rounds store only the rows they changed, and
a restart from those rows, anywhere, fires exactly what one uninterrupted run fires; a state
stored whole by an earlier version is read, and its first save stores it as rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from bench import alerts as workload
from core.alerts import AlertFired, AlertSpec
from core.ticks import TickBatch
from core.topics import TICKS
from main_api.alerts import AlertEvaluator
from main_api.alerts.states import Saved, Stored, claim, save
from main_api.store import MainStore

OWNER = "alerts.evaluator@test"
NAMES = workload.instruments(2)
SPECS = workload.synthetic_alerts(400, NAMES)
BATCHES = workload.random_walk(4_000, NAMES, 50, 2_000, step_bp=0.5)
ROUND = 4
"""Batches per round."""
CHANGED_AT = 21
"""The round before which a fifth of the alerts is deleted and another fifth changed."""


@pytest.fixture
async def store(schema: tuple[str, str]) -> AsyncIterator[MainStore]:
    async with MainStore.open(*schema) as opened:
        yield opened


def changes() -> tuple[list[AlertSpec], list[str]]:
    """Mid-run changes: every fifth alert deleted, the one after it moved to the threshold
    of the next alert of its condition."""
    deleted = [spec.alert_id for spec in SPECS[::5]]
    moved = [
        msgspec.structs.replace(spec, threshold=SPECS[i + 6].threshold)
        for i, spec in enumerate(SPECS[:-6])
        if i % 5 == 1 and spec.condition is SPECS[i + 6].condition
    ]
    assert moved
    return moved, deleted


def rounds() -> list[Sequence[TickBatch]]:
    return [BATCHES[i : i + ROUND] for i in range(0, len(BATCHES), ROUND)]


def clean_run() -> list[AlertFired]:
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS)
    fired = []
    for number, batches in enumerate(rounds()):
        if number == CHANGED_AT:
            evaluator.apply_changes(*changes())
        fired += [event for batch in batches for event in evaluator.step(batch)]
    return fired


async def claimed(store: MainStore) -> tuple[Stored, AlertEvaluator]:
    async with store.transaction() as conn:
        stored = await claim(conn, OWNER, TICKS, 0, 1)
    if stored.snapshot is not None:
        return stored, AlertEvaluator.from_snapshot(stored.snapshot)
    return stored, AlertEvaluator.from_rows(stored.alerts, stored.streams)


async def stored_round(
    store: MainStore, evaluator: AlertEvaluator, epoch: int, offset: int, change: int
) -> int:
    """One round's save; how many rows it stored."""
    delta = evaluator.delta()
    async with store.transaction() as conn:
        await save(conn, OWNER, [Saved(TICKS, 0, epoch, offset, change, delta)], 1)
    return len(delta.alerts) + len(delta.streams)


async def test_restarts_from_the_stored_rows_fire_exactly_what_one_run_fires(
    store: MainStore,
) -> None:
    clean = clean_run()
    assert len(clean) > 100
    stored, evaluator = await claimed(store)
    evaluator.apply_changes(SPECS)
    fired: list[AlertFired] = []
    written = []
    for number, batches in enumerate(rounds()):
        if number % 9 == 4:  # a restart: what the next owner of the partition reads
            stored, restored = await claimed(store)
            assert stored.next_offset == number
            assert restored.snapshot() == evaluator.snapshot()
            evaluator = restored
        if number == CHANGED_AT:
            evaluator.apply_changes(*changes())
        fired += [event for batch in batches for event in evaluator.step(batch)]
        written.append(await stored_round(store, evaluator, stored.epoch, number + 1, number))
    assert fired == clean
    # the first round stores every alert; the others what they changed
    assert written[0] == len(SPECS) + len(NAMES)
    assert max(written[1:]) < len(SPECS) / 4
    _, last = await claimed(store)
    assert last.snapshot() == evaluator.snapshot()
    assert len(last) == len(evaluator) < len(SPECS)


async def test_a_state_stored_whole_is_read_and_its_first_save_stores_it_as_rows(
    store: MainStore,
) -> None:
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS)
    for batch in BATCHES[:40]:
        evaluator.step(batch)
    async with store.transaction() as conn:
        first = await claim(conn, OWNER, TICKS, 0, 1)
        await conn.execute(  # as a version that stored snapshots left it
            "UPDATE main_api_evaluator_states SET snapshot = %s, next_offset = 40",
            (evaluator.snapshot(),),
        )
    stored, restored = await claimed(store)
    assert (stored.epoch, stored.next_offset, stored.alerts) == (first.epoch + 1, 40, [])
    assert restored.snapshot() == evaluator.snapshot()
    assert await stored_round(store, restored, stored.epoch, 41, 0) == len(SPECS) + len(NAMES)
    again, from_rows = await claimed(store)
    assert again.snapshot is None
    assert from_rows.snapshot() == evaluator.snapshot()
