"""The Grafana dashboards of ``deploy/grafana/dashboards/``, one per service, built here.

Each dashboard is plain data (Grafana's provisioning JSON); this module only builds it, and
``python -m deploy.grafana.build [FOLDER]`` writes the files (by default into ``dashboards/``
beside it; ``tests/deploy/test_grafana.py`` checks that the committed files are what it
builds, and that every query is PromQL that Prometheus accepts, on metrics that exist). It is
a build tool, outside the runtime packages, and needs only the standard library. The metric
names are those of :mod:`telemetry.metrics`, HAProxy's exporter and the recording rules of
``deploy/prometheus/rules/`` (``docs/observability.md``, ``docs/alerting.md``). Each service is
one Prometheus job, named as in ``compose/prometheus/prometheus.yml``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

DATASOURCE: Final = {"type": "prometheus", "uid": "prometheus"}
"""The provisioned Prometheus data source (``deploy/grafana/provisioning/datasources/``)."""
RATE: Final = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals."""
WIDTH: Final = 24
"""Grafana's grid width; panels here are a third or half of it."""
SLO_WINDOWS: Final = ("5m", "1h", "6h", "1d", "3d")
BURNS: Final = (("1h", 14.4), ("6h", 6.0), ("1d", 3.0), ("3d", 1.0))
"""The burn-rate alerts' long windows and thresholds (``deploy/prometheus/rules/slo.yml``)."""

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    threshold: float | None = None
    """A red line (timeseries) or colour step (stat) where an alert starts."""


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]


def panel(title: str, *queries: Query, **options: Any) -> Panel:
    return Panel(title, queries, **options)


# -- building blocks shared by the services ---------------------------------------------------


def slo_rows(job: str, *, latency: bool = True) -> tuple[Row, ...]:
    """The SLO panels of a job: its error (and slow) ratios against the budget, and the burn
    rates the alerts watch, from the recording rules."""
    sel = f'{{job="{job}"}}'
    errors = panel(
        "Error ratio (5xx) and budget",
        *(Query(f"slo:request_errors:ratio_rate{w}{sel}", w) for w in SLO_WINDOWS),
        Query(f"1 - slo:availability:objective{sel}", "budget"),
        unit="percentunit",
        description="The share of requests answered 5xx per window; the budget is 1 - objective.",
    )
    error_burn = panel(
        "Error budget burn rate",
        *(
            Query(
                f"slo:request_errors:ratio_rate{w}{sel} / on (job) "
                f"(1 - slo:availability:objective{sel})",
                f"{w} (alert over {limit:g})",
            )
            for w, limit in BURNS
        ),
        description="1 spends the 30-day budget in 30 days; the alerts page over 14.4 (1h) or "
        "6 (6h), ticket over 3 (1d) or 1 (3d), each confirmed by a short window.",
        threshold=14.4,
    )
    panels = [errors, error_burn]
    if latency:
        panels += [
            panel(
                "Slow ratio (past the p99 target) and budget",
                *(Query(f"slo:request_slow:ratio_rate{w}{sel}", w) for w in SLO_WINDOWS),
                Query(f"1 - slo:latency:objective{sel}", "budget"),
                unit="percentunit",
                description="The share of requests slower than the target (slo:latency:target's "
                "le); 1% may be.",
            ),
            panel(
                "Latency budget burn rate",
                *(
                    Query(
                        f"slo:request_slow:ratio_rate{w}{sel} / on (job) "
                        f"(1 - slo:latency:objective{sel})",
                        f"{w} (alert over {limit:g})",
                    )
                    for w, limit in BURNS
                ),
                threshold=14.4,
            ),
        ]
    panels.append(
        panel(
            "SLO alerts firing",
            Query(
                f'sum by (alertname) (ALERTS{{job="{job}", alertstate="firing"}})', "{{alertname}}"
            ),
            kind="stat",
            threshold=1,
        )
    )
    return (Row("SLO", tuple(panels)),)


