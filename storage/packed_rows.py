"""Pages of the ``packed`` read form as numpy arrays: whole rows in open-time order, and the
status codes of their status words (:data:`storage.candle_rows.PACKED_WORDS`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from storage.candle_rows import GAP_FLAG, PACKED_DTYPE, STATUS_MASK, STATUSES

Ints = npt.NDArray[np.int64]


def packed_rows(body: bytes) -> npt.NDArray[np.void]:
    """The rows of a joined ``packed`` buffer, checked to be whole rows in open-time order."""
    if len(body) % PACKED_DTYPE.itemsize:
        raise ValueError(
            f"packed candle rows are {PACKED_DTYPE.itemsize} bytes each; got {len(body)} bytes"
        )
    rows = np.frombuffer(body, dtype=PACKED_DTYPE)
    times = rows["open_time"]
    if len(rows) > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError("packed candle rows are not in open-time order")
    return rows


def status_codes(words: Ints) -> Ints:
    """The status codes (indexes in :data:`~storage.candle_rows.STATUSES`) of status words:
    the code is the word's low byte, the gap flag its bit 8
    (:data:`storage.candle_rows.PACKED_WORDS`). ``ValueError`` for a word that is neither."""
    if len(words) and (int(words.min()) < 0 or int(words.max()) >= GAP_FLAG << 1):
        raise ValueError("a packed candle row has an unknown status word")
    codes: Ints = words & STATUS_MASK
    if len(codes) and int(codes.max()) >= len(STATUSES):
        raise ValueError("a packed candle row has an unknown status code")
    return codes
