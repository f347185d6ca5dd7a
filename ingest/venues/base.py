"""The contract between the venue runtime and each venue's protocol.

A venue protocol is sans-I/O: it builds the connection URL and the subscribe frames, and turns
each frame the venue sends into domain ticks (its msgspec structs stay inside its own
package). The runtime (``ingest.venues.runtime``) owns the socket: it connects, subscribes,
pumps frames through :meth:`VenueProtocol.parse`, sends the replies, watches heartbeats,
reconnects with backoff, drops repeated trades and turns what it could not see into
:class:`core.gaps.FeedGap` markers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol

from core.instruments import make_instrument
from core.ticks import Tick

MAX_BAD_PAYLOAD: Final = 2048
"""The most characters of a bad frame kept with its reject."""


def websocket_url(url: str, what: str = "a venue URL") -> str:
    """``url`` if it is a WebSocket URL (``ws://`` or ``wss://``), else ``ValueError``."""
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(f"{what} must start with ws:// or wss://, got {url!r}")
    return url


def normalised(symbol: str, pattern: re.Pattern[str], wanted: str) -> str:
    """``symbol`` trimmed and in upper case, if ``pattern`` then matches it whole; else
    ``ValueError``: ``wanted``, and what came."""
    upper = symbol.strip().upper()
    if pattern.fullmatch(upper) is None:
        raise ValueError(f"{wanted}, got {symbol!r}")
    return upper


class KnownSymbols:
    """The symbols a protocol instance was given, in the venue's form (``normalise``), and
    their instrument ids; a trade of any other symbol is a bad frame."""

    def __init__(self, venue: str, normalise: Callable[[str], str]) -> None:
        self._venue = venue
        self._normalise = normalise
        self._instruments: dict[str, str] = {}

    def instrument(self, symbol: str) -> str:
        """The instrument id of ``symbol``, known or not."""
        return make_instrument(self._venue, self._normalise(symbol))

    def learn(self, symbols: Iterable[str]) -> list[str]:
        """``symbols`` in the venue's form, each known from now on."""
        names = [self._normalise(symbol) for symbol in symbols]
        for name in names:
            self._instruments.setdefault(name, make_instrument(self._venue, name))
        return names

    def get(self, name: str) -> str | None:
        """The instrument id of a known symbol (as the venue writes it), else None."""
        return self._instruments.get(name)

    def __len__(self) -> int:
        return len(self._instruments)


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame (or a part of one) the protocol refused: ``detail`` names the field and why."""

    reason: str
    detail: str
    payload: str

    @classmethod
    def of(cls, reason: str, detail: str, frame: str | bytes) -> BadFrame:
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        return cls(reason, detail, text[:MAX_BAD_PAYLOAD])


@dataclass(frozen=True, slots=True)
class LatestTrade:
    """The venue's word, without the trade itself, that ``instrument``'s trades are numbered
    up to ``trade_id`` at venue time ``ts_event`` (UTC ns): a Coinbase heartbeat's
    ``last_trade_id``. A trade id beyond the highest one the feed saw means trades were
    missed, even when no later trade comes to show the hole."""

    instrument: str
    trade_id: int
    ts_event: int


@dataclass(slots=True)
class Parsed:
    """What one frame held.

    ``ticks`` are in the frame's order. ``snapshot`` marks trades the venue re-sends on
    (re)subscribing, which may repeat trades already seen. ``latest`` are the venue's latest
    trade ids where it states them without trades (heartbeats). ``alive`` is any sign of life
    without trades (a heartbeat, an acknowledgement). ``replies`` are frames to send back
    (application-level pongs). ``error`` is an error the venue reported, e.g. a refused
    subscription: the runtime logs it and reconnects.
    """

    ticks: list[Tick] = field(default_factory=list)
    bad: list[BadFrame] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    latest: list[LatestTrade] = field(default_factory=list)
    snapshot: bool = False
    alive: bool = False
    error: str | None = None


class VenueProtocol(Protocol):
    """One venue's wire protocol, without I/O.

    ``contiguous_trade_ids``: the venue numbers each instrument's trades 1, 2, 3, ... with no
    holes (Binance aggTrade and trade ids, Coinbase match trade ids, Kraken v2 trade ids), so
    a hole that does not fill in time is a gap.

    ``stale_after``: the default of :attr:`VenueSettings.stale_after
    <ingest.venues.settings.VenueSettings.stale_after>`: seconds without any frame after
    which the connection counts as dead, for a venue that sends application heartbeats
    (Kraken, Coinbase: about one a second); ``None`` for a venue that may stay silent for any
    time (Binance: no heartbeat, a quiet symbol sends nothing), where only WebSocket pings
    tell a dead connection.
    """

    name: ClassVar[str]
    default_url: ClassVar[str]
    contiguous_trade_ids: ClassVar[bool]
    stale_after: ClassVar[float | None]

    def instrument(self, symbol: str) -> str:
        """The platform's instrument id for a venue symbol, e.g. ``BINANCE:BTCUSDT``."""
        ...

    def connect_url(self, base_url: str, symbols: Sequence[str]) -> str:
        """The URL to open for ``symbols`` (a combined-stream URL where the venue has one)."""
        ...

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        """Frames to send right after connecting (may be empty when the URL subscribes)."""
        ...

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """One frame from the venue; ``recv_ns`` (wall clock) becomes the ticks' ``ts_recv``.

        Never raises on bad input: what cannot be read becomes :class:`BadFrame` entries.
        """
        ...
