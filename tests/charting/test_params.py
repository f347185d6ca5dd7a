"""Query parameters: times, cursors and formats."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from charting import params
from charting.formats import Format, choose
from charting.params import Cursor
from tests.charting.data import T0
from web.problems import ProblemError


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T01:00:00+01:00",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "1767225600000",
    ],
)
def test_times_are_iso_8601_or_epoch_milliseconds(text: str) -> None:
    assert params.parse_time("start", text) == T0


def test_fractions_of_a_second_are_kept() -> None:
    assert params.parse_time("end", "2026-01-01T00:00:00.123456Z") == T0 + 123_456_000
    assert params.parse_time("end", "1767225600123") == T0 + 123_000_000


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01", "-5", "1e9", "1959-12-31"])
def test_bad_times_name_their_parameter(text: str) -> None:
    with pytest.raises(ProblemError) as raised:
        params.parse_time("end", text)
    assert raised.value.parameter == "end"
    assert raised.value.status == 400


def test_cursors_round_trip_and_are_checked() -> None:
    for cursor in (Cursor("c", T0), Cursor("t", T0 + 5, 42)):
        query = QueryParams({"cursor": cursor.encode()})
        assert params.cursor(query, cursor.kind, T0, T0 + 10) == cursor
    with pytest.raises(ProblemError, match="outside"):
        params.cursor(QueryParams({"cursor": Cursor("c", T0).encode()}), "c", T0 + 1, T0 + 9)
    with pytest.raises(ProblemError, match="gave out"):
        params.cursor(QueryParams({"cursor": Cursor("c", T0).encode()}), "t", T0, T0 + 9)


@pytest.mark.parametrize(
    ("fmt", "accept", "chosen"),
    [
        (None, None, Format.JSON),
        (None, "*/*", Format.JSON),
        (None, "text/csv", Format.CSV),
        (None, "application/vnd.apache.arrow.stream", Format.ARROW),
        (None, "application/json;q=0.2, application/vnd.apache.parquet", Format.PARQUET),
        (None, "text/csv;q=0.5, application/json;q=0.9", Format.JSON),
        ("ARROW", "text/csv", Format.ARROW),
    ],
)
def test_the_format_comes_from_the_parameter_then_the_accept_header(
    fmt: str | None, accept: str | None, chosen: Format
) -> None:
    assert choose(fmt, accept) is chosen


def test_instruments_are_taken_in_any_case_and_answered_in_upper_case() -> None:
    assert params.instrument(QueryParams({"instrument": "binance:btcUSDT"})) == "BINANCE:BTCUSDT"
    with pytest.raises(ProblemError) as raised:
        params.instrument(QueryParams({"instrument": "btcusdt"}))
    assert (raised.value.parameter, raised.value.status) == ("instrument", 400)
