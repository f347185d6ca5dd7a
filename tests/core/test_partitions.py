"""The account-to-partition mapping (``core.partitions``): ``account % N == I``, the same
arithmetic HAProxy's ``mod`` does at the edge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.partitions import EVERY_ACCOUNT, MAX_PARTITIONS, Partition, PartitionError

accounts = st.integers(min_value=0, max_value=2**63 - 1)
counts = st.integers(min_value=1, max_value=MAX_PARTITIONS)


@given(accounts, counts)
def test_every_account_has_exactly_one_owner_the_remainder(account: int, count: int) -> None:
    owners = [index for index in range(count) if Partition(index, count).owns(account)]
    assert owners == [account % count]
    assert Partition(0, count).owner(account) == Partition(account % count, count)


def test_the_mapping_is_the_remainder() -> None:
    assert [a for a in range(10) if Partition(1, 2).owns(a)] == [1, 3, 5, 7, 9]
    assert [a for a in range(10) if Partition(0, 3).owns(a)] == [0, 3, 6, 9]
    assert Partition(1, 2).owns(2**63 - 1)  # the largest account id, odd
    assert all(EVERY_ACCOUNT.owns(a) for a in (0, 1, 2, 2**63 - 1))


def test_a_partition_is_parsed_from_i_slash_n() -> None:
    assert Partition.parse("1/2") == Partition(1, 2)
    assert Partition.parse(" 0/1 ") == EVERY_ACCOUNT
    assert str(Partition(3, 8)) == "3/8"
    assert Partition.parse(str(Partition(3, 8))) == Partition(3, 8)


@pytest.mark.parametrize(
    "text", ["", "1", "2/2", "0/0", "-1/2", "1/-2", "a/b", "1/2/3", "0/65", "0/1000", "1 /2x"]
)
def test_a_bad_partition_is_refused_naming_it(text: str) -> None:
    with pytest.raises(PartitionError) as refused:
        Partition.parse(text)
    assert "partition" in str(refused.value)


@pytest.mark.parametrize(("index", "count"), [(0, 0), (2, 2), (-1, 2), (0, MAX_PARTITIONS + 1)])
def test_a_partition_out_of_range_is_refused(index: int, count: int) -> None:
    with pytest.raises(PartitionError):
        Partition(index, count)


def test_names_keep_their_unpartitioned_form_for_0_of_1() -> None:
    assert EVERY_ACCOUNT.whole
    assert EVERY_ACCOUNT.suffix() == ""
    assert Partition(1, 2).suffix() == ".p1of2"
    assert not Partition(0, 2).whole


def test_a_name_made_from_a_base_gives_its_partition_back() -> None:
    base = "outbox:trading.events"
    for partition in (EVERY_ACCOUNT, Partition(0, 2), Partition(2, 3)):
        assert Partition.named(base + partition.suffix(), base) == partition
    for other in ("outbox:other", base + "x", base + ".p2of2", base + ".p0of2.p0of2", base[:-1]):
        assert Partition.named(other, base) is None, other
