"""The platform's Prometheus metrics: one registry per process, every metric defined here.

Services import the metric they update; nothing else creates metrics, so the names, labels
and buckets live in one place (``docs/observability.md`` lists them). The admin server
(:mod:`telemetry.admin`) exposes :data:`REGISTRY` on ``/metrics``.

Hot paths update per batch, never per tick: a counter's ``inc(len(batch))`` once per polled
batch, a labelled child looked up once per instrument (:class:`PerVenue`), and the gauges a
scrape can read from the objects themselves are :class:`~telemetry.live.LiveGauge`\\ s.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from telemetry.buckets import HTTP_SECONDS, LAG_SECONDS, WRITE_SECONDS
from telemetry.live import LiveGauge

REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""The process's registry: the metrics below, and the process's own (CPU, memory, GC)."""
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

UNKNOWN_VENUE: Final = "unknown"
"""The venue label of what names no instrument (a tick file's bad row)."""

# -- ingest ---------------------------------------------------------------------------------

INGEST_TICKS: Final = Counter(
    "mdp_ingest_ticks", "Ticks a feed published on md.ticks", ["venue"], registry=REGISTRY
)
INGEST_BATCHES: Final = Counter(
    "mdp_ingest_batches", "Tick batches a feed published on md.ticks", ["venue"],
    registry=REGISTRY,
)  # fmt: skip
INGEST_GAPS: Final = Counter(
    "mdp_ingest_gaps", "Feed gaps (spans a feed may have missed) published on md.ticks",
    ["venue"], registry=REGISTRY,
)  # fmt: skip
TICKS_REJECTED: Final = Counter(
    "mdp_ticks_rejected",
    "What went to md.ticks.rejected: bad rows and venue messages (ingest), late and"
    " undecodable ticks (the engine)",
    ["venue", "reason"],
    registry=REGISTRY,
)

# -- engine -----------------------------------------------------------------------------------

ENGINE_TICKS: Final = Counter(
    "mdp_engine_ticks", "Ticks the candle engine was fed", registry=REGISTRY
)
ENGINE_CANDLES: Final = Counter(
    "mdp_engine_candles", "Candle updates the engine published on md.candles", registry=REGISTRY
)
ENGINE_LAG: Final = Histogram(
    "mdp_engine_lag_seconds",
    "Wall clock minus the newest event time of each batch the engine was fed",
    buckets=LAG_SECONDS,
    registry=REGISTRY,
)
ENGINE_EVENT_TIME: Final = Gauge(
    "mdp_engine_event_time_seconds",
    "The newest event time the engine has seen (Unix seconds)",
    registry=REGISTRY,
)

# -- bus consumers (every processor loop) ------------------------------------------------------

CONSUMER_LAG: Final = LiveGauge(
    "mdp_consumer_lag_records",
    "Records of a partition after the consumer's position (its end as the consumer last"
    " heard it), per group and partition; refreshed once a second by the processor loop"
    " (the candle worker: by its timer)",
    ["group", "topic", "partition"],
)

# -- storage writer -------------------------------------------------------------------------

WRITER_BATCH: Final = Histogram(
    "mdp_writer_batch_seconds",
    "One storage write (a batch of records and its offsets in one transaction)",
    buckets=WRITE_SECONDS,
    registry=REGISTRY,
)
WRITER_ROWS: Final = Counter(
    "mdp_writer_rows", "Rows the storage writer stored", ["kind"], registry=REGISTRY
)
WRITER_FAILURES: Final = Counter(
    "mdp_writer_failures", "Storage writes that failed (database unavailable)", registry=REGISTRY
)
WRITER_REFUSED: Final = Counter(
    "mdp_writer_refused",
    "Records the storage writer skipped: the database refused a value of theirs",
    registry=REGISTRY,
)
DB_POOL_CONNECTIONS: Final = LiveGauge(
    "mdp_db_pool_connections",
    "Connections of a psycopg_pool pool by state (used, idle), and requests waiting for one"
    " (state waiting), read at scrape time",
    ["pool", "state"],
)
WRITER_BUFFER_RECORDS: Final = LiveGauge(
    "mdp_writer_buffer_records", "Records read but not stored yet (the write buffer)"
)
WRITER_BUFFER_BYTES: Final = LiveGauge(
    "mdp_writer_buffer_bytes", "Bytes of the records read but not stored yet"
)