def http_rows(job: str) -> tuple[Row, ...]:
    """Request rate, answers and latency by route of ``mdp_http_request_duration_seconds``."""
    sel = f'job="{job}"'
    count = "mdp_http_request_duration_seconds_count"
    bucket = "mdp_http_request_duration_seconds_bucket"
    return (
        Row(
            "Requests",
            (
                panel(
                    "Requests by route",
                    Query(f"sum by (route) (rate({count}{{{sel}}}[{RATE}]))", "{{route}}"),
                    unit="reqps",
                ),
                panel(
                    "Answers by status",
                    Query(f"sum by (status) (rate({count}{{{sel}}}[{RATE}]))", "{{status}}"),
                    unit="reqps",
                ),
                panel(
                    "5xx by route",
                    Query(
                        f'sum by (route) (rate({count}{{{sel}, status=~"5.."}}[{RATE}]))',
                        "{{route}}",
                    ),
                    unit="reqps",
                ),
                panel(
                    "p99 latency by route",
                    Query(
                        f"histogram_quantile(0.99, sum by (route, le) "
                        f"(rate({bucket}{{{sel}}}[{RATE}])))",
                        "{{route}}",
                    ),
                    unit="s",
                ),
                panel(
                    "p50 latency by route",
                    Query(
                        f"histogram_quantile(0.5, sum by (route, le) "
                        f"(rate({bucket}{{{sel}}}[{RATE}])))",
                        "{{route}}",
                    ),
                    unit="s",
                ),
                panel(
                    "Share within the p99 target",
                    Query(
                        f"sum(rate({bucket}{{{sel}}}[{RATE}]) * on (job, le) group_left () "
                        f"slo:latency:target{{{sel}}}) / sum(rate({count}{{{sel}}}[{RATE}]))",
                        "within target",
                    ),
                    unit="percentunit",
                ),
            ),
        ),
    )


def process_row(job: str, title: str = "Process") -> Row:
    """Whether the job's targets answer, and their CPU and memory (prometheus-client's
    process collector)."""
    sel = f'job="{job}"'
    return Row(
        title,
        (
            panel("Targets up", Query(f"sum(up{{{sel}}})", "up"), kind="stat"),
            panel(
                "CPU",
                Query(f"rate(process_cpu_seconds_total{{{sel}}}[{RATE}])", "{{instance}}"),
                unit="percentunit",
            ),
            panel(
                "Resident memory",
                Query(f"process_resident_memory_bytes{{{sel}}}", "{{instance}}"),
                unit="bytes",
            ),
            panel(
                "Open file descriptors",
                Query(f"process_open_fds{{{sel}}}", "{{instance}}"),
            ),
        ),
    )


def consumer_lag(group: str) -> Panel:
    return panel(
        f"Consumer lag: {group}",
        Query(
            f'sum by (topic, partition) (kafka_consumergroup_lag{{consumergroup="{group}"}})',
            "{{topic}}/{{partition}}",
        ),
        description="Records not read yet, from a Kafka exporter (docs/alerting.md, "
        "ConsumerLagHigh at 10,000); empty without one.",
        threshold=10000,
    )


def http_service(uid: str, title: str, description: str, job: str, *extra: Row) -> Dashboard:
    return Dashboard(
        uid, title, description, (*slo_rows(job), *http_rows(job), *extra, process_row(job))
    )


# -- the services -----------------------------------------------------------------------------


