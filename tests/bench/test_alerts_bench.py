"""The alerts benchmark runs on tiny inputs, on a database of the session's server, and prints
every figure; its contenders agree (the figures are not checked)."""

from __future__ import annotations

import re

import pytest

from bench import alert_delivery as delivery
from bench import alerts
from main_api.alerts import AlertEvaluator


def test_alerts_benchmark_runs_and_prints_every_figure(
    test_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    alerts.main(["--smoke", "--database-url", test_database])
    out = capsys.readouterr().out
    for contender in ("indexed (main_api.alerts)", "naive (every alert, every tick)"):
        assert contender in out
    assert "x baseline" in out
    assert re.search(r"2,000 alerts: +\d+\.\d ms", out), out
    assert re.search(r"firing storm: .*\n.* [1-9][\d,]* firings recorded", out), out
    assert re.search(r"[1-9][\d,]* firings delivered: p50 \d+\.\d ms, p99 \d+\.\d ms", out), out
    # the warm-up ends after the change feed's echo of its firings (not measured)
    assert "their echo through the change feed applied and stored (a second batch)" in out
    for stage in ("publish to alerts.events", "the pure step", "the transaction"):
        assert re.search(re.escape(stage) + r"[^\n]*: \d+\.\d / \d+\.\d / \d+\.\d ms", out), stage
    assert re.search(r"rows a round stored: \d+ / \d+ / [1-9]\d*", out), out
    # each delivered firing followed stage by stage, from the ticks' publish to the client
    assert re.search(r"a firing's way, stage by stage \([1-9][\d,]* firings followed", out), out
    for stage in delivery.STAGES:
        line = re.escape(stage) + r": -?\d+\.\d / -?\d+\.\d / -?\d+\.\d ms; slowest 1%: "
        assert re.search(line, out), stage
    for path in ("/healthz (baseline)", "/api/v1/alerts", "/api/v1/watchlists"):
        assert re.search(re.escape(path) + r" +100 +[\d,]+ +\d+\.\d\d +\d+\.\d\d +0\n", out), path


def test_alerts_benchmark_without_a_database_prints_the_evaluator_figures_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    alerts.main(["--smoke", "--no-database"])
    out = capsys.readouterr().out
    assert "x baseline" in out
    assert "firing storm" not in out


def test_alerts_benchmark_contenders_fire_the_same_alerts() -> None:
    names = alerts.instruments(3)
    specs = alerts.synthetic_alerts(600, names)
    batches = alerts.random_walk(3_000, names, 128, 2_000, step_bp=0.5)
    indexed = alerts.run(AlertEvaluator(), specs, batches)
    naive = alerts.run(alerts.NaiveEvaluator(), specs, batches)
    assert len(indexed) > 100
    assert indexed == naive
