"""The candle worker's step journal and partition checkpoints: what makes a restart exact.

A worker owns partitions of ``md.ticks``; for each it runs one candle engine in *steps*. A
step feeds the records ``[start, end)`` of its partition to the engine, then moves the
engine's clock on: by the receipt times fed, or, once the partition is caught up, by the wall
clock ``now_ns``. The engine is deterministic, so the state after a run of
steps, and every candle it emitted on the way (revision numbers included), follow from the
steps alone. The worker therefore writes each :class:`Step` to the journal topic
(``mdp.engine.steps``, partition *p* for ``md.ticks`` partition *p*) and waits for the broker
to have it *before* it publishes the step's outputs, and commits ``md.ticks`` offsets only
after the outputs are published.

Recovery (a restart, or a partition moving to another worker) loads the partition's latest
:class:`PartitionCheckpoint` (engine state, the next offset and step, where its journal
continues), then replays the journal's steps after it with the same records and clocks. The
outputs of the steps replayed are those published before, so they are not sent again, except
the last step's: whether its outputs got out before the crash is unknown, and sending them
again gives byte-identical records. The new owner then writes a :class:`Claim` with a higher
epoch; steps of an older epoch found after it (a worker that lost the partition and did not
notice) are ignored by later recoveries.

Checkpoints only shorten recovery: without one, recovery replays the partition's journal
from its start (as long as the topics' retention keeps it).
"""

from __future__ import annotations

from typing import Final

import msgspec

JOURNAL_VERSION: Final = 3
"""2 added :attr:`Step.caught_up`; from 3 a step feeds each instrument's tick batches joined
(:data:`JOINED_FROM`). A worker refuses entries of a version later than its own instead of
replaying them by other rules, so the workers of a group are upgraded together (stopped,
then started on the new version; ``docs/scaling.md``)."""
READABLE_VERSIONS: Final = frozenset({1, 2, JOURNAL_VERSION})
JOINED_FROM: Final = 3
"""Steps of this version on feed each instrument's tick batches as one
(:func:`streams.engine_runner.joined`); earlier ones replay batch by batch, as they ran."""
CHECKPOINT_VERSION: Final = 1


class NewerJournalError(Exception):
    """An entry written by a newer worker: this one must not replay it by its own rules, nor
    skip it (a skipped claim would let two owners share an epoch). Not a ``ValueError``, so
    that a recovery, which steps over an unreadable entry, stops on this one."""


class Step(msgspec.Struct, frozen=True, tag="step"):
    """Feed ``md.ticks`` records ``[start, end)`` of ``partition``, then move the clock.

    ``caught_up``: the partition had been read to its end, so the wall clock ``now_ns``
    moves idle instruments on; otherwise only the receipt times fed do (entries written
    before the field existed moved it by the wall clock, and replay that way). A step of
    version :data:`JOINED_FROM` or later feeds each instrument's tick batches joined.
    """

    group: str
    partition: int
    epoch: int
    seq: int
    start: int
    end: int
    now_ns: int
    v: int = JOURNAL_VERSION
    caught_up: bool = True


class Claim(msgspec.Struct, frozen=True, tag="claim"):
    """A worker took ``partition`` over at step ``seq`` and offset ``applied``."""

    group: str
    partition: int
    epoch: int
    seq: int
    applied: int | None
    v: int = JOURNAL_VERSION


Entry = Step | Claim

_ENTRY: Final = msgspec.msgpack.Decoder(Entry)
_ENCODER: Final = msgspec.msgpack.Encoder()


def encode_entry(entry: Entry) -> bytes:
    return _ENCODER.encode(entry)


def decode_entry(data: bytes) -> Entry:
    """A journal entry; raises :class:`NewerJournalError` for one of a later version than
    this worker's, ``ValueError`` for anything else it cannot read."""
    try:
        entry: Entry = _ENTRY.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a journal entry: {exc}") from exc
    if entry.v > JOURNAL_VERSION:
        raise NewerJournalError(
            f"journal entry version {entry.v} was written by a newer worker (this one writes"
            f" {JOURNAL_VERSION}): stop this group's older workers and run the new version"
            " on all of them (docs/scaling.md)"
        )
    if entry.v not in READABLE_VERSIONS:
        raise ValueError(
            f"journal entry version {entry.v} is not one this worker reads"
            f" ({', '.join(map(str, sorted(READABLE_VERSIONS)))})"
        )
    return entry


def entry_key(group: str) -> bytes:
    """Journal records are keyed by the consumer group (one journal topic serves many)."""
    return group.encode()


class PartitionCheckpoint(msgspec.Struct, frozen=True):
    """One partition's engine as of step ``seq`` (the next to run) and offset ``applied``.

    ``journal_next`` is the journal offset where the steps after it begin.
    """

    group: str
    partition: int
    epoch: int
    seq: int
    applied: int | None
    journal_next: int
    engine: bytes
    v: int = CHECKPOINT_VERSION


_CHECKPOINT: Final = msgspec.msgpack.Decoder(PartitionCheckpoint)


def encode_checkpoint(checkpoint: PartitionCheckpoint) -> bytes:
    return _ENCODER.encode(checkpoint)


def decode_checkpoint(data: bytes) -> PartitionCheckpoint:
    try:
        checkpoint = _CHECKPOINT.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a partition checkpoint: {exc}") from exc
    if checkpoint.v != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint version {checkpoint.v} is not {CHECKPOINT_VERSION}")
    return checkpoint


def checkpoint_name(group: str, cluster_id: str, topic: str, partition: int) -> str:
    """Where a partition's checkpoint is stored: offsets mean something in one cluster only."""
    return f"{group}@{cluster_id}/{topic}/{partition}"
