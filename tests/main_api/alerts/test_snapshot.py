"""A snapshot taken anywhere in the stream and restored gives exactly the firings of an
uninterrupted run: none repeated, none lost; bad bytes are refused with our error."""

from __future__ import annotations

import msgspec
import pytest

from bench import alerts as workload
from core.alerts import AlertFired
from main_api.alerts import AlertEvaluator, SnapshotError

NAMES = workload.instruments(3)
SPECS = workload.synthetic_alerts(900, NAMES)
BATCHES = workload.random_walk(6_000, NAMES, 100, 3_000, step_bp=0.5)


def uninterrupted() -> list[AlertFired]:
    return workload.run(AlertEvaluator(), SPECS, BATCHES)


def with_restarts(at: set[int]) -> list[AlertFired]:
    """The same run, the evaluator rebuilt from its snapshot before each batch in ``at``."""
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS)
    fired = []
    for i, batch in enumerate(BATCHES):
        if i in at:
            evaluator = AlertEvaluator.from_snapshot(evaluator.snapshot())
        fired.extend(evaluator.step(batch))
    return fired


def test_restarts_from_snapshots_fire_exactly_what_one_run_fires() -> None:
    clean = uninterrupted()
    assert len(clean) > 200
    assert len({event.fire_id for event in clean}) == len(clean)
    assert with_restarts({1}) == clean
    assert with_restarts({7, 30, 31, 59}) == clean
    assert with_restarts(set(range(len(BATCHES)))) == clean


def test_a_replay_from_a_snapshot_repeats_the_same_firings() -> None:
    """What a processor does after a crash: back to the stored snapshot and its offset, then
    the same inputs again give the same fire ids (which consumers drop as repeats)."""
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS)
    for batch in BATCHES[:20]:
        evaluator.step(batch)
    saved = evaluator.snapshot()
    first = [event for batch in BATCHES[20:40] for event in evaluator.step(batch)]
    evaluator.restore(saved)
    assert [event for batch in BATCHES[20:40] for event in evaluator.step(batch)] == first


def test_a_snapshot_is_deterministic_and_survives_a_round_trip() -> None:
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS)
    for batch in BATCHES[:25]:
        evaluator.step(batch)
    saved = evaluator.snapshot()
    assert AlertEvaluator.from_snapshot(saved).snapshot() == saved


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "bad evaluator snapshot"),
        (
            msgspec.msgpack.encode(
                {"type": "alert-evaluator", "v": 3, "alerts": [], "streams": []}
            ),
            "version 3, not 2",
        ),
        (msgspec.msgpack.encode({"type": "other"}), "bad evaluator snapshot"),
    ],
)
def test_bytes_that_are_not_a_snapshot_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(SnapshotError, match=reason):
        AlertEvaluator.from_snapshot(data)
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS[:3])
    before = evaluator.snapshot()
    with pytest.raises(SnapshotError, match=reason):
        evaluator.restore(data)
    assert evaluator.snapshot() == before


def test_a_version_1_snapshot_is_read_and_fires_what_the_run_it_came_from_fires() -> None:
    """Version 1 (one blob, the timers in each stream) as an earlier release stored it."""
    evaluator = AlertEvaluator()
    evaluator.apply_changes(SPECS)
    for batch in BATCHES[:25]:
        evaluator.step(batch)
    now = msgspec.msgpack.decode(evaluator.snapshot())
    v1 = {
        "type": "alert-evaluator",
        "v": 1,
        "specs": [row[0] for row in now["alerts"]],
        "states": [[row[0]["alert_id"], row[1]] for row in now["alerts"]],
        "streams": [[*stream, [], []] for stream in now["streams"]],  # due, expiry
    }
    restored = AlertEvaluator.from_snapshot(msgspec.msgpack.encode(v1))
    assert restored.snapshot() == evaluator.snapshot()
    rest = BATCHES[25:200]
    fired = [e for b in rest for e in evaluator.step(b)]
    assert fired
    assert [e for b in rest for e in restored.step(b)] == fired
