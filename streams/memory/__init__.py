"""The in-process bus adapter: Kafka's semantics in one process's memory (embedded mode).

``MemoryBus`` keeps each partition as a bounded list. A partition retains its records from the
lowest offset that an active consumer group (one with members) still needs, that group's
committed offset or, before its first commit, where it started; ``publish`` waits while more
than ``capacity`` records are retained past it, so one slow group holds publishers back (never
other groups' reads) until it commits. A group without members holds nothing back: when a
member joins it again, it resumes from its committed offsets, or from the oldest record kept
if those were dropped meanwhile (logged as a warning).

Beyond the Kafka contract: a partition that moves to another member of a group is read from the
group's committed offset or, without one, from where the group started (never skipped, even
with ``start="latest"``); members keep their read positions for the partitions they keep.
"""

from streams.memory.bus import MemoryBus, MemorySubscription, MemoryTopic

__all__ = ["MemoryBus", "MemorySubscription", "MemoryTopic"]
