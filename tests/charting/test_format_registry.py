"""A candle format registered once is served by the history API and written by ``mdp
candles``, with no other edit: here a tab-separated format the test itself registers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from core.candles import Candle
from core.present import CandleFormat, Document, register, unregister
from core.present.text import CANDLE_FIELDS, csv_lines
from mdp.cli import main
from storage import PostgresStore
from tests.charting.conftest import MakeClient
from tests.charting.data import INSTRUMENT, MINUTE, T0, from_csv, from_json, series


class TabSeparated:
    """The test's format: CSV's fields with tabs between them."""

    def __init__(self, document: Document) -> None:
        self._fields = document.fields
        self._line = csv_lines(document.fields)

    def head(self) -> bytes:
        return ("\t".join(self._fields) + "\n").encode()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return "".join(self._line(c).replace(",", "\t") for c in candles).encode()

    def tail(self) -> bytes:
        return b""


TSV = CandleFormat(
    name="tsv",
    media_type="text/tab-separated-values; charset=utf-8",
    suffixes=(".tsv",),
    encoder=TabSeparated,
)


@pytest.fixture
def tsv() -> Iterator[CandleFormat]:
    register(TSV)  # the one line a new format takes
    yield TSV
    unregister(TSV.name)


def as_csv(tsv_text: str) -> str:
    return tsv_text.replace("\t", ",")


@pytest.mark.parametrize("interval", ["1m", "5m"])
async def test_a_registered_format_is_served_by_the_history_api(
    tsv: CandleFormat, store: PostgresStore, make_client: MakeClient, interval: str
) -> None:
    await store.write(candles=series(120, flag_every=9))
    client = make_client(intervals=(MINUTE,), chunk_rows=32)
    query = {"instrument": INSTRUMENT, "interval": interval, "start": str(T0 // 10**6)}
    as_json = await client.get("/v1/candles", params=query | {"format": "json"})
    expected = from_json(as_json.json())
    assert len(expected) > 10
    by_name = await client.get("/v1/candles", params=query | {"format": "tsv"})
    by_accept = await client.get(
        "/v1/candles", params=query, headers={"accept": "text/tab-separated-values"}
    )
    for response in (by_name, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == TSV.media_type
        assert from_csv(as_csv(response.text)) == expected
    assert by_name.content == by_accept.content


async def test_the_openapi_document_offers_a_registered_format(
    tsv: CandleFormat, make_client: MakeClient
) -> None:
    document = (await make_client().get("/openapi.json")).json()
    candles = document["paths"]["/v1/candles"]["get"]
    (fmt,) = [p for p in candles["parameters"] if p["name"] == "format"]
    assert "tsv" in fmt["schema"]["enum"]
    assert "text/tab-separated-values" in candles["responses"]["200"]["content"]


async def test_an_unregistered_format_is_refused_with_the_registered_ones_named(
    make_client: MakeClient,
) -> None:
    query = {"instrument": INSTRUMENT, "interval": "1m", "start": "0", "format": "tsv"}
    response = await make_client().get("/v1/candles", params=query)
    assert response.status_code == 400
    assert "format must be one of json, csv, arrow, parquet, jsonl" in response.text


def test_a_registered_format_is_written_by_mdp_candles(
    tsv: CandleFormat, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["candles", "--synthetic", "--duration", "300", "--quiet", "--final-only"]
    assert main([*args, "--output", str(tmp_path / "c.tsv")]) == 0
    assert main([*args, "--output-format", "tsv"]) == 0
    to_stdout = capsys.readouterr().out
    assert main([*args, "--output-format", "jsonl"]) == 0
    jsonl_lines = capsys.readouterr().out.splitlines()
    written = (tmp_path / "c.tsv").read_text()
    assert written == to_stdout
    header, *rows = written.splitlines()
    assert tuple(header.split("\t")) == CANDLE_FIELDS  # a new format carries every field
    assert len(rows) == len(jsonl_lines) > 0
