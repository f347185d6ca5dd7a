"""What the repositories take and give besides ticks and candles."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from core.rejects import RejectedTick
from core.text import printable

TopicPartition = tuple[str, int]
"""``(topic, partition)``: where a consumer's offset applies."""


class Rejection(msgspec.Struct, frozen=True):
    """A refused tick as stored: instrument and trade id when known, the reason, a detail,
    and the payload (the tick as JSON, or the raw input text). ``rejected_at`` is UTC
    nanoseconds; ``None`` means when it is stored.

    Its text is fit to store whoever built it: control characters are escaped
    (:func:`core.text.printable`), so a NUL byte of the input, which PostgreSQL refuses in
    text, is stored as the four characters ``\\x00``."""

    reason: str
    detail: str = ""
    instrument: str | None = None
    trade_id: int | None = None
    payload: str | None = None
    rejected_at: int | None = None

    def __post_init__(self) -> None:
        for name in ("reason", "detail", "instrument", "payload"):
            text = getattr(self, name)
            if text is not None:
                msgspec.structs.force_setattr(self, name, printable(text))

    @classmethod
    def of(cls, rejected: RejectedTick | Rejection) -> Rejection:
        """A :class:`~core.rejects.RejectedTick` of the engine as a stored rejection."""
        if isinstance(rejected, Rejection):
            return rejected
        tick = rejected.tick
        return cls(
            reason=rejected.reason.value,
            detail=rejected.detail,
            instrument=tick.instrument,
            trade_id=tick.trade_id,
            payload=msgspec.json.encode(tick).decode(),
        )

    @property
    def key(self) -> tuple[str, int, str] | None:
        """What makes a repeated rejection the same one; ``None`` when not identified."""
        if self.instrument is None or self.trade_id is None:
            return None
        return (self.instrument, self.trade_id, self.reason)


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What one :meth:`~storage.repository.MarketDataStore.write` did."""

    ticks_written: int = 0
    ticks_duplicate: int = 0
    """Ticks already stored (same instrument, ``ts_event`` and trade id): left as they were."""
    candles_written: int = 0
    candles_ignored: int = 0
    """Candles whose stored revision was as high or higher (or superseded in the same write)."""
    rejects_written: int = 0
    gaps_written: int = 0
    gaps_duplicate: int = 0
    """Feed gaps already stored (same instrument, span and reason): left as they were."""
    replayed: bool = False
    """The offsets given were stored already: the whole write had been made, and was skipped."""
