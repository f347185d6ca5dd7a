"""Engine checkpoints: the whole state out as bytes, and back in, so a restart continues exactly.

The format is MessagePack (msgspec) with a version number; a checkpoint taken with other
intervals than the engine's configuration is refused rather than half-applied. Version 2 adds
the feed gaps remembered and each bar's gap flag; version 1 (no gaps) is still read.

The codec knows the engine's state (``InstrumentState``, ``GapMemory``), not the engine:
:meth:`CandleEngine.checkpoint <core.engine.engine.CandleEngine.checkpoint>` and
:meth:`~core.engine.engine.CandleEngine.restore` call it, and nothing here imports them back.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import numpy as np

from core.engine.config import EngineConfig
from core.engine.gaps import GapMemory
from core.engine.state import Bar, InstrumentState

CHECKPOINT_VERSION = 2
_READABLE = (1, CHECKPOINT_VERSION)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _IntervalSnapshot(msgspec.Struct, array_like=True):
    closed_upto: int
    last_closed: tuple[int, int] | None
    last_open_emit: int
    open: list[int]
    pending: list[int]
    bars: list[tuple[int, list[int | str]]]  # sums past 64 bits travel as decimal text
    # each bar: Bar.as_tuple(); version 1 lacks the last value, the gap flag


class _InstrumentSnapshot(msgspec.Struct, array_like=True):
    instrument: str
    price_scale: int
    size_scale: int
    event_high: int
    clock: int
    last_recv: int
    seen_max_id: int
    seen_ids: bytes
    seen_ts: bytes
    intervals: list[_IntervalSnapshot]


class _GapSnapshot(msgspec.Struct, array_like=True):
    instrument: str
    spans: list[tuple[int, int]]


class _Checkpoint(msgspec.Struct):
    version: int
    intervals: list[str]
    instruments: list[_InstrumentSnapshot]
    gaps: list[_GapSnapshot] = []  # version 2 on; also of instruments without ticks yet


def dump(config: EngineConfig, states: Mapping[str, InstrumentState], gaps: GapMemory) -> bytes:
    """Serialize an engine's state (``states`` by instrument, and its ``gaps``) to bytes."""
    snapshots = []
    for instrument, state in states.items():
        state.seen.merge(state.clock - config.horizon_ns)
        snapshots.append(
            _InstrumentSnapshot(
                instrument=instrument,
                price_scale=state.price_scale,
                size_scale=state.size_scale,
                event_high=state.event_high,
                clock=state.clock,
                last_recv=state.last_recv,
                seen_max_id=state.seen.max_id,
                seen_ids=state.seen.sorted_ids.astype("<i8").tobytes(),
                seen_ts=state.seen.sorted_ts.astype("<i8").tobytes(),
                intervals=[
                    _IntervalSnapshot(
                        closed_upto=iv.closed_upto,
                        last_closed=iv.last_closed,
                        last_open_emit=iv.last_open_emit,
                        open=sorted(iv.open),
                        pending=sorted(iv.pending),
                        bars=[(bucket, _pack(bar.as_tuple())) for bucket, bar in iv.bars.items()],
                    )
                    for iv in state.intervals
                ],
            )
        )
    labels = [interval.label for interval in config.intervals]
    spans = [_GapSnapshot(instrument, list(kept)) for instrument, kept in gaps.items()]
    return msgspec.msgpack.encode(_Checkpoint(CHECKPOINT_VERSION, labels, snapshots, spans))


def load(data: bytes, config: EngineConfig) -> tuple[dict[str, InstrumentState], GapMemory]:
    """The states by instrument and the gaps of a checkpoint made by :func:`dump`.

    Raises ``ValueError`` for bytes that are not a checkpoint, another version, or other
    intervals than ``config``'s.
    """
    try:
        checkpoint = msgspec.msgpack.decode(data, type=_Checkpoint)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not an engine checkpoint: {exc}") from exc
    if checkpoint.version not in _READABLE:
        raise ValueError(
            f"checkpoint version {checkpoint.version} is not one this engine reads"
            f" ({', '.join(map(str, _READABLE))})"
        )
    labels = [interval.label for interval in config.intervals]
    if checkpoint.intervals != labels:
        raise ValueError(f"checkpoint intervals {checkpoint.intervals} differ from {labels}")
    states = {snap.instrument: _restore_instrument(snap) for snap in checkpoint.instruments}
    gaps = GapMemory()
    for gap in checkpoint.gaps:
        for start_ns, end_ns in gap.spans:
            gaps.add(gap.instrument, start_ns, end_ns)
    return states, gaps


def _restore_instrument(snap: _InstrumentSnapshot) -> InstrumentState:
    state = InstrumentState(snap.price_scale, snap.size_scale, len(snap.intervals))
    state.event_high = snap.event_high
    state.clock = snap.clock
    state.last_recv = snap.last_recv
    state.seen.max_id = snap.seen_max_id
    state.seen.sorted_ids = np.frombuffer(snap.seen_ids, dtype="<i8").astype(np.int64)
    state.seen.sorted_ts = np.frombuffer(snap.seen_ts, dtype="<i8").astype(np.int64)
    for iv, iv_snap in zip(state.intervals, snap.intervals, strict=True):
        iv.closed_upto = iv_snap.closed_upto
        iv.last_closed = iv_snap.last_closed
        iv.last_open_emit = iv_snap.last_open_emit
        iv.open = set(iv_snap.open)
        iv.pending = set(iv_snap.pending)
        iv.bars = {bucket: Bar(*map(int, values)) for bucket, values in iv_snap.bars}
    return state


def _pack(values: tuple[int, ...]) -> list[int | str]:
    return [v if _INT64_MIN <= v <= _INT64_MAX else str(v) for v in values]
