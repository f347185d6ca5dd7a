"""``GET /v1/gaps``: the stored feed gaps overlapping a range, the same in every format."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.gaps import FeedGap, GapReason
from core.present.text import iso_utc
from storage import PostgresStore
from tests.charting.conftest import MakeClient
from tests.charting.data import INSTRUMENT, SECOND, T0, series

S = SECOND
GAPS = [
    FeedGap(instrument=INSTRUMENT, start_ns=T0 + 60 * S + 5, end_ns=T0 + 180 * S,
            reason=GapReason.DISCONNECTED, detail="reset by peer, code 1006",
            ts_recv=T0 + 181 * S + 7),
    FeedGap(instrument=INSTRUMENT, start_ns=T0 + 600 * S, end_ns=T0 + 601 * S,
            reason=GapReason.SEQUENCE, detail='trade ids 5..9 "missing"'),
    FeedGap(instrument=INSTRUMENT, start_ns=T0 + 600 * S, end_ns=T0 + 601 * S,
            reason=GapReason.DISCONNECTED),
    FeedGap(instrument="TEST:ETHUSD", start_ns=T0 + 60 * S, end_ns=T0 + 70 * S,
            reason=GapReason.DISCONNECTED),
]  # fmt: skip
"""Gaps of two instruments; the second and third share a span (sorted by reason: the third
comes first)."""
Normal = tuple[str, int, int, str, str, int | None]


def normal(gap: FeedGap) -> Normal:
    return (gap.instrument, gap.start_ns, gap.end_ns, gap.reason.value, gap.detail,
            gap.ts_recv or None)  # fmt: skip


def _ns(text: str) -> int:
    """ISO 8601 UTC with up to nine decimal places (``iso_utc``'s), as nanoseconds."""
    whole, _, fraction = text.removesuffix("Z").partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    ns = int(moment.timestamp()) * S + int(fraction.ljust(9, "0") or "0")
    assert iso_utc(ns) == text
    return ns


def from_records(records: list[dict[str, Any]]) -> list[Normal]:
    return [
        (r["instrument"], _ns(r["start"]), _ns(r["end"]), r["reason"], r["detail"],
         _ns(r["noticed"]) if r["noticed"] else None)
        for r in records
    ]  # fmt: skip


def from_table(table: pa.Table) -> list[Normal]:
    assert table.column_names == ["instrument", "start", "end", "reason", "detail", "noticed"]
    stamp = pa.timestamp("ns", tz="UTC")
    assert [table.schema.field(n).type for n in ("start", "end", "noticed")] == [stamp] * 3
    columns = [
        table.column(name).cast(pa.int64()).to_pylist() if name in ("start", "end", "noticed")
        else table.column(name).to_pylist()
        for name in table.column_names
    ]  # fmt: skip
    return list(zip(*columns, strict=True))


DECODERS: dict[str, Callable[[httpx.Response], list[Normal]]] = {
    "json": lambda r: from_records(r.json()["gaps"]),
    "csv": lambda r: from_records(list(csv.DictReader(io.StringIO(r.text)))),
    "arrow": lambda r: from_table(pa.ipc.open_stream(r.content).read_all()),
    "parquet": lambda r: from_table(pq.read_table(io.BytesIO(r.content))),
}


@pytest.fixture
async def stocked(store: PostgresStore, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await store.write(candles=series(5), gaps=GAPS)
    return client


def query(start: str, end: str | None = None, **more: str) -> dict[str, str]:
    found = {"instrument": INSTRUMENT, "start": start} | more
    return found if end is None else found | {"end": end}


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-01-01", None, [0, 2, 1]),
        ("2026-01-01T00:02:59Z", "2026-01-01T00:10:00Z", [0]),  # overlaps the first's end
        ("2026-01-01T00:03:00Z", "2026-01-01T00:10:00Z", []),  # starts where it ended
        ("2026-01-01T00:03:00Z", "2026-01-01T00:10:00.001Z", [2, 1]),
        ("2026-01-01T00:10:00.5Z", "2026-01-01T00:10:00.6Z", [2, 1]),  # inside them
        ("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", []),  # ends before the first starts
        ("2026-01-02", None, []),
    ],
)
async def test_gaps_overlapping_the_range_in_every_format(
    stocked: httpx.AsyncClient, start: str, end: str | None, expected: list[int]
) -> None:
    wanted = [normal(GAPS[i]) for i in expected]
    for fmt, decode in DECODERS.items():
        response = await stocked.get("/v1/gaps", params=query(start, end, format=fmt))
        assert response.status_code == 200, response.text
        assert decode(response) == wanted, fmt


