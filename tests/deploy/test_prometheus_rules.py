"""The alert rules in deploy/prometheus/ as Prometheus's own tool reads them: ``promtool check
rules`` accepts every file, ``promtool test rules`` passes every unit test, every alert has a
case where it fires and one where it stays quiet, and a rule changed to miss its burn fails
its test (the tests can fail)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = sorted((DEPLOY / "rules").glob("*.yml"))
TESTS = sorted((DEPLOY / "tests").glob("*_test.yml"))


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; scripts/test does it)")
    return found


def run_promtool(*argv: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *argv], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def alerts() -> set[str]:
    return {
        rule["alert"]
        for path in RULES
        for group in load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def cases() -> list[dict[str, Any]]:
    return [
        case
        for path in TESTS
        for test in load(path)["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_promtool_accepts_every_rule_file() -> None:
    assert RULES
    done = run_promtool("check", "rules", *(str(path) for path in RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_unit_test_passes() -> None:
    assert TESTS
    done = run_promtool("test", "rules", *(path.name for path in TESTS), cwd=DEPLOY / "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired = {case["alertname"] for case in cases() if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases() if not case["exp_alerts"]}
    assert alerts() == fired, "alerts without a case where they fire"
    assert alerts() == quiet, "alerts without a case where they stay quiet"
    assert {"ErrorBudgetBurnFast", "LatencyBudgetBurnSlow", "DatabaseUnavailable"} <= alerts()


def test_every_alert_names_its_severity_and_runbook() -> None:
    for path in RULES:
        for group in load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
                    anchor = rule["alert"].lower().removesuffix("fast").removesuffix("slow")
                    assert rule["annotations"]["runbook"] == f"docs/alerting.md#{anchor}"


def test_a_looser_objective_makes_the_burn_test_fail(tmp_path: Path) -> None:
    """The history API's objective changed from 99.9% to 90%: its 4.8% of errors no longer
    burn the budget fast, and the unit test that expects the page fails."""
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY, copy)
    slo = copy / "rules" / "slo.yml"
    text = slo.read_text()
    assert text.count("expr: vector(0.999)\n") == 1
    slo.write_text(text.replace("expr: vector(0.999)\n", "expr: vector(0.9)\n"))
    done = run_promtool("test", "rules", "slo_test.yml", cwd=copy / "tests")
    assert done.returncode != 0
    assert "ErrorBudgetBurnFast" in done.stdout + done.stderr
