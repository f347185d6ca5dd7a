"""The sans-I/O core of event sourcing: an aggregate is an id, a version and the fold of its
events. Nothing here touches a database; the shells in this package feed it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from trading.store.errors import InvalidAppendError

E = TypeVar("E")
S = TypeVar("S")

Apply = Callable[[S | None, E], S]
"""The pure fold step: the state after one more event (``None`` before the first event)."""

MAX_APPEND = 1000
"""Events one append may carry (a command produces a handful; more is a bug upstream)."""


@dataclass(frozen=True, slots=True)
class Versioned(Generic[E]):
    """An event with its aggregate and its place in that aggregate's sequence (from 1)."""

    aggregate_id: str
    version: int
    event: E


@dataclass(frozen=True, slots=True)
class Aggregate(Generic[S]):
    """An aggregate's state after ``version`` events (``None`` and 0: it has none yet)."""

    id: str
    version: int
    state: S | None


def fold(apply: Apply[S, E], start: Aggregate[S], events: Iterable[Versioned[E]]) -> Aggregate[S]:
    """``start`` with ``events`` applied in order; each must be the next version."""
    state, version = start.state, start.version
    for item in events:
        if item.version != version + 1:
            raise InvalidAppendError(
                f"aggregate {start.id!r}: version {item.version} follows {version}"
            )
        state, version = apply(state, item.event), item.version
    return Aggregate(start.id, version, state)


def numbered(aggregate_id: str, expected_version: int, events: Sequence[E]) -> list[Versioned[E]]:
    """``events`` as the versions after ``expected_version``; refuses what cannot be stored."""
    if not aggregate_id or len(aggregate_id) > 200:
        raise InvalidAppendError("an aggregate id has 1 to 200 characters")
    if expected_version < 0:
        raise InvalidAppendError(f"expected version {expected_version} is below 0")
    if not 1 <= len(events) <= MAX_APPEND:
        raise InvalidAppendError(f"an append carries 1 to {MAX_APPEND} events, not {len(events)}")
    return [
        Versioned(aggregate_id, expected_version + offset, event)
        for offset, event in enumerate(events, start=1)
    ]


def snapshot_due(every: int, before: int, after: int) -> bool:
    """Whether an append from version ``before`` to ``after`` crossed a multiple of ``every``
    (0: never snapshot)."""
    return every > 0 and after // every > before // every
