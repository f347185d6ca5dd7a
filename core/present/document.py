"""What a candle format is: a name, a media type, a file suffix and an encoder of documents.

An encoder writes one document a piece at a time: :meth:`CandleEncoder.head`, then
:meth:`CandleEncoder.candles` for each chunk, then :meth:`CandleEncoder.tail`; the pieces
joined are the document. What the document is about comes in a :class:`Document`: the
fields it carries (:data:`~core.present.text.CANDLE_FIELDS` for the history API, the table
columns for ``mdp candles``' older formats), the decimal places of each decimal column (Arrow
needs them before the first row) and, for a page of the history API, the page's envelope.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.candles import Candle
from core.present.text import CANDLE_FIELDS


@dataclass(frozen=True, slots=True)
class Scales:
    """Decimal places of each decimal column over a document."""

    price: int = 0
    size: int = 0
    quote: int = 0
    vwap: int = 0

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> Scales:
        return cls(
            price=max((c.price_scale for c in candles), default=0),
            size=max((c.size_scale for c in candles), default=0),
            quote=max((c.price_scale + c.size_scale for c in candles), default=0),
            vwap=max((c.vwap_scale for c in candles), default=0),
        )

    def of_column(self, name: str) -> int:
        if name in ("volume", "taker_buy_volume"):
            return self.size
        if name == "quote_volume":
            return self.quote
        if name == "vwap":
            return self.vwap
        return self.price


@dataclass(frozen=True, slots=True)
class PageInfo:
    """A page of one instrument's candles of one interval, as the history API serves it:
    what its envelope says besides the candles (times in UTC ns)."""

    instrument: str
    interval: str
    rolled_up_from: str | None
    start: int
    end: int
    next_cursor: str | None
    next_url: str | None


@dataclass(frozen=True, slots=True)
class Document:
    """What an encoder is asked to write: ``fields`` (in :data:`CANDLE_FIELDS` order) of
    candles whose decimals have at most ``scales`` places; ``page`` when the document is a
    page of the history API (one instrument and interval), None for a table of any candles."""

    fields: tuple[str, ...] = CANDLE_FIELDS
    scales: Scales = Scales()
    page: PageInfo | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.fields if name not in CANDLE_FIELDS]
        if unknown or list(self.fields) != sorted(self.fields, key=CANDLE_FIELDS.index):
            raise ValueError(f"fields must be candle fields in their order: {self.fields}")


class CandleEncoder(Protocol):
    def head(self) -> bytes: ...

    def candles(self, candles: Sequence[Candle]) -> bytes: ...

    def tail(self) -> bytes: ...


class ReadForm(enum.Enum):
    """A ready form of stored candles an encoder can write from without a :class:`Candle`:
    the rows' JSON objects (:func:`~core.present.text.candle_json`) joined by commas, or their
    packed rows (:func:`~core.present.packed.pack_candle`) joined. Storage keeps both beside
    each row and reads a page of either as its rows' bytes joined
    (:class:`storage.reads.HistoryReads`), without knowing what is inside."""

    JSON = "json"
    PACKED = "packed"

    @property
    def separator(self) -> bytes:
        """What a page's rows are joined with."""
        return b"," if self is ReadForm.JSON else b""


@runtime_checkable
class ReadyEncoder(CandleEncoder, Protocol):
    """An encoder that also writes from a ready form (:attr:`CandleFormat.reads`)."""

    def stored(self, body: bytes) -> bytes:
        """A piece of the document: ``body`` is the joined ready form of some rows."""
        ...

    def whole(self, body: bytes) -> bytes | memoryview:
        """The whole document of rows read in one piece (head, rows, tail)."""
        ...


@dataclass(frozen=True, slots=True)
class CandleFormat:
    """One output format of candles.

    ``name`` is what ``format=`` and ``--output-format`` take; ``media_type`` what the
    history API answers with (and ``accepts`` further media types of an ``Accept`` header
    that choose it); ``suffixes`` the file suffixes ``mdp candles`` recognises. ``table_fields``
    are the fields ``mdp candles`` writes in it (every field unless the format predates
    some). ``reads`` names the ready form of stored rows the encoder also takes (None: it
    takes :class:`Candle` s only); ``whole_table`` says that the encoder needs every
    candle's scales up front (Arrow's schema), so ``mdp candles`` gathers them first;
    ``threaded`` that encoding is heavy enough (compression) to leave the event loop;
    ``binary`` that the document is not text (``mdp candles`` writes it to a file only).
    """

    name: str
    media_type: str
    suffixes: tuple[str, ...]
    encoder: Callable[[Document], CandleEncoder]
    accepts: tuple[str, ...] = ()
    table_fields: tuple[str, ...] = CANDLE_FIELDS
    reads: ReadForm | None = None
    whole_table: bool = False
    threaded: bool = False
    binary: bool = False

    @property
    def media_types(self) -> tuple[str, ...]:
        """Every media type that chooses this format, its own (without parameters) first."""
        return (self.media_type.split(";")[0].strip(), *self.accepts)
