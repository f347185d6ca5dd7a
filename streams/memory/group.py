"""Consumer groups of the in-process bus: members, partition assignment and committed offsets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from streams.bus import Start, TopicPartition
from streams.memory.log import PartitionLog


class Member(Protocol):
    """What a group needs of a subscription."""

    topics: tuple[str, ...]

    def assign(self, partitions: dict[TopicPartition, int]) -> None:
        """Take these partitions; the values are where to read from, if newly assigned."""


class Group:
    """One consumer group: its members (in join order), who owns what, and its offsets.

    ``committed`` outlives the members. ``reset`` holds, for partitions without a committed
    offset, where the group started reading: fixed when the group becomes active (its first
    member joins, or a member brings a new topic), so that partitions moving between members
    are read again from there (at least once), and forgotten when the last member leaves.
    """

    def __init__(self, name: str, log_of: Callable[[TopicPartition], PartitionLog]) -> None:
        self.name = name
        self._log_of = log_of
        self.members: list[Member] = []
        self.owner: dict[TopicPartition, Member] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.reset: dict[TopicPartition, int] = {}

    @property
    def active(self) -> bool:
        return bool(self.members)

    @property
    def topics(self) -> set[str]:
        return {topic for member in self.members for topic in member.topics}

    def resume_at(self, tp: TopicPartition) -> int:
        """Where the group reads ``tp`` from: committed, else where it started (maybe gone)."""
        offset = self.committed.get(tp)
        if offset is None:
            offset = self.reset.get(tp)
        return self._log_of(tp).base if offset is None else offset

    def floor(self, tp: TopicPartition) -> int:
        """The lowest offset the group still needs in ``tp`` (not older than the log)."""
        return max(self.resume_at(tp), self._log_of(tp).base)

    def join(self, member: Member, partitions: Iterable[TopicPartition], start: Start) -> None:
        """Add ``member``; its topics' ``partitions`` without an offset start at ``start``."""
        for tp in partitions:
            if tp not in self.committed and tp not in self.reset:
                log = self._log_of(tp)
                self.reset[tp] = log.base if start == "earliest" else log.end
        self.members.append(member)
        self._rebalance()

    def leave(self, member: Member) -> None:
        self.members.remove(member)
        if not self.members:
            self.reset.clear()
        self._rebalance()

    def _rebalance(self) -> None:
        """Round-robin the partitions (sorted) over the members subscribed to their topic."""
        owned: dict[Member, dict[TopicPartition, int]] = {member: {} for member in self.members}
        owner: dict[TopicPartition, Member] = {}
        turn = 0
        for tp in sorted(self.reset.keys() | self.committed.keys()):
            eligible = [member for member in self.members if tp.topic in member.topics]
            if not eligible:
                continue
            member = eligible[turn % len(eligible)]
            turn += 1
            owner[tp] = member
            owned[member][tp] = self.resume_at(tp)
        self.owner = owner
        for member, partitions in owned.items():
            member.assign(partitions)
