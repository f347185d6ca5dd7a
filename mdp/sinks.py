"""Where ``mdp candles`` writes: any candle format of :mod:`core.present`, to a file or a
stream.

A format's encoder writes the candles as they come; one that needs every candle's scales up
front (:attr:`~core.present.CandleFormat.whole_table`: Arrow, Parquet) gets them all at
:meth:`FormatSink.close`. The fields are the format's
:attr:`~core.present.CandleFormat.table_fields`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from core.candles import Candle
from core.present import CandleEncoder, CandleFormat, Document, Scales


class CandleSink(Protocol):
    def write(self, candles: list[Candle]) -> None: ...

    def close(self) -> None: ...


class FormatSink:
    """Candles in ``fmt``, each piece of the document handed to ``put``; ``finish`` runs
    once the document is whole (it closes a file, flushes a stream)."""

    def __init__(
        self, fmt: CandleFormat, put: Callable[[bytes], object], finish: Callable[[], object]
    ) -> None:
        self._fmt = fmt
        self._put = put
        self._finish = finish
        self._held: list[Candle] = []
        self._encoder: CandleEncoder | None = None
        if not fmt.whole_table:
            self._encoder = self._open(Scales())

    def _open(self, scales: Scales) -> CandleEncoder:
        encoder = self._fmt.encoder(Document(self._fmt.table_fields, scales))
        self._put(encoder.head())
        return encoder

    def write(self, candles: list[Candle]) -> None:
        if self._encoder is None:
            self._held.extend(candles)
        elif candles:
            self._put(self._encoder.candles(candles))

    def close(self) -> None:
        encoder = self._encoder
        if encoder is None:
            encoder = self._open(Scales.of(self._held))
            self._put(encoder.candles(self._held))
        self._put(encoder.tail())
        self._finish()
