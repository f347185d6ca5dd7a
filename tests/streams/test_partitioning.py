"""Keys go to the partition Kafka's default partitioner picks."""

from __future__ import annotations

import pytest

from streams.partitioning import murmur2, partition_for


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_matches_the_java_client(key: bytes, partition: int) -> None:
    # figures from the Java client's partitioner over 1000 partitions
    assert partition_for(key, 1000) == partition


@pytest.mark.parametrize(
    ("key", "hashed"),
    [(b"", 275646681), (b"hello", 2132663229), (b"kafka", 3496464228), (b"test", 716234879)],
)
def test_murmur2_matches_the_java_client(key: bytes, hashed: int) -> None:
    assert murmur2(key) == hashed


def test_a_topic_needs_a_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"a", 0)
