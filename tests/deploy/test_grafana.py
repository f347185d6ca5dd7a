"""The Grafana dashboards of deploy/grafana/: the committed JSON is what
``deploy.grafana.build`` builds, each file has what Grafana's provisioning needs, every query
is PromQL that a real Prometheus (Debian's, with the platform's rule files loaded) accepts,
every metric it reads exists, and every service and SLO job has its dashboard."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy.grafana import build as dashboards
from telemetry.admin import admin_server
from telemetry.http import HttpMetrics
from telemetry.metrics import REGISTRY
from tests.telemetry.prometheus import running_prometheus

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
SCRAPE_CONFIG = ROOT / "compose" / "prometheus" / "prometheus.yml"
HAPROXY_NAMES = Path(__file__).with_name("haproxy_metrics.txt")

PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"}
"""Series Prometheus makes itself: per target, and per alert of the rules."""
EXPORTERS = {"kafka_consumergroup_lag"}
"""What an exporter beside the platform serves, as the alert rules read it (docs/alerting.md:
a Kafka exporter's consumer lag)."""
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
"""Grafana's variables in the queries, and what Prometheus is asked instead."""

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def every_query() -> list[str]:
    return sorted({expr for path in DASHBOARDS for expr in queries(load(path))})


def as_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers outside strings, label
    matchers, ranges and label lists that are neither functions nor keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', as_promql(expr))
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", text)
    return {
        name
        for name, call in re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text)
        if not call and name.lower() not in PROMQL_WORDS
    }


def registry_names() -> set[str]:
    """The sample names ``telemetry.metrics.REGISTRY`` serves (its labelled metrics included,
    whose families have no sample before the first update)."""
    names = set()
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("_count", "_sum"),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
        names |= {sample.name for sample in family.samples}
    return names


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def haproxy_names() -> set[str]:
    lines = HAPROXY_NAMES.read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def jobs_of(expr: str) -> set[str]:
    """The jobs an expression names (``job="x"`` or ``job=~"x|y"``)."""
    return {
        job
        for _, value in re.findall(r'\bjob\s*(=~?)\s*"([^"]*)"', expr)
        for job in value.split("|")
    }


# -- the files --------------------------------------------------------------------------------


def test_the_committed_dashboards_are_the_ones_deploy_grafana_build_builds() -> None:
    built = dashboards.rendered()
    assert {path.name for path in DASHBOARDS} == set(built), "python -m deploy.grafana.build"
    for path in DASHBOARDS:
        assert path.read_text() == built[path.name], f"{path.name}: python -m deploy.grafana.build"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_each_dashboard_has_what_grafana_provisioning_needs(path: Path) -> None:
    dashboard = load(path)
    assert 0 < len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    source = provisioned_datasource()
    for panel in dashboard["panels"]:
        assert panel["title"], panel
        assert panel["type"], panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == panel["datasource"]


def test_dashboard_uids_and_titles_are_unique() -> None:
    found = [load(path) for path in DASHBOARDS]
    assert len({dashboard["uid"] for dashboard in found}) == len(found)
    assert len({dashboard["title"] for dashboard in found}) == len(found)


def provisioned_datasource() -> dict[str, Any]:
    document = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = document["datasources"]
    assert isinstance(source, dict)
    return source


def test_grafana_reads_the_compose_prometheus_and_the_mounted_dashboards() -> None:
    source = provisioned_datasource()
    assert source["type"] == "prometheus"
    assert source["uid"] == dashboards.DATASOURCE["uid"]
    compose = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())["services"]
    assert "prometheus" in compose
    assert source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/mdp.yml").read_text())
    (files,) = provider["providers"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in compose["grafana"]["volumes"])
    assert mounts["../deploy/grafana/dashboards"] == files["options"]["path"]
    assert mounts["../deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# -- what the queries read --------------------------------------------------------------------


def test_metric_names_are_read_from_promql_without_functions_labels_or_keywords() -> None:
    expr = (
        'sum by (route, le) (rate(mdp_http_request_duration_seconds_bucket{job="api",'
        'route=~"/v1.*"}[$__rate_interval])) / on (job) group_left () (1 - slo:x:objective)'
        " and time() - max(up offset 5m) > bool 0.5"
    )
    assert metric_names(expr) == {
        "mdp_http_request_duration_seconds_bucket", "slo:x:objective", "up",
    }  # fmt: skip


def test_every_metric_a_dashboard_reads_exists() -> None:
    known = registry_names() | haproxy_names() | recorded_names() | PROMETHEUS_OWN | EXPORTERS
    assert "mdp_http_request_duration_seconds_bucket" in known
    assert "slo:request_errors:ratio_rate1h" in known
    unknown = {(expr, name) for expr in every_query() for name in metric_names(expr) - known}
    assert not unknown, sorted(unknown)


def test_each_service_has_a_dashboard_and_each_scrape_job_is_read() -> None:
    uids = {load(path)["uid"] for path in DASHBOARDS}
    assert uids == {
        "mdp-edge", "mdp-history-api", "mdp-gateway", "mdp-auth", "mdp-main-api",
        "mdp-trading", "mdp-pipeline", "mdp-alerts",
    }  # fmt: skip
    scraped = {
        job["job_name"] for job in yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]
    }
    read = {job for expr in every_query() for job in jobs_of(expr)}
    assert read <= scraped, sorted(read - scraped)
    # Prometheus itself, and the exporters the alert rules read (docs/alerting.md)
    assert scraped - read == {"prometheus", "kafka", "blackbox", "blackbox-tls"}


