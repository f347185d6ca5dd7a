"""The presentation package's own rules: exact decimal text, documents, the registry."""

from __future__ import annotations

import pytest

from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.present import CandleFormat, Document, candle_formats, register
from core.present.csv_table import CsvCandles
from core.present.text import (
    CANDLE_COLUMNS,
    CANDLE_FIELDS,
    candle_json,
    csv_line,
    csv_lines,
    json_records,
)


def make_candle(open_time: int = 0) -> Candle:
    """A candle whose values have more digits than a float holds (2**53 is 16 digits)."""
    return Candle(
        instrument="TEST:BTCUSD",
        interval=Interval.parse("1m"),
        open_time=open_time,
        price_scale=8,
        size_scale=8,
        open_raw=123_456_789_012_345_678,
        high_raw=123_456_789_012_345_679,
        low_raw=123_456_789_012_345_601,
        close_raw=123_456_789_012_345_670,
        volume_raw=90_000_000_000_000_007,
        quote_volume_raw=123_456_789_012_345_678 * 90_000_000_000_000_007,
        taker_buy_volume_raw=7,
        trades=3,
        first_trade_id=10,
        last_trade_id=None if open_time else 12,
        revision=0,
        status=CandleStatus.CLOSED,
        gap=bool(open_time),
    )


def test_decimals_are_exact_beyond_a_float() -> None:
    candle = make_candle()
    line = csv_line(candle)
    assert line.startswith(f"{candle.instrument},{candle.interval.label},")
    values = dict(zip(CANDLE_FIELDS, line.rstrip("\n").split(","), strict=True))
    assert values["open"] == _fixed(candle.open_raw, 8)
    assert values["quote_volume"] == _fixed(candle.quote_volume_raw, 16)
    assert values["vwap"] == _fixed(candle.vwap_raw, candle.vwap_scale)


def _fixed(raw: int, scale: int) -> str:
    digits = str(raw).rjust(scale + 1, "0")
    return f"{digits[:-scale]}.{digits[-scale:]}"


def test_a_subset_of_fields_is_those_fields_of_the_full_line() -> None:
    candle = make_candle()
    full = csv_line(candle).rstrip("\n").split(",")
    table = csv_lines(CANDLE_COLUMNS)(candle).rstrip("\n").split(",")
    assert table == full[: len(CANDLE_COLUMNS)]


def test_a_document_refuses_unknown_or_reordered_fields() -> None:
    with pytest.raises(ValueError, match="fields must be candle fields in their order"):
        Document(("open", "instrument"))
    with pytest.raises(ValueError, match="fields must be candle fields in their order"):
        Document(("instrument", "colour"))


def test_a_name_media_type_or_suffix_is_registered_once() -> None:
    csv = next(fmt for fmt in candle_formats() if fmt.name == "csv")
    clashes = [
        CandleFormat("csv", "text/x-other", (".other",), CsvCandles),
        CandleFormat("csv2", "text/csv", (".other",), CsvCandles),
        CandleFormat("csv3", "text/x-other", csv.suffixes, CsvCandles),
    ]
    for clash in clashes:
        with pytest.raises(ValueError, match=r"registered already|taken by csv"):
            register(clash)
    assert [fmt.name for fmt in candle_formats()] == ["json", "csv", "arrow", "parquet", "jsonl"]


def test_csv_writes_a_header_then_a_line_per_candle() -> None:
    candles: list[Candle] = [make_candle(), make_candle(open_time=60_000_000_000)]
    out = CsvCandles(Document())
    body = out.head() + out.candles(candles) + out.tail()
    assert body.decode().splitlines() == [",".join(CANDLE_FIELDS)] + [
        csv_line(c).rstrip("\n") for c in candles
    ]


@pytest.mark.parametrize(
    "fields",
    [CANDLE_FIELDS, CANDLE_COLUMNS, ("open_time", "close", "gap")],
    ids=["all", "table", "picked"],
)
def test_csv_from_the_stored_json_form_is_the_csv_of_the_candles(
    fields: tuple[str, ...],
) -> None:
    candles = [make_candle(), make_candle(open_time=60_000_000_000)]
    stored = b",".join(candle_json(c) for c in candles)  # the rows' ``json`` joined
    out = CsvCandles(Document(fields))
    assert out.stored(stored) == out.candles(candles)
    assert out.whole(stored) == out.head() + out.candles(candles) + out.tail()
    assert out.stored(b"") == b""
    assert [r.close for r in json_records(stored)] == ["1234567890.12345670"] * 2
