"""The binary COPY encoding of tick batches, read back by an independent decoder."""

from __future__ import annotations

import struct
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.numbers import MAX_SCALE, format_fixed, to_decimal
from core.ticks import TickBatch
from storage.tick_copy import (
    COPY_HEADER,
    COPY_TRAILER,
    PG_EPOCH_US,
    TICK_COLUMNS,
    decode_tick_rows,
    encode_ticks,
)

INT64_MAX = 2**63 - 1


def numeric(data: bytes) -> Decimal:
    """PostgreSQL's binary NUMERIC, decoded the way numeric_recv reads it."""
    ndigits, weight, sign, dscale = struct.unpack(">hhHH", data[:8])
    digits = struct.unpack(f">{ndigits}h", data[8:])
    assert sign == 0
    assert all(0 <= d < 10_000 for d in digits)
    value = sum(
        (Decimal(d) * Decimal(10_000) ** (weight - i) for i, d in enumerate(digits)), Decimal(0)
    )
    return value.quantize(Decimal(1).scaleb(-dscale))


def tuples(data: bytes) -> list[list[bytes]]:
    """The fields of each tuple of a binary COPY body (no header, no trailer)."""
    rows, at = [], 0
    while at < len(data):
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        fields = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            fields.append(data[at + 4 : at + 4 + length])
            at += 4 + length
        rows.append(fields)
    return rows


def make_batch(prices: list[int], sizes: list[int], price_scale: int, size_scale: int) -> TickBatch:
    n = len(prices)
    ts = np.arange(n, dtype=np.int64) * 1_234_567 + 1_767_225_600_123_456_789
    return TickBatch(
        "TEST:BTCUSD",
        price_scale,
        size_scale,
        np.arange(n, dtype=np.int64) + 10**12,
        np.array(prices, dtype=np.int64),
        np.array(sizes, dtype=np.int64),
        np.array([(-1, 0, 1)[i % 3] for i in range(n)], dtype=np.int8),
        ts,
        ts + 999,
        np.ones(n, dtype=np.int64),
    )


raws = st.lists(st.integers(1, INT64_MAX), min_size=1, max_size=20)
scales = st.integers(0, MAX_SCALE)


@given(raws, scales, scales)
def test_prices_and_sizes_encode_to_their_exact_decimals_with_their_scale(
    prices: list[int], price_scale: int, size_scale: int
) -> None:
    sizes = list(reversed(prices))
    rows = tuples(encode_ticks(make_batch(prices, sizes, price_scale, size_scale)))
    price_column, size_column = TICK_COLUMNS.index("price"), TICK_COLUMNS.index("size")
    for row, price, size in zip(rows, prices, sizes, strict=True):
        assert format(numeric(row[price_column]), "f") == format_fixed(price, price_scale)
        assert numeric(row[size_column]) == to_decimal(size, size_scale)


def test_every_column_is_encoded_in_order() -> None:
    batch = make_batch([150, 99_999], [1, 2], 2, 0)
    rows = tuples(encode_ticks(batch))
    assert len(rows) == 2
    first = rows[0]
    assert len(first) == len(TICK_COLUMNS)
    assert first[0] == b"TEST:BTCUSD"
    assert struct.unpack(">q", first[1])[0] == batch.trade_id[0]
    assert format(numeric(first[2]), "f") == "1.50"
    assert struct.unpack(">h", first[4])[0] == -1
    ts_event = int(batch.ts_event[0])
    assert struct.unpack(">q", first[5])[0] == ts_event // 1000 - PG_EPOCH_US
    assert struct.unpack(">q", first[7])[0] == ts_event
    assert struct.unpack(">q", first[8])[0] == ts_event + 999
    assert struct.unpack(">q", first[9])[0] == 1


def test_an_empty_batch_encodes_to_nothing() -> None:
    assert encode_ticks(TickBatch.empty("TEST:BTCUSD", 2, 3)) == b""


def test_decoding_reads_fixed_width_rows() -> None:
    fields = [(11, 8), (1500, 8), (3, 8), (1, 2), (5, 8), (6, 8), (1, 8)]  # (value, width)
    layout = [(">h", 7)]
    for value, width in fields:
        layout += [(">i", width), (">q" if width == 8 else ">h", value)]
    row = b"".join(struct.pack(fmt, value) for fmt, value in layout)
    rows = decode_tick_rows(COPY_HEADER + row + row + COPY_TRAILER)
    assert rows["price"].tolist() == [1500, 1500]
    assert rows["side"].tolist() == [1, 1]


def test_decoding_refuses_what_is_not_binary_copy() -> None:
    with pytest.raises(ValueError, match="not a binary COPY"):
        decode_tick_rows(b"1\t2\n")
    with pytest.raises(ValueError, match="trailer"):
        decode_tick_rows(COPY_HEADER + b"\x00")