def edge() -> Dashboard:
    public = 'proxy="public"'
    return Dashboard(
        "mdp-edge",
        "MDP / Edge (HAProxy)",
        "The one entry point: its requests, answers, sessions, rate-limit denials and the health "
        "of each backend, from HAProxy's own exporter (job haproxy).",
        (
            *slo_rows("haproxy", latency=False),
            Row(
                "Requests",
                (
                    panel(
                        "Requests",
                        Query(
                            f"sum(rate(haproxy_frontend_http_requests_total{{{public}}}[{RATE}]))"
                        ),
                        unit="reqps",
                    ),
                    panel(
                        "Answers by class",
                        Query(
                            f"sum by (code) (rate(haproxy_frontend_http_responses_total"
                            f"{{{public}}}[{RATE}]))",
                            "{{code}}",
                        ),
                        unit="reqps",
                    ),
                    panel(
                        "Denied (rate limits, refused tokens)",
                        Query(
                            f"sum(rate(haproxy_frontend_requests_denied_total{{{public}}}[{RATE}]))",
                            "denied",
                        ),
                        Query(
                            f"sum(rate(haproxy_frontend_request_errors_total{{{public}}}[{RATE}]))",
                            "request errors",
                        ),
                        unit="reqps",
                    ),
                    panel(
                        "Sessions",
                        Query(f"haproxy_frontend_current_sessions{{{public}}}", "current"),
                    ),
                    panel(
                        "Connections",
                        Query(
                            f"sum(rate(haproxy_frontend_connections_total{{{public}}}[{RATE}]))",
                            "new",
                        ),
                        unit="cps",
                    ),
                    panel(
                        "Traffic",
                        Query(
                            f"sum(rate(haproxy_frontend_bytes_in_total{{{public}}}[{RATE}]))", "in"
                        ),
                        Query(
                            f"sum(rate(haproxy_frontend_bytes_out_total{{{public}}}[{RATE}]))",
                            "out",
                        ),
                        unit="Bps",
                    ),
                ),
            ),
            Row(
                "Backends",
                (
                    panel(
                        "Backends up",
                        Query('haproxy_backend_status{state="UP"}', "{{proxy}}"),
                        kind="stat",
                    ),
                    panel(
                        "Servers in service",
                        Query("haproxy_backend_active_servers", "{{proxy}}"),
                    ),
                    panel(
                        "5xx by backend",
                        Query(
                            "sum by (proxy) (rate(haproxy_backend_http_responses_total"
                            f'{{code="5xx"}}[{RATE}]))',
                            "{{proxy}}",
                        ),
                        unit="reqps",
                    ),
                    panel(
                        "Average response time by backend",
                        Query("haproxy_backend_response_time_average_seconds", "{{proxy}}"),
                        unit="s",
                    ),
                    panel(
                        "Queued requests by backend",
                        Query("haproxy_backend_current_queue", "{{proxy}}"),
                    ),
                    panel(
                        "Failed health checks by server",
                        Query(
                            f"sum by (proxy, server) (rate(haproxy_server_check_failures_total"
                            f"[{RATE}]))",
                            "{{proxy}}/{{server}}",
                        ),
                    ),
                ),
            ),
            Row(
                "Process",
                (
                    panel("Targets up", Query('sum(up{job="haproxy"})', "up"), kind="stat"),
                    panel(
                        "Idle time",
                        Query('haproxy_process_idle_time_percent{job="haproxy"}', "idle"),
                        unit="percent",
                    ),
                    panel(
                        "Connections",
                        Query('haproxy_process_current_connections{job="haproxy"}', "current"),
                        Query('haproxy_process_hard_max_connections{job="haproxy"}', "limit"),
                    ),
                ),
            ),
        ),
    )


def history_api() -> Dashboard:
    return http_service(
        "mdp-history-api",
        "MDP / History API",
        "The history HTTP API and chart page (job api): p99 target 50 ms, 99.9% available.",
        "api",
    )


def auth() -> Dashboard:
    return http_service(
        "mdp-auth",
        "MDP / Auth",
        "Accounts, API keys and tokens (job auth): p99 target 100 ms, 99.95% available.",
        "auth",
    )


def main_api() -> Dashboard:
    return http_service(
        "mdp-main-api",
        "MDP / Main API",
        "Profiles, watchlists, price alerts and notifications (job main-api): p99 target 100 ms, "
        "99.95% available.",
        "main-api",
    )


def trading() -> Dashboard:
    ack = "mdp_trading_order_ack_seconds"
    return http_service(
        "mdp-trading",
        "MDP / Trading",
        "Orders on the paper venue (job trading; its log's followers, job trading-follow):"
        " p99 target 10 ms, 99.99% available.",
        "trading",
        Row(
            "Orders",
            (
                panel(
                    "Orders by outcome",
                    Query(
                        f'sum by (outcome) (rate({ack}_count{{job="trading"}}[{RATE}]))',
                        "{{outcome}}",
                    ),
                    unit="reqps",
                ),
                panel(
                    "Order ack p99 by outcome",
                    Query(
                        f"histogram_quantile(0.99, sum by (outcome, le) "
                        f'(rate({ack}_bucket{{job="trading"}}[{RATE}])))',
                        "{{outcome}}",
                    ),
                    unit="s",
                    threshold=0.01,
                ),
                panel(
                    "Sagas ended by outcome",
                    Query(
                        "sum by (outcome) "
                        f'(rate(mdp_trading_saga_outcomes_total{{job="trading"}}[{RATE}]))',
                        "{{outcome}}",
                    ),
                    unit="ops",
                ),
            ),
        ),
        process_row("trading-follow", "The log's followers: outbox and projector (trading-follow)"),
    )


