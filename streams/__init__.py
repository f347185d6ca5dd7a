"""The bus and the stream processors.

:mod:`streams.bus` defines the interface (``Bus``, ``Topic``, ``Subscription``, ``Record``) and
its Kafka-like semantics; :mod:`streams.memory` is the in-process adapter of embedded mode.
:mod:`streams.processor` is the one loop every consumer runs (poll, decode, a pure step,
publish, make durable, commit). Message values are encoded by :mod:`core.codecs`, each
topic's through its entry in :mod:`core.topic_codecs`; topic names are in :mod:`core.topics`.
"""

from streams.bus import (
    Bus,
    BusClosedError,
    BusError,
    CommitFailedError,
    MessageTooLargeError,
    Offsets,
    Record,
    Start,
    Subscription,
    Topic,
    TopicPartition,
    next_offsets,
)
from streams.partitioning import partition_for

__all__ = [
    "Bus",
    "BusClosedError",
    "BusError",
    "CommitFailedError",
    "MessageTooLargeError",
    "Offsets",
    "Record",
    "Start",
    "Subscription",
    "Topic",
    "TopicPartition",
    "next_offsets",
    "partition_for",
]
