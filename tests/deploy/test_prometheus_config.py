"""The compose cluster's Prometheus configuration (compose/prometheus/prometheus.yml):
``promtool check config`` accepts it with the rule files it loads, and it scrapes every
platform service at the admin port the compose services serve, each as the job the SLO rules
and dashboards name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_prometheus_rules import promtool
from tests.mdp.test_compose import compose

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "compose" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules"
ADMIN_PORT = 9464
"""The admin port every platform service serves in compose (``--admin-port``)."""
JOBS = {
    "haproxy": {"edge"}, "api": {"api"}, "auth": {"auth"}, "main-api": {"main-api"},
    "trading": {"trading"}, "gateway": {"gateway-a", "gateway-b"}, "ingest": {"ingest"},
    "worker": {"worker"}, "writer": {"writer"}, "alerts": {"alerts"},
}  # fmt: skip


def config() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return document


def test_promtool_accepts_the_configuration_and_its_rule_files(tmp_path: Path) -> None:
    # as mounted in the container: the rules beside the configuration
    shutil.copy(CONFIG, tmp_path / "prometheus.yml")
    (tmp_path / "rules").symlink_to(RULES)
    done = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(list(RULES.glob('*.yml')))} rule files found" in done.stdout


def test_promtool_refuses_a_broken_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "prometheus.yml"
    broken.write_text(CONFIG.read_text().replace("dns_sd_configs", "dns_sd_config", 1))
    (tmp_path / "rules").symlink_to(RULES)
    done = subprocess.run(
        [promtool(), "check", "config", str(broken)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0


def targets(job: dict[str, Any]) -> set[tuple[str, int]]:
    found = {
        (host, int(port))
        for static in job.get("static_configs", [])
        for host, port in (target.rsplit(":", 1) for target in static["targets"])
    }
    return found | {
        (name, dns["port"]) for dns in job.get("dns_sd_configs", []) for name in dns["names"]
    }


def test_every_service_is_scraped_at_its_admin_port_as_its_job() -> None:
    jobs = {job["job_name"]: job for job in config()["scrape_configs"]}
    assert set(jobs) == {*JOBS, "prometheus"}
    services = compose()["services"]
    edge = services["edge"]["command"]
    edge_port = int(edge[edge.index("--metrics-port") + 1])
    assert edge[edge.index("--metrics-host") + 1] == "0.0.0.0"
    assert targets(jobs["haproxy"]) == {("edge", edge_port)}
    for job, names in JOBS.items():
        assert names <= set(services), job
        if job != "haproxy":
            assert targets(jobs[job]) == {(name, ADMIN_PORT) for name in names}, job


def test_prometheus_loads_the_rules_and_alerts_alertmanager_as_compose_mounts_them() -> None:
    document = config()
    assert document["rule_files"] == ["rules/*.yml"]
    (managers,) = document["alerting"]["alertmanagers"]
    assert managers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    volumes = compose()["services"]["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "../deploy/prometheus/rules:/etc/prometheus/rules:ro" in volumes


@pytest.mark.parametrize("job", sorted(set(JOBS) - {"haproxy"}))
def test_each_scraped_service_serves_its_admin_port_where_prometheus_looks(job: str) -> None:
    commands = {name: compose()["services"][name]["command"] for name in JOBS[job]}
    given = {name: argv for name, argv in commands.items() if "--admin-port" in argv}
    if not given:
        pytest.skip(f"{job}: no --admin-port in its compose command yet (added in another branch)")
    assert set(given) == set(commands), f"{job}: every instance or none"
    for name, argv in given.items():
        assert argv[argv.index("--admin-port") + 1] == str(ADMIN_PORT), name
        assert argv[argv.index("--admin-host") + 1] == "0.0.0.0", name