def slo_jobs() -> set[str]:
    return {
        rule["labels"]["job"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if rule.get("record") == "slo:availability:objective"
    }


def test_every_slo_job_has_its_burn_rates_on_a_dashboard() -> None:
    burns = {
        job
        for expr in every_query()
        if "slo:request_errors:ratio_rate1h" in expr and "slo:availability:objective" in expr
        for job in jobs_of(expr)
    }
    assert slo_jobs() == burns


# -- a real Prometheus ------------------------------------------------------------------------


async def test_prometheus_accepts_every_dashboard_query(tmp_path: Path) -> None:
    with admin_server() as admin:
        async with running_prometheus(
            tmp_path, {"api": f"127.0.0.1:{admin.port}"}, RULES
        ) as prometheus:
            refused = []
            for expr in every_query():
                answer = await prometheus.client.get(
                    "/api/v1/query", params={"query": as_promql(expr)}
                )
                body = answer.json()
                if body["status"] != "success":
                    refused.append((expr, body.get("error")))
            assert not refused, refused
            broken = await prometheus.client.get(
                "/api/v1/query", params={"query": "sum(rate(up[1m])"}
            )
            assert broken.json()["status"] == "error", "a syntax error is refused"


async def test_the_slo_panels_find_their_objectives_in_the_recording_rules(
    tmp_path: Path,
) -> None:
    budgets = sorted(
        {expr for expr in every_query() if expr.startswith("1 - slo:") and "objective" in expr}
    )
    assert budgets
    with admin_server() as admin:
        async with running_prometheus(
            tmp_path, {"api": f"127.0.0.1:{admin.port}"}, RULES
        ) as prometheus:
            await prometheus.until('slo:availability:objective{job="api"}', lambda v: v > 0)
            for expr in budgets:
                (job,) = jobs_of(expr)
                (sample,) = await prometheus.query(expr)
                assert sample["metric"]["job"] == job
                assert 0 < float(sample["value"][1]) <= 0.01 + 1e-9, expr  # budgets of 1% at most


async def _serve_requests(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await client.get("/v1/candles/KRAKEN:BTC-USD")).status_code == 200
    assert (await client.get("/v1/broken")).status_code == 503


async def test_the_history_api_dashboard_shows_the_requests_the_api_serves(
    tmp_path: Path,
) -> None:
    """Every query of the history API's dashboard finds series once Prometheus scrapes a
    process whose app served requests (job api): names, labels and jobs line up with what
    the services and the rules produce. Only the firing alerts stay empty."""

    async def candles(request: Request) -> Response:
        return Response("[]")

    async def broken(request: Request) -> Response:
        return Response("down", status_code=503)

    app = HttpMetrics(
        Starlette(routes=[Route("/v1/candles/{instrument}", candles), Route("/v1/broken", broken)])
    )
    expected = [
        expr
        for expr in queries(load(GRAFANA / "dashboards" / "mdp-history-api.json"))
        if "ALERTS" not in expr
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        await _serve_requests(client)
        with admin_server() as admin:
            async with running_prometheus(
                tmp_path, {"api": f"127.0.0.1:{admin.port}"}, RULES
            ) as prometheus:
                deadline = time.monotonic() + 15
                while True:
                    await _serve_requests(client)
                    found = await asyncio.gather(
                        *(prometheus.query(as_promql(expr)) for expr in expected)
                    )
                    empty = [
                        expr for expr, result in zip(expected, found, strict=True) if not result
                    ]
                    if not empty or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                assert not empty, empty
                by_route = await prometheus.query(
                    as_promql(next(e for e in expected if e.startswith("sum by (route) (rate(")))
                )
    assert {"/v1/candles/{instrument}", "/v1/broken"} <= {
        sample["metric"]["route"] for sample in by_route
    }
