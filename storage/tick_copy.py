"""Ticks to and from PostgreSQL's binary COPY format, a whole batch at a time with numpy.

Binary COPY spares the server the parsing of text (it ingests twice as many rows per second
here as CSV COPY) and the client any per-row Python: a :class:`~core.ticks.TickBatch` has one
instrument and one scale per column, so every row of it has the same byte layout, and the
batch becomes one numpy structured array written out with ``tobytes()``.

NUMERIC travels as base-10000 digit groups (``ndigits, weight, sign, dscale, digits...``);
every row of a batch gets the same number of groups, leading and trailing zero groups
included, which PostgreSQL strips on receipt. ``dscale`` is the batch's scale, so a price
stored from scale 2 reads back as ``Decimal("1.50")``, with its decimal places.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from core.ticks import TickBatch

TICK_COLUMNS: Final = (
    "instrument",
    "trade_id",
    "price",
    "size",
    "side",
    "ts_event",
    "ts_recv",
    "ts_event_ns",
    "ts_recv_ns",
    "trades",
)
"""The column order of :func:`encode_ticks`."""

COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER: Final = b"\xff\xff"
PG_EPOCH_US: Final = 946_684_800_000_000
"""2000-01-01T00:00:00Z in Unix microseconds: PostgreSQL's timestamp origin."""

_NUMERIC_BASE: Final = 10_000
_HEADER_LENGTH: Final = len(COPY_HEADER)


def encode_ticks(batch: TickBatch) -> bytes:
    """The batch's rows as binary COPY tuples, columns in :data:`TICK_COLUMNS` order.

    Wrap one or more of these between :data:`COPY_HEADER` and :data:`COPY_TRAILER`.
    """
    instrument = batch.instrument.encode()
    price_int, price_frac = _numeric_layout(batch.price, batch.price_scale)
    size_int, size_frac = _numeric_layout(batch.size, batch.size_scale)
    price_groups = price_int + price_frac
    size_groups = size_int + size_frac
    layout = np.dtype(
        [
            ("columns", ">i2"),
            ("instrument_len", ">i4"),
            ("instrument", f"S{len(instrument)}"),
            ("trade_id_len", ">i4"),
            ("trade_id", ">i8"),
            ("price_len", ">i4"),
            ("price_head", ">i2", (4,)),
            ("price_digits", ">i2", (price_groups,)),
            ("size_len", ">i4"),
            ("size_head", ">i2", (4,)),
            ("size_digits", ">i2", (size_groups,)),
            ("side_len", ">i4"),
            ("side", ">i2"),
            ("ts_event_len", ">i4"),
            ("ts_event", ">i8"),
            ("ts_recv_len", ">i4"),
            ("ts_recv", ">i8"),
            ("ts_event_ns_len", ">i4"),
            ("ts_event_ns", ">i8"),
            ("ts_recv_ns_len", ">i4"),
            ("ts_recv_ns", ">i8"),
            ("trades_len", ">i4"),
            ("trades", ">i8"),
        ]
    )
    rows = np.empty(len(batch), dtype=layout)
    rows["columns"] = len(TICK_COLUMNS)
    rows["instrument_len"] = len(instrument)
    rows["instrument"] = instrument
    rows["trade_id_len"] = 8
    rows["trade_id"] = batch.trade_id
    rows["price_len"] = 8 + 2 * price_groups
    rows["price_head"] = (price_groups, price_int - 1, 0, batch.price_scale)
    rows["price_digits"] = _digit_groups(batch.price, batch.price_scale, price_int, price_frac)
    rows["size_len"] = 8 + 2 * size_groups
    rows["size_head"] = (size_groups, size_int - 1, 0, batch.size_scale)
    rows["size_digits"] = _digit_groups(batch.size, batch.size_scale, size_int, size_frac)
    rows["side_len"] = 2
    rows["side"] = batch.side
    for name, column in (("ts_event", batch.ts_event), ("ts_recv", batch.ts_recv)):
        rows[f"{name}_len"] = 8
        rows[name] = column // 1000 - PG_EPOCH_US  # truncated to the microsecond
        rows[f"{name}_ns_len"] = 8
        rows[f"{name}_ns"] = column
    rows["trades_len"] = 8
    rows["trades"] = batch.trades
    return rows.tobytes()


def _numeric_layout(raw: npt.NDArray[np.int64], scale: int) -> tuple[int, int]:
    """Digit groups before and after the decimal point that every value of ``raw`` fits."""
    fraction = -(-scale // 4)
    largest = int(raw.max()) // 10**scale if len(raw) else 0
    integer = 1
    while largest >= _NUMERIC_BASE:
        integer += 1
        largest //= _NUMERIC_BASE
    return integer, fraction


def _digit_groups(
    raw: npt.NDArray[np.int64], scale: int, integer: int, fraction: int
) -> npt.NDArray[np.int16]:
    groups = np.empty((len(raw), integer + fraction), dtype=">i2")
    whole, part = np.divmod(raw, np.int64(10**scale))
    for k in range(integer):  # from the units group leftwards
        groups[:, integer - 1 - k] = (whole // np.int64(10 ** (4 * k))) % _NUMERIC_BASE
    for k in range(fraction):  # from the first group after the point rightwards
        below = scale - 4 * (k + 1)  # decimal places right of this group
        if below >= 0:
            groups[:, integer + k] = (part // np.int64(10**below)) % _NUMERIC_BASE
        else:  # the last group, padded with zeros on the right
            groups[:, integer + k] = (part % np.int64(10 ** (4 + below))) * np.int64(10**-below)
    return groups


READ_LAYOUT: Final = np.dtype(
    [
        ("columns", ">i2"),
        ("trade_id_len", ">i4"),
        ("trade_id", ">i8"),
        ("price_len", ">i4"),
        ("price", ">i8"),
        ("size_len", ">i4"),
        ("size", ">i8"),
        ("side_len", ">i4"),
        ("side", ">i2"),
        ("ts_event_len", ">i4"),
        ("ts_event", ">i8"),
        ("ts_recv_len", ">i4"),
        ("ts_recv", ">i8"),
        ("trades_len", ">i4"),
        ("trades", ">i8"),
    ]
)
"""Rows of ``COPY (SELECT trade_id, price_raw, size_raw, side, ts_event_ns, ts_recv_ns,
trades ...) TO STDOUT (FORMAT binary)``, every column ``NOT NULL`` and fixed width."""


def decode_tick_rows(data: bytes) -> npt.NDArray[np.void]:
    """The rows of a binary COPY of :data:`READ_LAYOUT` columns, as a structured array."""
    if not data.startswith(COPY_HEADER[:11]):
        raise ValueError("not a binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    body = data[_HEADER_LENGTH + extension :]
    if not body.endswith(COPY_TRAILER):
        raise ValueError("binary COPY stream without its trailer")
    body = body[: -len(COPY_TRAILER)]
    if len(body) % READ_LAYOUT.itemsize:
        raise ValueError("binary COPY rows do not have the expected layout")
    rows = np.frombuffer(body, dtype=READ_LAYOUT)
    if len(rows) and not (rows["columns"] == 7).all():
        raise ValueError("binary COPY rows do not have the expected 7 columns")
    return rows