# -- WebSocket gateway ------------------------------------------------------------------------

GATEWAY_CLIENTS: Final = LiveGauge("mdp_gateway_clients", "WebSocket clients connected")
GATEWAY_SUBSCRIPTIONS: Final = LiveGauge(
    "mdp_gateway_subscriptions", "Subscriptions of the connected clients to public channels"
)
GATEWAY_QUEUE_DEPTH: Final = LiveGauge(
    "mdp_gateway_send_queue_depth",
    "Messages waiting in the clients' send queues (clients that do not keep up)",
)
GATEWAY_LAGGING: Final = LiveGauge(
    "mdp_gateway_lagging_clients", "Clients with messages waiting in their send queue"
)
GATEWAY_CONFLATIONS: Final = Counter(
    "mdp_gateway_conflations",
    "Candle updates a lagging client lost to a newer one of the same candle",
    registry=REGISTRY,
)
GATEWAY_CLOSES: Final = Counter(
    "mdp_gateway_closes", "WebSocket connections ended, by close code", ["code"],
    registry=REGISTRY,
)  # fmt: skip

# -- HTTP services ----------------------------------------------------------------------------

HTTP_REQUESTS: Final = Histogram(
    "mdp_http_request_duration_seconds",
    "HTTP requests served, by method, route template and status",
    ["method", "route", "status"],
    buckets=HTTP_SECONDS,
    registry=REGISTRY,
)

TLS_CERTIFICATE_EXPIRY: Final = Gauge(
    "mdp_tls_certificate_expiry_seconds",
    "When a certificate this process serves or calls with (--tls-*, --backend-tls-*) expires,"
    " UNIX seconds (as probe_ssl_earliest_cert_expiry), by file name",
    ["file"],
    registry=REGISTRY,
)

# -- main API and trading ---------------------------------------------------------------------

ALERTS_FIRED: Final = Counter(
    "mdp_alerts_fired", "Price alerts the evaluator fired", registry=REGISTRY
)
ORDER_ACK: Final = Histogram(
    "mdp_trading_order_ack_seconds",
    "From an order's POST to its answer (accepted or refused), by outcome",
    ["outcome"],
    buckets=HTTP_SECONDS,
    registry=REGISTRY,
)
SAGA_OUTCOMES: Final = Counter(
    "mdp_trading_saga_outcomes",
    "Order sagas ended (the order terminal and nothing left reserved), by outcome",
    ["outcome"],
    registry=REGISTRY,
)

for _live in (
    CONSUMER_LAG, DB_POOL_CONNECTIONS, WRITER_BUFFER_RECORDS, WRITER_BUFFER_BYTES,
    GATEWAY_CLIENTS, GATEWAY_SUBSCRIPTIONS, GATEWAY_QUEUE_DEPTH, GATEWAY_LAGGING,
):  # fmt: skip
    REGISTRY.register(_live)


def venue_of(instrument: str | None) -> str:
    """``VENUE`` of ``VENUE:SYMBOL`` (:data:`UNKNOWN_VENUE` without an instrument)."""
    if not instrument:
        return UNKNOWN_VENUE
    venue, sep, _ = instrument.partition(":")
    return venue if sep else UNKNOWN_VENUE


class PerVenue:
    """A labelled metric's child by instrument, looked up once per instrument (a label
    lookup costs about a microsecond; a dict hit a tenth of that)."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Counter) -> None:
        self._metric = metric
        self._children: dict[str, Counter] = {}

    def __call__(self, instrument: str) -> Counter:
        child = self._children.get(instrument)
        if child is None:
            child = self._children[instrument] = self._metric.labels(venue_of(instrument))
        return child


def count_reject(instrument: str | None, reason: str) -> None:
    """One reject in :data:`TICKS_REJECTED` (rejects are rare: no caching)."""
    TICKS_REJECTED.labels(venue_of(instrument), reason).inc()