def gateway() -> Dashboard:
    sel = '{job="gateway"}'
    return Dashboard(
        "mdp-gateway",
        "MDP / WebSocket gateway",
        "Clients, subscriptions, slow clients' queues, conflations and closes (job gateway).",
        (
            Row(
                "Clients",
                (
                    panel("Clients", Query(f"sum(mdp_gateway_clients{sel})", "clients")),
                    panel(
                        "Clients by instance",
                        Query(f"mdp_gateway_clients{sel}", "{{instance}}"),
                    ),
                    panel(
                        "Subscriptions",
                        Query(f"sum(mdp_gateway_subscriptions{sel})", "subscriptions"),
                    ),
                    panel(
                        "Closes by code",
                        Query(
                            f"sum by (code) (rate(mdp_gateway_closes_total{sel}[{RATE}]))",
                            "{{code}}",
                        ),
                        unit="cps",
                    ),
                ),
            ),
            Row(
                "Slow clients",
                (
                    panel(
                        "Messages waiting in send queues",
                        Query(f"mdp_gateway_send_queue_depth{sel}", "{{instance}}"),
                        description="GatewayClientsBehind tickets over 10,000 for 5 minutes.",
                        threshold=10000,
                    ),
                    panel(
                        "Lagging clients",
                        Query(f"mdp_gateway_lagging_clients{sel}", "{{instance}}"),
                    ),
                    panel(
                        "Conflations",
                        Query(
                            f"sum(rate(mdp_gateway_conflations_total{sel}[{RATE}]))",
                            "conflated",
                        ),
                        unit="ops",
                    ),
                ),
            ),
            process_row("gateway"),
        ),
    )


def pipeline() -> Dashboard:
    lag = "mdp_engine_lag_seconds_bucket"
    writer = "mdp_writer_batch_seconds_bucket"
    return Dashboard(
        "mdp-pipeline",
        "MDP / Pipeline",
        "Ticks from the feeds (job ingest) through the candle workers (job worker) to the "
        "storage writer (job writer), and the consumer groups between them.",
        (
            Row(
                "Ingest",
                (
                    panel(
                        "Ticks by venue",
                        Query(
                            f"sum by (venue) (rate(mdp_ingest_ticks_total[{RATE}]))", "{{venue}}"
                        ),
                        unit="ops",
                    ),
                    panel(
                        "Batches by venue",
                        Query(
                            f"sum by (venue) (rate(mdp_ingest_batches_total[{RATE}]))", "{{venue}}"
                        ),
                        unit="ops",
                    ),
                    panel(
                        "Feed gaps by venue (10 minutes)",
                        Query("sum by (venue) (increase(mdp_ingest_gaps_total[10m]))", "{{venue}}"),
                        description="GapStorm tickets over 10.",
                        threshold=10,
                    ),
                    panel(
                        "Rejected ticks by venue and reason",
                        Query(
                            f"sum by (venue, reason) (rate(mdp_ticks_rejected_total[{RATE}]))",
                            "{{venue}} {{reason}}",
                        ),
                        unit="ops",
                    ),
                ),
            ),
            Row(
                "Engine",
                (
                    panel(
                        "Ticks in, candles out",
                        Query(f"sum(rate(mdp_engine_ticks_total[{RATE}]))", "ticks"),
                        Query(f"sum(rate(mdp_engine_candles_total[{RATE}]))", "candle updates"),
                        unit="ops",
                    ),
                    panel(
                        "Engine lag p50 and p99",
                        Query(
                            f"histogram_quantile(0.99, sum by (le) (rate({lag}[{RATE}])))", "p99"
                        ),
                        Query(f"histogram_quantile(0.5, sum by (le) (rate({lag}[{RATE}])))", "p50"),
                        unit="s",
                        description="Wall clock minus the newest event time of each step; "
                        "EngineLagHigh pages over 5 s (p99) for 5 minutes.",
                        threshold=5,
                    ),
                    panel(
                        "Newest event's age",
                        Query("time() - max(mdp_engine_event_time_seconds)", "age"),
                        unit="s",
                        kind="stat",
                        description="EngineStalled pages over 120 s while ticks come in.",
                        threshold=120,
                    ),
                    consumer_lag("candle-engine"),
                ),
            ),
            Row(
                "Writer",
                (
                    panel(
                        "Rows stored by kind",
                        Query(f"sum by (kind) (rate(mdp_writer_rows_total[{RATE}]))", "{{kind}}"),
                        unit="ops",
                    ),
                    panel(
                        "Write latency p50 and p99",
                        Query(
                            f"histogram_quantile(0.99, sum by (le) (rate({writer}[{RATE}])))",
                            "p99",
                        ),
                        Query(
                            f"histogram_quantile(0.5, sum by (le) (rate({writer}[{RATE}])))", "p50"
                        ),
                        unit="s",
                    ),
                    panel(
                        "Failed writes",
                        Query(f"sum(rate(mdp_writer_failures_total[{RATE}]))", "failures"),
                        unit="ops",
                        description="DatabaseUnavailable pages when writes fail and none succeed.",
                    ),
                    panel(
                        "Write buffer",
                        Query("sum(mdp_writer_buffer_records)", "records"),
                        Query("sum(mdp_writer_buffer_bytes)", "bytes"),
                    ),
                    consumer_lag("storage-writer"),
                ),
            ),
            Row(
                "Processes",
                (
                    panel(
                        "Targets up",
                        Query('sum by (job) (up{job=~"ingest|worker|writer"})', "{{job}}"),
                        kind="stat",
                    ),
                    panel(
                        "Resident memory",
                        Query(
                            'process_resident_memory_bytes{job=~"ingest|worker|writer"}',
                            "{{job}} {{instance}}",
                        ),
                        unit="bytes",
                    ),
                ),
            ),
        ),
    )


