"""One ``md.ticks`` partition's candle engine, driven in journaled steps. No I/O.

:class:`PartitionEngine` decides the next :class:`~streams.kafka.journal.Step`, applies steps
(live or replayed from the journal) and tells which journal entries a recovery must follow;
the worker shell does the reading and writing (see :mod:`streams.kafka.journal`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.engine import CandleEngine, EngineConfig
from streams.bus import Record
from streams.engine_runner import EngineStats, Message, engine_step
from streams.kafka.journal import JOINED_FROM, Claim, Entry, PartitionCheckpoint, Step
from streams.processor import Batch, decode_batch

log = logging.getLogger(__name__)


class GapError(Exception):
    """Records arrived that do not follow the last applied offset: the shell must fetch
    ``[start, end)`` first."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(f"records {start}..{end - 1} are missing")
        self.start = start
        self.end = end


@dataclass(slots=True)
class PartitionEngine:
    """The engine of one partition, with where it stands in the log and in the journal."""

    group: str
    partition: int
    engine: CandleEngine
    epoch: int = 0
    seq: int = 0
    applied: int | None = None
    journal_next: int = 0
    stats: EngineStats = field(default_factory=EngineStats)

    @classmethod
    def fresh(cls, group: str, partition: int, config: EngineConfig) -> PartitionEngine:
        return cls(group, partition, CandleEngine(config))

    @classmethod
    def restore(cls, checkpoint: PartitionCheckpoint, config: EngineConfig) -> PartitionEngine:
        if checkpoint.engine:
            engine = CandleEngine.restore(checkpoint.engine, config)
        else:
            engine = CandleEngine(config)
        return cls(
            checkpoint.group,
            checkpoint.partition,
            engine,
            checkpoint.epoch,
            checkpoint.seq,
            checkpoint.applied,
            checkpoint.journal_next,
        )

    def checkpoint(self) -> PartitionCheckpoint:
        return PartitionCheckpoint(
            group=self.group,
            partition=self.partition,
            epoch=self.epoch,
            seq=self.seq,
            applied=self.applied,
            journal_next=self.journal_next,
            engine=self.engine.checkpoint(),
        )

    @property
    def idle_ready(self) -> bool:
        """Whether a step without records would do anything (some instrument is known)."""
        return self.applied is not None and bool(self.engine.instruments)

    # -- live -------------------------------------------------------------------------------

    def fresh_records(self, records: Sequence[Record]) -> list[Record]:
        """The records not applied yet, in order; raises :class:`GapError` when some before
        them are missing (the shell fetches those and calls again)."""
        fresh = [r for r in records if self.applied is None or r.offset >= self.applied]
        fresh.sort(key=lambda r: r.offset)
        if fresh and self.applied is not None and fresh[0].offset > self.applied:
            raise GapError(self.applied, fresh[0].offset)
        for before, after in itertools.pairwise(fresh):
            if after.offset != before.offset + 1:
                raise GapError(before.offset + 1, after.offset)
        return fresh

    def next_step(self, records: Sequence[Record], now_ns: int) -> Step:
        """The step that feeds ``records`` (contiguous, from :meth:`fresh_records`).

        A step with records moves idle instruments on by the receipt times fed: more records
        may be waiting behind them. A step without records moves them by the wall clock
        ``now_ns``: take it only once the partition is read to its end.
        """
        if records:
            start, end = records[0].offset, records[-1].offset + 1
        else:
            if self.applied is None:
                raise ValueError("a step without records needs a partition that has started")
            start = end = self.applied
        return Step(
            self.group, self.partition, self.epoch, self.seq, start, end, now_ns,
            caught_up=not records,
        )  # fmt: skip

    def apply(self, step: Step, records: Sequence[Record], journal_offset: int) -> list[Message]:
        """Run ``step`` on its records (a replay: not decoded yet); the step is at
        ``journal_offset`` in the journal."""
        messages = self.run(step, decode_batch(records, self.group))
        self.journaled(journal_offset)
        return messages

    def run(self, step: Step, batch: Batch) -> list[Message]:
        """Run ``step`` on its decoded records (the live path: the processor loop decoded
        them); :meth:`journaled` says where the step went in the journal. Each instrument's
        tick batches are fed joined when the step's version says so (a replay of an older
        entry feeds them one by one, as its worker did)."""
        if len(batch.records) != step.end - step.start:
            raise ValueError(f"step {step.seq} needs {step.end - step.start} records")
        messages = engine_step(
            self.engine, batch, step.now_ns, self.stats, self.group,
            caught_up=step.caught_up, join=step.v >= JOINED_FROM,
        )  # fmt: skip
        self.applied = step.end
        self.seq = step.seq + 1
        return messages

    def journaled(self, journal_offset: int) -> None:
        """The step run last is at ``journal_offset`` in the journal."""
        self.journal_next = journal_offset + 1

    def claim(self) -> Claim:
        """The entry that makes this worker the owner: the next epoch, from here on."""
        return Claim(self.group, self.partition, self.epoch + 1, self.seq, self.applied)

    def claimed(self, claim: Claim, journal_offset: int) -> None:
        self.epoch = claim.epoch
        self.journal_next = journal_offset + 1

    # -- recovery ---------------------------------------------------------------------------

    def follows(self, entry: Entry, journal_offset: int) -> bool:
        """Whether a recovery applies ``entry`` (found at ``journal_offset``), in log order.

        A claim of a higher epoch is adopted at once; a step must be the next one of the
        current epoch and start where the engine stands. Anything else (an older owner's
        late step, another group's entry) is skipped.
        """
        if entry.group != self.group or entry.partition != self.partition:
            return False
        if isinstance(entry, Claim):
            if entry.epoch > self.epoch and entry.seq == self.seq:
                self.claimed(entry, journal_offset)
            else:
                log.warning("journal %d: skipping stale claim %s", journal_offset, entry)
            return False
        if entry.epoch != self.epoch or entry.seq != self.seq:
            log.warning("journal %d: skipping step %s (engine at epoch %d, step %d)",
                        journal_offset, entry, self.epoch, self.seq)  # fmt: skip
            return False
        if self.applied is not None and entry.start != self.applied:
            log.warning("journal %d: skipping step %s (engine at offset %d)",
                        journal_offset, entry, self.applied)  # fmt: skip
            return False
        return True
