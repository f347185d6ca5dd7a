"""Feed-gap notices, sans I/O: what the gateway remembers of recent gaps, and which of them a
client is told about when (``docs/protocol.md``, "Feed gaps").

A feed gap concerns an instrument, not a channel: every client subscribed to any channel of
the instrument is told once, by one ``gap`` message. So a notice takes no sequence number (a
client's channel numbers stay gapless, whichever of its channels it would have counted in)
and no place in a channel's replay buffer or candle cache: it cannot push candle updates out
of either, and as a frame of the client's own in a lagging client's queue it is never
conflated. Instead each notice records its *position* in every channel of the instrument: the
channel's sequence number when the notice came. A client that resumes a channel after
``seq`` is told every remembered notice at a position of ``seq`` or later (it may have seen
the one right at ``seq`` already, it cannot have seen a later one); a snapshot is followed by
the notices that reach into its items or came after its last update. Each instrument's newest
``keep`` notices are remembered.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from core.gaps import FeedGap
from ws_gateway.wire import ChannelKey, gap_message


class GapNotice:
    """One feed gap as the gateway tells it: encoded and framed once for every client.

    ``number`` rises with every notice of the gateway; a connection remembers the numbers it
    was sent, so that it is told each notice once however many of the instrument's channels it
    holds. ``positions`` maps each channel of the instrument that existed when the notice came
    to its sequence number then (a channel made later counts from 0).
    """

    __slots__ = ("end_ns", "frame", "instrument", "number", "positions", "reason", "start_ns")

    def __init__(
        self, number: int, gap: FeedGap, frame: bytes, positions: dict[ChannelKey, int]
    ) -> None:
        self.number = number
        self.instrument = gap.instrument
        self.start_ns = gap.start_ns
        self.end_ns = gap.end_ns
        self.reason = gap.reason
        self.frame = frame
        self.positions = positions

    def position(self, key: ChannelKey) -> int:
        """The sequence number ``key`` had when this notice came: it follows that message."""
        return self.positions.get(key, 0)

    def same_gap(self, gap: FeedGap) -> bool:
        return (self.start_ns, self.end_ns, self.reason) == (gap.start_ns, gap.end_ns, gap.reason)

    def concerns(self, key: ChannelKey, after: int, since_ns: int | None = None) -> bool:
        """Whether a client of channel ``key`` should hear of this notice: it came at or after
        position ``after``, or its span ends after ``since_ns`` (the oldest time of the data
        the client is sent; None: no data)."""
        if self.position(key) >= after:
            return True
        return since_ns is not None and self.end_ns > since_ns


class GapNotices:
    """The newest ``keep`` notices of each instrument, oldest first."""

    def __init__(self, keep: int, framing: Callable[[bytes], bytes]) -> None:
        if keep < 1:
            raise ValueError(f"keep must be positive, got {keep}")
        self.keep = keep
        self.framing = framing
        self._notices: dict[str, deque[GapNotice]] = {}
        self._numbers = itertools.count(1)
        self.repeated = 0
        """Gaps not told again: the same span and reason as a notice still remembered."""

    def add(self, gap: FeedGap, positions: Iterable[tuple[ChannelKey, int]]) -> GapNotice | None:
        """Remember ``gap`` at ``positions`` (each channel's current seq); None when a notice of
        the same span and reason is remembered already (the bus delivered it twice)."""
        held = self._notices.get(gap.instrument)
        if held is None:
            held = self._notices[gap.instrument] = deque(maxlen=self.keep)
        elif any(notice.same_gap(gap) for notice in held):
            self.repeated += 1
            return None
        frame = self.framing(gap_message(gap))
        notice = GapNotice(next(self._numbers), gap, frame, dict(positions))
        held.append(notice)
        return notice

    def of(self, instrument: str) -> Sequence[GapNotice]:
        """The instrument's remembered notices, oldest first (do not change the result)."""
        return self._notices.get(instrument, ())

    def numbers(self, instrument: str) -> set[int]:
        return {notice.number for notice in self.of(instrument)}


class Told:
    """Which notices one connection was sent, per instrument: each is sent once.

    Only numbers the gateway still remembers are kept (it tells no others), so each
    instrument holds at most ``keep`` of them; an instrument is forgotten when the connection
    drops its last channel of it.
    """

    __slots__ = ("_numbers", "notices")

    def __init__(self, notices: GapNotices) -> None:
        self.notices = notices
        self._numbers: dict[str, set[int]] = {}

    def first_time(self, notice: GapNotice) -> bool:
        """True (and noted) when ``notice`` was not sent to this connection yet."""
        sent = self._numbers.get(notice.instrument)
        if sent is None:
            self._numbers[notice.instrument] = {notice.number}
            return True
        if notice.number in sent:
            return False
        sent.add(notice.number)
        if len(sent) > self.notices.keep:
            sent &= self.notices.numbers(notice.instrument)
        return True

    def forget(self, instrument: str) -> None:
        self._numbers.pop(instrument, None)

    def held(self, instrument: str) -> int:
        """How many numbers are kept for ``instrument`` (for tests of the bound)."""
        return len(self._numbers.get(instrument, ()))
