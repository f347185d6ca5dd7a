"""The Alertmanager configuration (deploy/alertmanager/alertmanager.yml): ``amtool
check-config`` accepts it, and a real Alertmanager (Debian's ``prometheus-alertmanager``)
given it routes by severity and lets a page inhibit the ticket of the same job and SLI, and
nothing else (docs/alerting.md)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from machine import free_port
from tests.telemetry.prometheus import stop

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
READY_S = 20.0


def program_or_skip(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(
            f"{name} is not installed (apt-get install prometheus-alertmanager; scripts/test"
            " does it)"
        )
    return found


def amtool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [program_or_skip("amtool"), *argv], capture_output=True, text=True, check=False, timeout=60
    )


def test_amtool_accepts_the_configuration() -> None:
    done = amtool("check-config", str(CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_amtool_refuses_a_route_to_a_receiver_that_does_not_exist(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(CONFIG.read_text().replace("receiver: page", "receiver: pager", 1))
    done = amtool("check-config", str(broken))
    assert done.returncode != 0
    assert "pager" in done.stdout + done.stderr


def alert_severities() -> dict[str, str]:
    return {
        rule["alert"]: rule["labels"]["severity"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_alert_is_routed_to_the_receiver_of_its_severity() -> None:
    for alert, severity in alert_severities().items():
        done = amtool(
            "config", "routes", "test", f"--config.file={CONFIG}",
            f"alertname={alert}", f"severity={severity}", "job=api",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == severity, alert


def test_the_inhibitions_name_alerts_and_severities_the_rules_have() -> None:
    severities = alert_severities()
    config = yaml.safe_load(CONFIG.read_text())
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            label, _, value = matcher.partition("=")
            if label == "alertname":
                assert value.strip('"') in severities, matcher


@contextlib.contextmanager
def running_alertmanager(folder: Path) -> Iterator[httpx.Client]:
    binary = program_or_skip("prometheus-alertmanager")
    port = free_port()
    log = (folder / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary, f"--config.file={CONFIG}", f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:
        deadline = time.monotonic() + READY_S
        while True:
            assert process.poll() is None, (folder / "alertmanager.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if client.get("/-/ready").status_code == 200:
                    break
            assert time.monotonic() < deadline, f"alertmanager not ready within {READY_S}s"
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        stop(process)
        log.close()


def alert(name: str, job: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "job": job, "severity": alert_severities()[name]}}


def test_a_page_inhibits_the_ticket_of_its_job_and_sli_only(tmp_path: Path) -> None:
    with running_alertmanager(tmp_path) as client:
        sent = [
            alert("ErrorBudgetBurnFast", "api"),
            alert("ErrorBudgetBurnSlow", "api"),  # the same job and SLI: inhibited
            alert("ErrorBudgetBurnSlow", "auth"),  # another job
            alert("LatencyBudgetBurnSlow", "api"),  # another SLI
        ]
        assert client.post("/api/v2/alerts", json=sent).status_code == 200
        deadline = time.monotonic() + READY_S
        while True:
            states = {
                (found["labels"]["alertname"], found["labels"]["job"]): found["status"]["state"]
                for found in client.get("/api/v2/alerts").json()
            }
            if len(states) == len(sent) and "unprocessed" not in states.values():
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
    assert states == {
        ("ErrorBudgetBurnFast", "api"): "active",
        ("ErrorBudgetBurnSlow", "api"): "suppressed",
        ("ErrorBudgetBurnSlow", "auth"): "active",
        ("LatencyBudgetBurnSlow", "api"): "active",
    }
