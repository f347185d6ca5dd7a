"""Histogram buckets, chosen so that each SLA target is a bucket's upper edge.

A bucket edge at the target makes "the share of requests within the SLA" an exact ratio of
two series (``le="0.05"`` over ``+Inf``) instead of an interpolation, which is what burn-rate
alerts need. The targets (``docs/history-api.md``, ``docs/edge.md``, ``docs/benchmarks.md``):
history API p99 at most 20 ms (Arrow) and 50 ms (JSON); the edge's p99 under 50 ms; WebSocket
delivery p99 at most 50 ms. ``docs/observability.md`` lists which histogram uses which.
"""

from __future__ import annotations

from typing import Final

HTTP_SECONDS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""HTTP requests and order acknowledgements: edges at the 20 ms and 50 ms targets, finer
below them (where the p50s are), coarse above (only how bad)."""

LAG_SECONDS: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip
"""Engine lag (wall clock minus event time): the 50 ms delivery target, then seconds for a
slow feed and up to an hour for a backlog being read (a replay, a restart's catch-up)."""

WRITE_SECONDS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""One storage write (a batch of up to 1,000 records in one transaction): a few ms when
well, seconds when the database struggles."""