def alerts() -> Dashboard:
    sel = '{job="alerts"}'
    return Dashboard(
        "mdp-alerts",
        "MDP / Alert evaluator",
        "The price-alert evaluator (job alerts): firings and its consumer group.",
        (
            Row(
                "Firings",
                (
                    panel(
                        "Alerts fired",
                        Query(f"sum(rate(mdp_alerts_fired_total{sel}[{RATE}]))", "fired"),
                        unit="ops",
                    ),
                    panel(
                        "Fired in the last hour",
                        Query(f"sum(increase(mdp_alerts_fired_total{sel}[1h]))", "fired"),
                        kind="stat",
                    ),
                    consumer_lag("alerts.evaluator"),
                ),
            ),
            process_row("alerts"),
        ),
    )


DASHBOARDS: Final = (edge, history_api, gateway, auth, main_api, trading, pipeline, alerts)
"""Every dashboard, one per service (the pipeline's workers share one)."""

# -- Grafana's JSON ---------------------------------------------------------------------------


def _panel_json(item: Panel, panel_id: int, x: int, y: int, width: int) -> Json:
    steps: list[Json] = [{"color": "green", "value": None}]
    if item.threshold is not None:
        steps.append({"color": "red", "value": item.threshold})
    custom: Json = {}
    if item.kind == "timeseries" and item.threshold is not None:
        custom = {"thresholdsStyle": {"mode": "line"}}
    return {
        "id": panel_id,
        "type": item.kind,
        "title": item.title,
        "description": item.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": width, "h": 8},
        "fieldConfig": {
            "defaults": {
                "unit": item.unit,
                "custom": custom,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend or "__auto",
                "range": True,
            }
            for index, query in enumerate(item.queries)
        ],
    }


def to_json(dashboard: Dashboard) -> Json:
    """Grafana's dashboard model: rows as collapsible row panels, three panels a line."""
    panels: list[Json] = []
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": WIDTH, "h": 1},
                "panels": [],
            }
        )
        y += 1
        width = WIDTH // 3
        for index, item in enumerate(row.panels):
            x = (index % 3) * width
            if index and x == 0:
                y += 8
            panels.append(_panel_json(item, len(panels) + 1, x, y, width))
        y += 8
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["mdp"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def rendered() -> dict[str, str]:
    """Every dashboard's file name and text."""
    built = [build() for build in DASHBOARDS]
    return {f"{item.uid}.json": json.dumps(to_json(item), indent=2) + "\n" for item in built}


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(__file__).with_name("dashboards")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (folder / name).write_text(text)
        print(folder / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
