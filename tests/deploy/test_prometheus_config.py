"""The compose cluster's Prometheus configuration (compose/prometheus/prometheus.yml):
``promtool check config`` accepts it with the rule files it loads and the TLS override's probe
targets, it scrapes every platform service at the admin port the compose services serve, each
as the job the SLO rules and dashboards name, and the exporters beside them: the Kafka
exporter at the port it listens on, the blackbox exporter probing the edge's public health
URLs, and over mutual TLS the services the TLS override serves."""

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
BLACKBOX = ROOT / "compose" / "prometheus" / "blackbox.yml"
TLS_PROBES = ROOT / "compose" / "prometheus" / "probes-tls.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules"
ADMIN_PORT = 9464
"""The admin port every platform service serves in compose (``--admin-port``)."""
JOBS = {
    "haproxy": {"edge"}, "api": {"api"}, "auth": {"auth"}, "main-api": {"main-api"},
    "trading": {"trading"}, "trading-follow": {"trading-follow"},
    "gateway": {"gateway-a", "gateway-b"}, "ingest": {"ingest"},
    "worker": {"worker"}, "writer": {"writer"}, "alerts": {"alerts"},
}  # fmt: skip
EXPORTER_JOBS = {"kafka", "blackbox", "blackbox-tls"}
"""The exporters' jobs: what the platform's processes cannot see of themselves."""


def config() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return document


def test_promtool_accepts_the_configuration_and_its_rule_files(tmp_path: Path) -> None:
    # as mounted in the container: the rules beside the configuration, and the TLS
    # override's probe targets in probes/ (promtool reads them too)
    shutil.copy(CONFIG, tmp_path / "prometheus.yml")
    (tmp_path / "rules").symlink_to(RULES)
    (tmp_path / "probes").mkdir()
    shutil.copy(TLS_PROBES, tmp_path / "probes" / "tls.yml")
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
    assert set(jobs) == {*JOBS, *EXPORTER_JOBS, "prometheus"}
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


OVERRIDES = ("docker-compose.staging.yml", "docker-compose.tls.yml")


@pytest.mark.parametrize("override", [None, *OVERRIDES])
def test_each_scraped_service_serves_its_admin_port_where_prometheus_looks(
    override: str | None,
) -> None:
    """In production and with each override (whose commands replace production's), every
    instance of every job serves its admin port where its job looks, on the network."""
    services = compose()["services"]
    changed = compose(override)["services"] if override else {}
    for job, names in JOBS.items():
        if job == "haproxy":
            continue
        for name in names:
            argv = changed.get(name, {}).get("command") or services[name]["command"]
            assert argv[argv.index("--admin-port") + 1] == str(ADMIN_PORT), (override, name)
            assert argv[argv.index("--admin-host") + 1] == "0.0.0.0", (override, name)


def test_promtool_refuses_broken_probe_targets(tmp_path: Path) -> None:
    shutil.copy(CONFIG, tmp_path / "prometheus.yml")
    (tmp_path / "rules").symlink_to(RULES)
    (tmp_path / "probes").mkdir()
    broken = TLS_PROBES.read_text().replace("targets", "target")
    (tmp_path / "probes" / "tls.yml").write_text(broken)
    done = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "probes/*.yml" in done.stdout + done.stderr


def _listens_on(argv: list[str], flag: str) -> int:
    (given,) = [word for word in argv if word.startswith(f"{flag}=")]
    return int(given.rsplit(":", 1)[1])


def test_the_kafka_exporter_is_scraped_where_it_listens_and_reads_the_compose_broker() -> None:
    (job,) = [job for job in config()["scrape_configs"] if job["job_name"] == "kafka"]
    exporter = compose()["services"]["kafka-exporter"]
    assert exporter["image"].startswith("danielqsj/kafka-exporter:v")
    port = _listens_on(exporter["command"], "--web.listen-address")
    assert targets(job) == {("kafka-exporter", port)}
    (server,) = [word for word in exporter["command"] if word.startswith("--kafka.server=")]
    bootstrap = compose()["x-mdp"]["environment"]["KAFKA_BOOTSTRAP"]
    assert server.removeprefix("--kafka.server=") == bootstrap
    assert exporter["depends_on"]["kafka"] == {"condition": "service_healthy"}


def probe_jobs() -> dict[str, dict[str, Any]]:
    return {
        job["job_name"]: job
        for job in config()["scrape_configs"]
        if job["job_name"].startswith("blackbox")
    }


@pytest.mark.parametrize("name", ["blackbox", "blackbox-tls"])
def test_each_probe_job_asks_the_blackbox_exporter_with_a_module_it_has(name: str) -> None:
    job = probe_jobs()[name]
    assert job["metrics_path"] == "/probe"
    (module,) = job["params"]["module"]
    modules = yaml.safe_load(BLACKBOX.read_text())["modules"]
    assert module in modules
    relabels = {rule["target_label"]: rule for rule in job["relabel_configs"]}
    assert relabels["__param_target"]["source_labels"] == ["__address__"]
    assert relabels["instance"]["source_labels"] == ["__param_target"]
    exporter = compose()["services"]["blackbox-exporter"]
    assert exporter["image"].startswith("prom/blackbox-exporter:v")
    assert relabels["__address__"]["replacement"] == "blackbox-exporter:9115"
    assert "./prometheus/blackbox.yml:/etc/blackbox_exporter/config.yml:ro" in exporter["volumes"]
    assert exporter["command"] == ["--config.file=/etc/blackbox_exporter/config.yml"]


def test_the_edge_is_probed_at_its_public_health_urls_over_http() -> None:
    (static,) = probe_jobs()["blackbox"]["static_configs"]
    edge = compose()["services"]["edge"]["command"]
    public = edge[edge.index("--port") + 1]
    assert static["targets"]
    for url in static["targets"]:
        assert url.startswith(f"http://edge:{public}/"), url
        assert url.endswith("/healthz"), url
    module = yaml.safe_load(BLACKBOX.read_text())["modules"]["http_2xx"]
    assert module["prober"] == "http"
    assert "tls_config" not in module["http"]


def test_the_tls_override_has_the_services_probed_over_mutual_tls() -> None:
    """Every service the TLS override serves over TLS, at its port, on https, with the module
    that presents a certificate; the override mounts the targets where the job reads them and
    the certificates where the module reads them."""
    tls = compose("docker-compose.tls.yml")["services"]
    served = {
        name: service["command"][service["command"].index("--port") + 1]
        for name, service in tls.items()
        if "--tls-cert" in service.get("command", [])
    }
    (group,) = yaml.safe_load(TLS_PROBES.read_text())
    probed = {url.removeprefix("https://").split("/")[0] for url in group["targets"]}
    assert probed == {f"{name}:{port}" for name, port in served.items()}
    assert all(url.startswith("https://") for url in group["targets"])
    (sd,) = probe_jobs()["blackbox-tls"]["file_sd_configs"]
    assert sd["files"] == ["probes/*.yml"]
    mount = "./prometheus/probes-tls.yml:/etc/prometheus/probes/tls.yml:ro"
    assert mount in tls["prometheus"]["volumes"]
    module = yaml.safe_load(BLACKBOX.read_text())["modules"]["https_mtls"]["http"]
    assert module["fail_if_not_ssl"] is True
    mounted = {volume.split(":")[1] for volume in tls["blackbox-exporter"]["volumes"]}
    for option in ("ca_file", "cert_file", "key_file"):
        assert any(module["tls_config"][option].startswith(f"{inside}/") for inside in mounted)
