"""JSON: one document, ``{..., "candles": [{...}, ...]}``.

A page of the history API opens with its envelope (instrument, interval, the interval it was
rolled up from, start, end, the next page's cursor and link); a table of ``mdp candles`` is
``{"candles": [...]}``. Every candle object is :func:`~core.present.text.candle_json`'s, so
stored rows' ``json`` column, joined by the database, is written as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from core.candles import Candle
from core.present.document import CandleFormat, Document, ReadForm
from core.present.text import iso_utc, json_objects


class JsonCandles:
    def __init__(self, document: Document) -> None:
        self._page = document.page
        self._object = json_objects(document.fields)
        self._first = True

    def head(self) -> bytes:
        page = self._page
        if page is None:
            return b'{"candles":['
        envelope = {
            "instrument": page.instrument,
            "interval": page.interval,
            "rolled_up_from": page.rolled_up_from,
            "start": iso_utc(page.start),
            "end": iso_utc(page.end),
            "next_cursor": page.next_cursor,
            "next": page.next_url,
        }
        return msgspec.json.encode(envelope)[:-1] + b',"candles":['

    def stored(self, body: bytes) -> bytes:
        if not body:
            return b""
        if self._first:
            self._first = False
            return body
        return b"," + body

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self.stored(b",".join([self._object(c) for c in candles]))

    def tail(self) -> bytes:
        return b"]}"

    def whole(self, body: bytes) -> bytes:
        return b"".join([self.head(), self.stored(body), self.tail()])


FORMAT = CandleFormat(
    name="json",
    media_type="application/json",
    suffixes=(),
    encoder=JsonCandles,
    reads=ReadForm.JSON,
)