async def test_the_json_document_names_its_query(stocked: httpx.AsyncClient) -> None:
    response = await stocked.get("/v1/gaps", params=query("2026-01-01", "2026-01-01T00:05:00Z"))
    body = response.json()
    assert body == {
        "instrument": INSTRUMENT,
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:05:00Z",
        "gaps": [
            {"instrument": INSTRUMENT, "start": "2026-01-01T00:01:00.000000005Z",
             "end": "2026-01-01T00:03:00Z", "reason": "disconnected",
             "detail": "reset by peer, code 1006", "noticed": "2026-01-01T00:03:01.000000007Z"},
        ],
    }  # fmt: skip


async def test_a_final_range_is_cached_and_a_new_gap_changes_the_etag(
    store: PostgresStore, stocked: httpx.AsyncClient
) -> None:
    params = query("2026-01-01", "2026-01-01T01:00:00Z")
    first = await stocked.get("/v1/gaps", params=params)
    assert first.headers["cache-control"].startswith("public, max-age=")
    etag = first.headers["etag"]
    again = await stocked.get("/v1/gaps", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    late = FeedGap(instrument=INSTRUMENT, start_ns=T0 + 1200 * S, end_ns=T0 + 1300 * S,
                   reason=GapReason.DISCONNECTED)  # fmt: skip
    await store.write(gaps=[late])
    changed = await stocked.get("/v1/gaps", params=params, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert len(changed.json()["gaps"]) == 4
    open_ended = await stocked.get("/v1/gaps", params=query("2026-01-01"))
    assert open_ended.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("change", "status", "parameter"),
    [
        ({"instrument": "TEST:UNKNOWN"}, 404, "instrument"),
        ({"instrument": "not an instrument"}, 400, "instrument"),
        ({"instrument": None}, 400, "instrument"),
        ({"start": None}, 400, "start"),
        ({"start": "yesterday"}, 400, "start"),
        ({"end": "2025-12-31"}, 400, "start"),  # end before start
        ({"end": "99999999999999999"}, 400, "end"),
        ({"format": "xml"}, 400, "format"),
    ],
)
async def test_bad_queries_get_a_problem_naming_the_parameter(
    stocked: httpx.AsyncClient, change: dict[str, str | None], status: int, parameter: str
) -> None:
    params = {k: v for k, v in (query("2026-01-01") | change).items() if v is not None}
    response = await stocked.get("/v1/gaps", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["parameter"] == parameter


async def test_a_range_with_more_gaps_than_the_row_limit_is_refused(
    store: PostgresStore, make_client: MakeClient
) -> None:
    await store.write(candles=series(3), gaps=GAPS)
    client = make_client(max_limit=2, default_limit=2)
    response = await client.get("/v1/gaps", params=query("2026-01-01"))
    assert response.status_code == 400
    assert response.json()["parameter"] == "start"
    shorter = await client.get("/v1/gaps", params=query("2026-01-01", "2026-01-01T00:05:00Z"))
    assert shorter.status_code == 200
    unacceptable = await client.get(
        "/v1/gaps", params=query("2026-01-01"), headers={"Accept": "image/png"}
    )
    assert unacceptable.status_code == 406
