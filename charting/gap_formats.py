"""Feed gaps in each format: :data:`GAP_FIELDS`, one row per stored gap. Pure.

A gap is a span of venue time, ``[start, end)``, in which trades of the instrument may be
missing (``core.gaps.FeedGap``). Times are ISO 8601 UTC text with nanoseconds in JSON and CSV,
``timestamp[ns, UTC]`` in Arrow and Parquet; ``noticed`` (when the connector noticed) is
empty when it did not say. A response holds every gap of its range, at most the row limit,
so it is encoded whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Final

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from charting.formats import Format
from core.present.text import iso_utc
from storage.reads import GapRow

GAP_FIELDS: Final = ("instrument", "start", "end", "reason", "detail", "noticed")


class GapRecord(msgspec.Struct):
    """A gap as the API shows it, in :data:`GAP_FIELDS` order."""

    instrument: str
    start: str
    end: str
    reason: str
    detail: str
    noticed: str | None


class GapPage(msgspec.Struct):
    """The JSON document: the query and its gaps."""

    instrument: str
    start: str
    end: str
    gaps: list[GapRecord]


def gap_records(instrument: str, rows: Sequence[GapRow]) -> list[GapRecord]:
    return [
        GapRecord(
            instrument, iso_utc(start), iso_utc(end), reason, detail,
            None if noticed is None else iso_utc(noticed),
        )
        for start, end, reason, detail, noticed in rows
    ]  # fmt: skip


def gap_schema() -> pa.Schema:
    stamp = pa.timestamp("ns", tz="UTC")
    return pa.schema(
        [
            pa.field("instrument", pa.string()),
            pa.field("start", stamp),
            pa.field("end", stamp),
            pa.field("reason", pa.string()),
            pa.field("detail", pa.string()),
            pa.field("noticed", stamp),
        ]
    )


def gap_table(instrument: str, rows: Sequence[GapRow]) -> pa.Table:
    schema = gap_schema()
    stamp = schema.field("start").type
    columns = [
        pa.array([instrument] * len(rows), pa.string()),
        pa.array([row[0] for row in rows], pa.int64()).cast(stamp),
        pa.array([row[1] for row in rows], pa.int64()).cast(stamp),
        pa.array([row[2] for row in rows], pa.string()),
        pa.array([row[3] for row in rows], pa.string()),
        pa.array([row[4] for row in rows], pa.int64()).cast(stamp),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def encode_gaps(
    fmt: Format, instrument: str, start: int, end: int, rows: Sequence[GapRow]
) -> bytes:
    """The whole response body of ``rows`` (the gaps of ``instrument`` in ``[start, end)``)."""
    if fmt is Format.JSON:
        page = GapPage(instrument, iso_utc(start), iso_utc(end), gap_records(instrument, rows))
        return msgspec.json.encode(page)
    if fmt is Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")  # details may hold commas or quotes
        writer.writerow(GAP_FIELDS)
        writer.writerows(
            ["" if value is None else value for value in msgspec.structs.astuple(record)]
            for record in gap_records(instrument, rows)
        )
        return out.getvalue().encode()
    table = gap_table(instrument, rows)
    sink = pa.BufferOutputStream()
    if fmt is Format.ARROW:
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
    else:
        pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())
