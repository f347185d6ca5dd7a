"""The live status line of ``mdp up``: what came in, what went out, what is still on its way,
read from the platform's metrics (the numbers its ``metrics:`` URL serves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ingest.venues.session import FeedCounters
from storage.writer import WriterStats
from telemetry.metrics import (
    ENGINE_CANDLES,
    ENGINE_TICKS,
    INGEST_GAPS,
    INGEST_TICKS,
    TICKS_REJECTED,
    WRITER_ROWS,
)


@dataclass(frozen=True, slots=True)
class Counts:
    """What the platform counted, as its metrics hold it (:func:`counts_from`)."""

    ticks_in: float = 0
    gaps: float = 0
    engine_ticks: float = 0
    candles_out: float = 0
    rejects: float = 0
    stored_ticks: float = 0
    stored_candles: float = 0

    def __sub__(self, earlier: Counts) -> Counts:
        return Counts(
            *(now - then for now, then in zip(_values(self), _values(earlier), strict=True))
        )


def _values(counts: Counts) -> tuple[float, ...]:
    return tuple(getattr(counts, name) for name in Counts.__slots__)


def counts_from() -> Counts:
    """The counts now, from the process's metrics (``docs/observability.md``): the same
    numbers a scrape reads, taken from the six counters themselves (:data:`COUNTED`), not
    from a collection of the whole registry, whose live gauges (a gateway's sessions) would
    be read every tick for nothing. The metrics are the process's, so a platform subtracts
    the counts it started with."""
    totals: dict[tuple[str, str], float] = {}
    for metric in COUNTED:
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):  # not the _created timestamps
                    key = (sample.name, sample.labels.get("kind", ""))
                    totals[key] = totals.get(key, 0.0) + sample.value
    return Counts(
        ticks_in=totals.get(("mdp_ingest_ticks_total", ""), 0.0),
        gaps=totals.get(("mdp_ingest_gaps_total", ""), 0.0),
        engine_ticks=totals.get(("mdp_engine_ticks_total", ""), 0.0),
        candles_out=totals.get(("mdp_engine_candles_total", ""), 0.0),
        rejects=totals.get(("mdp_ticks_rejected_total", ""), 0.0),
        stored_ticks=totals.get(("mdp_writer_rows_total", "ticks"), 0.0),
        stored_candles=totals.get(("mdp_writer_rows_total", "candles"), 0.0),
    )


COUNTED: Final = (
    INGEST_TICKS, INGEST_GAPS, ENGINE_TICKS, ENGINE_CANDLES, TICKS_REJECTED, WRITER_ROWS,
)  # fmt: skip
"""The counters the status line reads."""


def status_line(
    counts: Counts,
    writer: WriterStats,
    venue: FeedCounters | None = None,
    *,
    paused: bool = False,
    finished: bool = False,
) -> str:
    """One line: ticks in, candles out, rejects, stored rows, the backlog (lag) in ticks, the
    feed gaps a live venue reported (when there were any) and its connection (``venue``);
    while the database is away or the feed waits for storage (``paused``), that
    (:func:`storage_state`). The counts are the metrics' (:func:`counts_from`)."""
    engine_lag = max(0, int(counts.ticks_in - counts.engine_ticks))
    gaps = f" | feed gaps {int(counts.gaps):,}" if counts.gaps else ""
    link = "" if venue is None else f" | venue {connection(venue)}"
    done = " | feed finished" if finished else ""
    storage = storage_state(writer, paused)
    storage = f" | {storage}" if storage else ""
    return (
        f"ticks in {int(counts.ticks_in):,} | candles out {int(counts.candles_out):,}"
        f" | rejects {int(counts.rejects):,} | stored {int(counts.stored_ticks):,} ticks,"
        f" {int(counts.stored_candles):,} candle updates"
        f" | lag {engine_lag:,} ticks{storage}{gaps}{link}{done}"
    )


def connection(venue: FeedCounters) -> str:
    """``connected``, or ``connecting`` / ``reconnecting`` with the last error, if any."""
    if venue.connected:
        return "connected"
    state = "reconnecting" if venue.connects else "connecting"
    return state if venue.last_error is None else f"{state} ({venue.last_error})"


def storage_state(writer: WriterStats, paused: bool = False) -> str:
    """Empty while all is well; else ``database unavailable (why)``, what the writer holds,
    and ``feed paused`` while the feed waits for room on the bus (backpressure)."""
    parts = []
    if writer.database_error is not None:
        parts.append(f"database unavailable ({writer.database_error})")
    if parts and writer.held:
        parts.append(f"holding {writer.held:,} records ({writer.held_bytes / 2**20:.1f} MiB)")
    if paused:
        parts.append("feed paused: storage is behind (backpressure)")
    return ", ".join(parts)
