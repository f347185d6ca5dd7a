"""Settings of one live venue feed: one frozen object, built at the edge and passed down."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ingest.venues.base import websocket_url

_NS_PER_SECOND = 1_000_000_000
_ZERO_OK = frozenset({"gap_grace", "batch_wait", "stale_after"})


@dataclass(frozen=True, slots=True)
class VenueSettings:
    """How a :class:`~ingest.venues.runtime.VenueFeed` connects, waits, retries and batches.

    Durations are seconds.

    - ``url``: the venue's WebSocket base URL; ``None`` means the protocol's ``default_url``
      (tests point it at a local fake venue).
    - ``ping_interval``, ``ping_timeout``: WebSocket pings; no pong within the timeout means
      the connection is dead.
    - ``stale_after``: no frame at all for this long means the connection is dead, even when
      pings are answered (a subscription can die silently). ``None`` takes the venue's own
      default (its protocol's ``stale_after``: a few seconds where the venue sends heartbeats,
      none on Binance, which has none); 0 turns the timer off, leaving the WebSocket pings.
    - ``open_timeout``, ``close_timeout``: the opening and closing handshakes.
    - ``backoff_initial``, ``backoff_max``: reconnect delays grow from the first to the cap,
      each drawn with full jitter; ``healthy_after``: a connection that lived this long starts
      the next round of delays from the beginning again.
    - ``gap_grace`` (may be 0): how long a hole in the trade numbering may wait for its
      trades (they may come reordered, or in the snapshot after a reconnect) before it
      becomes a feed gap.
    - ``dedupe_window``: trade ids remembered per instrument where the venue's ids have holes
      by design (venues with contiguous ids need no window).
    - ``batch_max``, ``batch_wait``: a batch of one instrument's ticks goes out when it holds
      ``batch_max`` ticks or its first tick has waited ``batch_wait`` (0: at once).
    - ``queue_bound``: events held for a slow consumer before the feed stops reading.
    - ``max_frame_bytes``: the largest frame accepted from the venue.
    - ``proxy``: an HTTP or SOCKS proxy URL for the connection; ``None`` connects directly.
    """

    url: str | None = None
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    stale_after: float | None = None
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    healthy_after: float = 60.0
    gap_grace: float = 2.0
    dedupe_window: int = 100_000
    batch_max: int = 500
    batch_wait: float = 0.05
    queue_bound: int = 1024
    max_frame_bytes: int = 1 << 20
    proxy: str | None = None

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name in ("url", "proxy") or (spec.name == "stale_after" and value is None):
                continue
            zero_ok = spec.name in _ZERO_OK
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or (value == 0 and not zero_ok)
            ):
                wanted = "a number >= 0" if zero_ok else "a positive number"
                raise ValueError(f"venue setting {spec.name} must be {wanted}, got {value!r}")
        for name in ("dedupe_window", "batch_max", "queue_bound", "max_frame_bytes"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"venue setting {name} must be an integer")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("venue setting backoff_max must be at least backoff_initial")
        if self.url is not None:
            websocket_url(self.url, "venue setting url")

    def stale_timeout(self, venue_default: float | None) -> float | None:
        """The stale-feed timeout in force, seconds: ``stale_after``, else the venue's default
        (``venue_default``); ``None`` when there is no stale-feed timer."""
        value = self.stale_after if self.stale_after is not None else venue_default
        return value or None

    @staticmethod
    def ns(seconds: float) -> int:
        """Seconds as integer nanoseconds (the unit the sans-I/O parts count in)."""
        return round(seconds * _NS_PER_SECOND)
