"""The feed gaps the engine remembers: per instrument, the union of the gaps' spans.

Only the union matters for flags (a candle is flagged when its interval meets any gap), so
overlapping and touching spans are merged and a gap sent twice leaves the memory as it was.
The memory is kept apart from the instruments' candle state because a gap may come before
the instrument's first tick, when its scales are not known yet.

The engine forgets a span once no candle it meets can change any more (behind the horizon).
An instrument that has no ticks yet has no clock to judge that by, so its spans stay; lest
they pile up, past :data:`MAX_SPANS` the two oldest merge into one. That flags the candles
between them too: more caution than the gaps asked for, never less.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

Span = tuple[int, int]
"""A half-open span of venue time ``[start_ns, end_ns)``."""

MAX_SPANS = 1024
"""The most spans kept per instrument (see the module text)."""

_TIME_END = 2**63
"""Past every tick's ``ts_event`` (int64): later span ends mean nothing more."""


def _end(span: Span) -> int:
    return span[1]


def _start(span: Span) -> int:
    return span[0]


def meets(spans: list[Span], start_ns: int, end_ns: int) -> bool:
    """Whether ``[start_ns, end_ns)`` meets one of ``spans`` (sorted and disjoint)."""
    # the first span ending after start_ns is the only candidate
    index = bisect.bisect_right(spans, start_ns, key=_end)
    return index < len(spans) and spans[index][0] < end_ns


class GapMemory:
    """Sorted, disjoint, non-touching spans per instrument."""

    __slots__ = ("_spans",)

    def __init__(self) -> None:
        self._spans: dict[str, list[Span]] = {}

    def spans(self, instrument: str) -> list[Span]:
        """The instrument's spans in time order (empty when none): do not change the list."""
        return self._spans.get(instrument, _NONE)

    def add(self, instrument: str, start_ns: int, end_ns: int) -> None:
        """Remember ``[start_ns, end_ns)`` (merged with the spans it meets or touches)."""
        end_ns = min(end_ns, _TIME_END)  # keeps bucket bounds within int64 for numpy
        spans = self._spans.setdefault(instrument, [])
        # spans before `low` end before start_ns; spans from `high` on start after end_ns
        low = bisect.bisect_left(spans, start_ns, key=_end)
        high = bisect.bisect_right(spans, end_ns, key=_start)
        if low < high:
            start_ns = min(start_ns, spans[low][0])
            end_ns = max(end_ns, spans[high - 1][1])
        spans[low:high] = [(start_ns, end_ns)]
        if len(spans) > MAX_SPANS:
            spans[0:2] = [(spans[0][0], spans[1][1])]

    def overlaps(self, instrument: str, start_ns: int, end_ns: int) -> bool:
        """Whether ``[start_ns, end_ns)`` meets a remembered span of ``instrument``."""
        return meets(self.spans(instrument), start_ns, end_ns)

    def forget_before(self, instrument: str, floor_ns: int) -> None:
        """Drop the spans that end at or before ``floor_ns``: nothing they meet can change."""
        spans = self._spans.get(instrument)
        if not spans or spans[0][1] > floor_ns:
            return
        keep = bisect.bisect_right(spans, floor_ns, key=_end)
        if keep == len(spans):
            del self._spans[instrument]
        else:
            del spans[:keep]

    def items(self) -> Iterator[tuple[str, list[Span]]]:
        """Every instrument with spans, and its spans (for the checkpoint)."""
        return iter(self._spans.items())


_NONE: list[Span] = []
