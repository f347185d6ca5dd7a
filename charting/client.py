"""The analysts' client: history as polars DataFrames, fetched as Arrow, paged transparently.

>>> from charting.client import HistoryClient
>>> with HistoryClient("http://127.0.0.1:8000") as history:
...     frame = history.candles("BINANCE:BTCUSDT", "5m", "2026-01-01", "2026-01-02")

Times are ``datetime`` (naive ones are UTC), ISO 8601 text, or epoch milliseconds. Decimal
columns stay exact (polars ``Decimal``); each column takes the finest scale of any page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

import httpx
import polars as pl
import pyarrow as pa

ARROW: Final = "application/vnd.apache.arrow.stream"
Time = datetime | str | int


class HistoryError(RuntimeError):
    """The API refused a request; ``parameter`` names the query parameter at fault."""

    def __init__(self, status: int, detail: str, parameter: str | None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.parameter = parameter


class HistoryClient:
    """A client of one history API (``base_url`` like ``http://127.0.0.1:8000``)."""

    def __init__(
        self, base_url: str, *, timeout: float = 60.0, page_rows: int | None = None
    ) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._page_rows = page_rows

    def __enter__(self) -> HistoryClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def instruments(self) -> list[str]:
        body = self._get("/v1/instruments", {}, "application/json").json()
        return [entry["instrument"] for entry in body["instruments"]]

    def candles(
        self, instrument: str, interval: str, start: Time, end: Time | None = None
    ) -> pl.DataFrame:
        """Candles opening in ``[start, end)`` (``end`` None: up to the open candle)."""
        params = {"instrument": instrument, "interval": interval} | _range(start, end)
        return self._frame("/v1/candles", params)

    def ticks(self, instrument: str, start: Time, end: Time | None = None) -> pl.DataFrame:
        """Trades with ``ts_event`` in ``[start, end)``."""
        return self._frame("/v1/ticks", {"instrument": instrument} | _range(start, end))

    def gaps(self, instrument: str, start: Time, end: Time | None = None) -> pl.DataFrame:
        """Feed gaps overlapping ``[start, end)``: spans in which trades may be missing
        (columns ``instrument, start, end, reason, detail, noticed``)."""
        params = {"instrument": instrument} | _range(start, end)
        return self._frame("/v1/gaps", params, paged=False)

    def _frame(self, path: str, params: dict[str, str], *, paged: bool = True) -> pl.DataFrame:
        if paged and self._page_rows is not None:
            params = params | {"limit": str(self._page_rows)}
        tables = []
        response = self._get(path, params, ARROW)
        while True:
            with pa.ipc.open_stream(response.content) as reader:
                tables.append(reader.read_all())
            following = response.links.get("next")
            if following is None:
                break
            response = self._get(following["url"], None, ARROW)
        frame = pl.from_arrow(_concat(tables))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _get(self, path: str, params: dict[str, str] | None, accept: str) -> httpx.Response:
        response = self._http.get(path, params=params, headers={"Accept": accept})
        if response.status_code >= 400:
            try:
                problem: dict[str, Any] = response.json()
            except ValueError:
                problem = {"detail": response.text}
            raise HistoryError(
                response.status_code, str(problem.get("detail")), problem.get("parameter")
            )
        return response


def _range(start: Time, end: Time | None) -> dict[str, str]:
    found = {"start": _time(start)}
    if end is not None:
        found["end"] = _time(end)
    return found


def _time(value: Time) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value)


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Pages into one table; decimal columns move to the finest scale of any page."""
    schema = tables[0].schema
    fields = []
    for index, field in enumerate(schema):
        kind = field.type
        if pa.types.is_decimal(kind):
            scale = max(table.schema.field(index).type.scale for table in tables)
            kind = pa.decimal128(kind.precision, scale)
        fields.append(pa.field(field.name, kind))
    unified = pa.schema(fields)
    return pa.concat_tables([table.cast(unified) for table in tables])
