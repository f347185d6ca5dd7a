"""The alert evaluator's processor, its pure half: which alerts each partition's evaluator
holds, and the step that feeds a decoded batch to them.

The evaluator consumes ``md.ticks`` (tick batches, feed gaps) and ``md.candles`` in one
consumer group. Both topics are keyed by instrument (``md.candles`` by ``INSTRUMENT|interval``),
so one stream of prices lives in one partition: the processor keeps one
:class:`~main_api.alerts.AlertEvaluator` per ``(topic, partition)`` it is assigned
(:class:`PartitionState`), holding the alerts whose stream is there (:func:`belongs`). A
partition's state moves between instances with the partition: it is stored with the next
offset it covers and the last alert change it applied (:mod:`main_api.alerts.states`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from core.alerts import AlertFired, AlertSpec, Source
from core.topics import CANDLES, TICKS
from main_api.alerts.evaluator import AlertEvaluator
from main_api.changes import AlertGone
from streams.partitioning import partition_for
from streams.processor import Batch, Outcome

EVALUATOR_GROUP = "alerts.evaluator"
TOPICS = (TICKS, CANDLES)


@dataclass(slots=True)
class PartitionState:
    """One assigned partition's evaluator: the next offset it covers, the last alert change
    applied (``change_seq``) and the claim (``epoch``) under which it is stored."""

    topic: str
    partition: int
    evaluator: AlertEvaluator
    next_offset: int
    change_seq: int
    epoch: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


def stream_key(spec: AlertSpec) -> tuple[str, bytes]:
    """The topic and the message key of the prices ``spec`` watches."""
    if spec.source is Source.CANDLES:
        return CANDLES, f"{spec.instrument}|{spec.interval}".encode()
    return TICKS, spec.instrument.encode()


def belongs(spec: AlertSpec, topic: str, partition: int, partitions: int) -> bool:
    """Whether ``spec``'s prices are in ``partition`` of ``topic`` (of ``partitions``)."""
    spec_topic, key = stream_key(spec)
    return spec_topic == topic and partition_for(key, partitions) == partition


def apply_to(
    state: PartitionState,
    changes: Iterable[AlertSpec | AlertGone],
    partitions: int,
    fired: Mapping[str, int],
) -> None:
    """Apply a batch of the change feed to one partition's evaluator: the active alerts whose
    stream is in its partition; every other change removes the alert (an alert moved to
    another stream, deleted, done). Applying a batch again changes nothing."""
    specs: list[AlertSpec] = []
    gone: list[str] = []
    for change in changes:
        if isinstance(change, AlertSpec) and belongs(
            change, state.topic, state.partition, partitions
        ):
            specs.append(change)
        else:
            gone.append(change.alert_id)
    state.evaluator.apply_changes(specs, gone, fired)


@dataclass(slots=True)
class Evaluated:
    """A round's effects: the firings, in input order, with the partition each came from
    (``origins``), and the partitions whose state moved (with the next offset each covers
    now)."""

    fired: list[AlertFired] = field(default_factory=list)
    moved: dict[tuple[str, int], int] = field(default_factory=dict)
    undecodable: int = 0
    origins: list[tuple[str, int]] = field(default_factory=list)

    def drop(self, keys: Collection[tuple[str, int]]) -> None:
        """Forget what the round did to the partitions ``keys`` (their states are dropped
        unstored: a rebalance took them in the middle of the round)."""
        for key in keys:
            self.moved.pop(key, None)
        kept = [(f, key) for f, key in zip(self.fired, self.origins, strict=True)
                if key not in keys]  # fmt: skip
        self.fired = [f for f, _ in kept]
        self.origins = [key for _, key in kept]


def evaluate(states: Mapping[tuple[str, int], PartitionState], batch: Batch) -> Outcome[Evaluated]:
    """The pure step: each decoded message to its partition's evaluator, in order. It
    publishes nothing itself: the firings are stored with the states, and the relay publishes
    them on ``alerts.events`` after the commit (:mod:`main_api.alerts.relay`). A record its
    codec refused is only counted (the candle engine rejects bad ticks)."""
    effects = Evaluated()
    for record, message in zip(batch.records, batch.messages, strict=True):
        state = states[(record.topic, record.partition)]
        if message is not None:
            fired = state.evaluator.step(message)
            if fired:
                effects.fired.extend(fired)
                effects.origins.extend([state.key] * len(fired))
        else:
            effects.undecodable += 1
        state.next_offset = record.offset + 1
        effects.moved[state.key] = state.next_offset
    return Outcome([], effects)
