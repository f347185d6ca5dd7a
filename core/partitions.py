"""Which instance of a partitioned service owns an account: ``account % count == index``.

Several ``mdp trading serve`` instances share the work by account (``docs/trading.md``,
"Partitions"): instance ``I/N`` serves, resumes, applies and publishes the accounts ``a`` with
``a % N == I``, and nothing else. The edge routes each request to the owner of its token's
``acct`` claim, so it must compute the same mapping: HAProxy has an integer ``mod`` converter,
and ``mod`` of a non-negative integer is the same number there as here. A hash would spread
sparse ids better, but HAProxy's hashes (``crc32``, ``djb2``, ``wt6``...) are of strings and
would have to be matched bit for bit in Python; account ids are issued in sequence, so the
remainder already spreads them evenly, and an operator can tell an account's owner at a glance.

Pure: no I/O. Shared by ``trading`` (the service) and ``edge`` (the routing), which may not
import each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_PARTITIONS: Final = 64
"""At most this many partitions (each is a process and an HAProxy backend)."""

_TEXT: Final = re.compile(r"(\d{1,3})/(\d{1,3})")
_SUFFIX: Final = re.compile(r"\.p(\d{1,3})of(\d{1,3})")


class PartitionError(ValueError):
    """A partition that is not ``I/N`` with ``0 <= I < N <= MAX_PARTITIONS``."""


@dataclass(frozen=True, slots=True)
class Partition:
    """Partition ``index`` of ``count``; the default, ``0/1``, owns every account."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS:
            raise PartitionError(f"a partition count is 1 to {MAX_PARTITIONS}, not {self.count}")
        if not 0 <= self.index < self.count:
            raise PartitionError(f"partition {self.index}/{self.count}: the index is 0 to N-1")

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``"I/N"``, as the command line gives it."""
        found = _TEXT.fullmatch(text.strip())
        if found is None:
            raise PartitionError(f"{text!r} is not a partition I/N (0/2, 1/2, ...)")
        return cls(int(found[1]), int(found[2]))

    @property
    def whole(self) -> bool:
        """Whether this partition owns every account (``0/1``)."""
        return self.count == 1

    def owns(self, account: int) -> bool:
        """Whether ``account`` is this partition's."""
        return account % self.count == self.index

    def owner(self, account: int) -> Partition:
        """The partition of ``self.count`` that owns ``account``."""
        return Partition(account % self.count, self.count)

    def suffix(self, separator: str = ".") -> str:
        """What a per-partition name (a consumer group, a reader) ends with: nothing for
        ``0/1``, so an unpartitioned service keeps its names; ``.p1of2`` otherwise."""
        return "" if self.whole else f"{separator}p{self.index}of{self.count}"

    @classmethod
    def named(cls, name: str, base: str) -> Partition | None:
        """The partition whose name :meth:`suffix` made from ``base``: ``base`` itself is
        ``0/1``, ``base.p1of2`` is ``1/2``; None for any other name."""
        if not name.startswith(base):
            return None
        suffix = name.removeprefix(base)
        if not suffix:
            return cls()
        found = _SUFFIX.fullmatch(suffix)
        if found is None:
            return None
        try:
            return cls(int(found[1]), int(found[2]))
        except PartitionError:
            return None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


EVERY_ACCOUNT: Final = Partition()
"""``0/1``: the partition of an unpartitioned service."""
