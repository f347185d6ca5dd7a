"""Which partition a key goes to: Kafka's default partitioner, so both adapters agree.

``partition_for(key, n)`` is ``(murmur2(key) & 0x7fffffff) % n``, exactly what the Java client
(and kafka-python, aiokafka, librdkafka with ``partitioner=murmur2_random``) computes, and
independent of ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import functools
from typing import Final

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data``, as an unsigned int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@functools.lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (cached: keys are few and repeat)."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
