"""Decimal and timestamp parsing: exact against Decimal and datetime, scale rules, report cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.numbers import scale_of
from core.ticks import Tick
from ingest.files import MAX_KEPT_BAD_ROWS, ReadReport, read_generic_csv
from ingest.files.report import BadRow

HEADER = "instrument,trade_id,price,size,side,ts_event\n"

decimals = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(1, 10**15),
    st.integers(0, 18),
)
texts = decimals.flatmap(
    lambda d: st.sampled_from([str(d), format(d, "f"), format(d, "f") + "000", f"+{d:f}"])
)


def read_rows(folder: Path, rows: list[str]) -> tuple[list[Tick], ReadReport]:
    path = folder / "values.csv"
    path.write_text(HEADER + "".join(rows))
    report = ReadReport()
    ticks = [tick for batch in read_generic_csv(path, report=report) for tick in batch.ticks()]
    return ticks, report


@settings(max_examples=30, deadline=None)
@given(st.lists(texts, min_size=1, max_size=20))
def test_decimal_text_is_read_exactly_at_the_finest_needed_scale(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    path = tmp_path_factory.mktemp("dec") / "values.csv"
    rows = [f"A:B,{i},{v},{v},b,1767225600000000000\n" for i, v in enumerate(values)]
    path.write_text(HEADER + "".join(rows))
    report = ReadReport()
    batches = list(read_generic_csv(path, report=report))
    assert report.ok
    ticks = sorted((t for b in batches for t in b.ticks()), key=lambda t: t.trade_id)
    expected = [Decimal(v) for v in values]
    assert [t.price for t in ticks] == expected == [t.size for t in ticks]
    for batch in batches:
        needed = max(scale_of(t.price) for t in batch.ticks())
        assert batch.price_scale == needed == batch.size_scale
    finest = max(scale_of(d) for d in expected)
    if max(expected).scaleb(finest) < 2**63:
        assert len(batches) == 1


@settings(max_examples=50, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1974, 1, 1), max_value=datetime(2200, 1, 1)),
    extra_ns=st.integers(0, 999),
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
    separator=st.sampled_from(["T", " "]),
    colon=st.booleans(),
)
def test_iso_timestamps_are_exact_nanoseconds(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    moment: datetime,
    extra_ns: int,
    offset_minutes: int,
    separator: str,
    colon: bool,
) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    offset = f"{sign}{hours:02}{':' if colon else ''}{minutes:02}"
    fraction = f"{local.microsecond:06}{extra_ns:03}"
    text = f"{local:%Y-%m-%d}{separator}{local:%H:%M:%S}.{fraction}{offset}"
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    delta = local - epoch
    expected = (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000 + extra_ns
    (tick,), _ = read_rows(tmp_path_factory.mktemp("ts"), [f"A:B,1,1,1,b,{text}\n"])
    assert tick.ts_event == expected, text


def test_leap_seconds_and_bad_offsets_are_refused(tmp_path: Path) -> None:
    ticks, report = read_rows(
        tmp_path,
        [
            "A:B,1,1,1,b,2016-12-31T23:59:60Z\n",
            "A:B,2,1,1,b,2026-01-01T00:00:00+24:00\n",
            "A:B,3,1,1,b,2026-01-01T00:00:00.5z\n",
        ],
    )
    assert report.bad == 2
    assert [bad.line for bad in report.bad_rows] == [2, 3]
    assert len(ticks) == 1


def test_the_report_keeps_the_first_bad_rows_but_counts_all(tmp_path: Path) -> None:
    rows = [f"A:B,{i},x,1,b,1767225600000000000\n" for i in range(MAX_KEPT_BAD_ROWS + 50)]
    _, report = read_rows(tmp_path, rows)
    assert report.bad == MAX_KEPT_BAD_ROWS + 50 == report.rows
    assert len(report.bad_rows) == MAX_KEPT_BAD_ROWS
    assert report.bad_rows[0] == BadRow(2, "price 'x' is not a decimal number", "values.csv")
    assert report.summary() == (
        "1,050 rows, 0 ticks, 1,050 bad "
        "(first: values.csv line 2: price 'x' is not a decimal number)"
    )


def test_rows_too_wide_for_the_finest_scale_go_to_a_coarser_batch(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(
        HEADER
        + "A:B,1,9000000000000000000,1,b,1767225600000000000\n"
        + "A:B,2,1.5,1,b,1767225600000000000\n"
        + "A:B,3,0.25,1,b,1767225600000000000\n"
    )
    report = ReadReport()
    batches = list(read_generic_csv(path, report=report))
    assert report.ok
    assert report.ticks == 3
    assert [(b.price_scale, b.trade_id.tolist()) for b in batches] == [(2, [2, 3]), (0, [1])]
    assert batches[1].tick(0).price == Decimal("9000000000000000000")
