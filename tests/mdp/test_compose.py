"""The cluster deployment in compose/ is checked statically (Docker does not run here): the
YAML parses, the services are there, every command is an ``mdp`` command line that the
``mdp`` parser accepts, the edge alone is published and reaches every service, the image holds
every package, and no secret is written inline."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import mdp.commands
from certs.authority import summarize
from mdp.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
SERVICES = {
    "kafka", "postgres", "worker", "writer", "gateway-a", "gateway-b", "api", "auth", "main-api",
    "trading", "trading-follow", "alerts", "ingest", "edge",
}  # fmt: skip
OBSERVABILITY = {
    "prometheus", "alertmanager", "grafana", "otel-collector", "jaeger", "kafka-exporter",
    "blackbox-exporter",
}  # fmt: skip
SIZED = {"prometheus", "grafana", "otel-collector", "jaeger"}
"""The observability services sized per environment (memory; Prometheus's retention,
Jaeger's traces kept)."""


class _ComposeLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML with Compose's ``!override`` and ``!reset`` tags (an override file's way of
    replacing a list instead of adding to it)."""


_ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_sequence(node))
_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    document: dict[str, Any] = yaml.load((COMPOSE / name).read_text(), Loader=_ComposeLoader)
    return document


def every_command_parser() -> argparse.ArgumentParser:
    """``mdp``'s parser with every command module of ``mdp.commands``, wired yet or not."""
    parser = argparse.ArgumentParser(prog="mdp")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in pkgutil.iter_modules(mdp.commands.__path__):
        loaded = importlib.import_module(f"mdp.commands.{module.name}")
        if hasattr(loaded, "add_parser"):
            loaded.add_parser(commands)
    return parser


def sub_commands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def mdp_commands() -> dict[str, list[str]]:
    return {
        name: service["command"][1:]
        for name, service in compose()["services"].items()
        if service.get("command", [None])[0] == "mdp"
    }


def test_the_cluster_has_every_service() -> None:
    services = compose()["services"]
    assert set(services) >= SERVICES | OBSERVABILITY
    assert services["kafka"]["image"].startswith("apache/kafka:3.9")
    assert services["worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("service", sorted(mdp_commands()))
def test_each_service_runs_an_mdp_command_line_that_parses(service: str) -> None:
    argv = mdp_commands()[service]
    parser = every_command_parser()
    if argv[0] not in sub_commands(parser):
        pytest.skip(f"`mdp {argv[0]}` is not in mdp/commands yet")
    parser.parse_args(argv)  # exits (fails the test) on an unknown command or option


def test_the_platform_services_are_wired_into_mdp() -> None:
    wired = sub_commands(build_parser())
    assert {argv[0] for argv in mdp_commands().values()} <= wired


def test_services_find_kafka_and_the_database_by_service_name() -> None:
    document = compose()
    environment = document["x-mdp"]["environment"]
    assert environment["KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert environment["DATABASE_URL_FILE"] == "/run/secrets/database_url"
    assert document["secrets"]["database_url"]["file"] == "./secrets/database_url"
    assert (COMPOSE / "Dockerfile").is_file()


def test_no_secret_is_written_inline() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    assert not re.search(r"postgres(ql)?://[^@\s]*:[^@\s]*@", text), "a URL with a password"
    assert "POSTGRES_PASSWORD:" not in text
    document = compose()
    assert document["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password"
    )
    for name, service in document["services"].items():
        for variable in service.get("environment", {}):
            assert not variable.endswith("DATABASE_URL"), f"{name}: {variable} inline"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "compose/secrets/" in ignored


def test_make_secrets_writes_the_files_compose_reads_and_prints_none(tmp_path: Path) -> None:
    copy = tmp_path / "compose"
    copy.mkdir()
    script = copy / "make-secrets"
    script.write_bytes((COMPOSE / "make-secrets").read_bytes())
    made = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True)
    folder = copy / "secrets"
    password = (folder / "postgres_password").read_text().strip()
    assert len(password) == 48
    assert (folder / "database_url").read_text() == (
        f"postgresql://mdp:{password}@postgres:5432/mdp\n"
    )
    assert password not in made.stdout + made.stderr
    assert folder.stat().st_mode & 0o077 == 0, "the folder is its owner's alone"
    for name in compose()["secrets"].values():
        assert (copy / name["file"]).is_file()
    again = subprocess.run(["bash", str(script)], check=False, capture_output=True, text=True)
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert (folder / "postgres_password").read_text().strip() == password


def test_the_image_holds_every_package_the_project_installs() -> None:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {pattern.rstrip("*") for pattern in found["packages"]["find"]["include"]}
    copied = {
        line.split()[1]
        for line in (COMPOSE / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and line.split()[1] == line.split()[2]
    }
    assert packages <= copied, sorted(packages - copied)


def test_the_image_installs_the_locked_packages_with_their_hashes_checked() -> None:
    steps = [
        line.split(None, 1)[1]
        for line in (COMPOSE / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN pip install")
    ]
    assert steps[0].endswith("--require-hashes --no-deps -r requirements/base.txt")
    assert all("--no-deps" in step for step in steps), "every install takes the lock's versions"


def test_only_the_edge_is_published_and_to_this_host_only() -> None:
    services = compose()["services"]
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert set(published) == {"edge"}
    assert published["edge"] == ["127.0.0.1:8080:8080"]


def _option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, given in enumerate(argv[:-1]) if given == option]


def _port_of(argv: list[str]) -> str:
    (port,) = _option_values(argv, "--port")
    return port


def test_the_edge_reaches_every_service_at_the_port_it_serves() -> None:
    commands = mdp_commands()
    edge = commands["edge"]
    routes = {
        "--api": {"api"}, "--gateway": {"gateway-a", "gateway-b"}, "--auth": {"auth"},
        "--main-api": {"main-api"}, "--trading": {"trading"},
    }  # fmt: skip
    for option, services in routes.items():
        servers = _option_values(edge, option)
        assert {server.split(":")[0] for server in servers} == services, option
        for server in servers:
            host, port = server.split(":")
            assert _port_of(commands[host]) == port, server
            assert _option_values(commands[host], "--host") == ["0.0.0.0"], host


def test_the_edge_caps_connections_per_client_instead_of_the_gateways() -> None:
    commands = mdp_commands()
    for gateway in ("gateway-a", "gateway-b"):
        assert _option_values(commands[gateway], "--max-connections-per-ip") == ["0"]
    assert "--max-connections-per-address" not in commands["edge"]  # the edge's default cap


def test_the_edge_follows_the_services_addresses_as_containers_come_and_go() -> None:
    assert "--follow-dns" in mdp_commands()["edge"]


def test_every_service_checks_tokens_against_the_auth_service_keys() -> None:
    commands = mdp_commands()
    for name in ("gateway-a", "gateway-b", "api", "main-api", "trading"):
        assert _option_values(commands[name], "--jwks-url") == [
            "http://auth:8010/auth/.well-known/jwks.json"
        ], name


def test_the_auth_service_trusts_only_the_edge_to_name_clients() -> None:
    document = compose()
    edge_address = document["services"]["edge"]["networks"]["mdp"]["ipv4_address"]
    assert _option_values(mdp_commands()["auth"], "--trusted-proxy") == [edge_address]


def test_the_edge_starts_after_every_backend_is_healthy() -> None:
    services = compose()["services"]
    backends = {"api", "gateway-a", "gateway-b", "auth", "main-api", "trading"}
    after = services["edge"]["depends_on"]
    assert set(after) == backends
    for name in backends:
        assert after[name] == {"condition": "service_healthy"}
        check = services[name]["healthcheck"]["test"]
        assert check[-1].startswith(f"http://127.0.0.1:{_port_of(mdp_commands()[name])}/")


def test_staging_mirrors_production_at_a_smaller_scale() -> None:
    production, staging = compose()["services"], compose("docker-compose.staging.yml")["services"]
    assert set(staging) <= set(production)
    changed = {name for name, service in staging.items() if "command" in service}
    assert changed == {"topics", "ingest", "prometheus"}
    assert staging["worker"]["deploy"]["replicas"] < production["worker"]["deploy"]["replicas"]
    assert staging["edge"]["ports"] == ["127.0.0.1:18080:8080"]
    parser = every_command_parser()
    for name in changed - {"prometheus"}:
        parser.parse_args(staging[name]["command"][1:])
        assert staging[name]["command"][:2] == production[name]["command"][:2]


_SIZE = re.compile(r"(\d+)([kmg]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size(text: str) -> int:
    """Bytes of a size as compose (``512m``) or Prometheus (``20GB``) writes it."""
    found = _SIZE.fullmatch(text)
    assert found, text
    return int(found[1]) * _UNITS[found[2].lower()]


def prometheus_flags(command: list[str]) -> dict[str, str]:
    return dict(word.removeprefix("--").split("=", 1) for word in command)


def test_production_sizes_every_observability_service() -> None:
    services = compose()["services"]
    for name in SIZED:
        assert size(services[name]["mem_limit"]) >= size("512m"), name
    flags = prometheus_flags(services["prometheus"]["command"])
    assert flags["storage.tsdb.retention.time"] == "15d"
    assert size(flags["storage.tsdb.retention.size"]) >= size("1g"), "a bound on its disk too"
    assert int(services["jaeger"]["environment"]["MEMORY_MAX_TRACES"]) > 0
    collector = yaml.safe_load((COMPOSE / "otel-collector.yml").read_text())
    limiter = collector["processors"]["memory_limiter"]
    assert "limit_mib" not in limiter, "a fixed limit would not follow each environment's"
    assert 0 < limiter["limit_percentage"] < 100


def test_staging_sizes_the_observability_services_smaller_and_alike() -> None:
    """Staging's observability is production's (the same images, configuration and command
    but Prometheus's retention) with less memory, a shorter retention and fewer traces."""
    production, staging = compose()["services"], compose("docker-compose.staging.yml")["services"]
    for name in SIZED:
        assert size(staging[name]["mem_limit"]) < size(production[name]["mem_limit"]), name
        assert set(staging[name]) <= {"mem_limit", "command", "environment"}, name
    ours, theirs = (
        prometheus_flags(production["prometheus"]["command"]),
        prometheus_flags(staging["prometheus"]["command"]),
    )
    retention = {"storage.tsdb.retention.time", "storage.tsdb.retention.size"}
    assert set(ours) == set(theirs)
    assert {flag for flag in ours if ours[flag] != theirs[flag]} == retention
    assert int(theirs["storage.tsdb.retention.time"].removesuffix("d")) < int(
        ours["storage.tsdb.retention.time"].removesuffix("d")
    )
    assert size(theirs["storage.tsdb.retention.size"]) < size(ours["storage.tsdb.retention.size"])
    traces = "MEMORY_MAX_TRACES"
    assert int(staging["jaeger"]["environment"][traces]) < int(
        production["jaeger"]["environment"][traces]
    )
    assert set(staging["jaeger"]["environment"]) == {traces}


def test_the_history_api_is_ready_only_while_its_database_answers() -> None:
    assert compose()["services"]["api"]["healthcheck"]["test"][-1] == (
        "http://127.0.0.1:8000/readyz"
    )


def test_the_gateways_read_the_private_channels_snapshots_from_the_database() -> None:
    document = compose()
    for name in ("gateway-a", "gateway-b"):
        environment = document["services"][name]["environment"]
        assert environment["KAFKA_BOOTSTRAP"] == document["x-mdp"]["environment"]["KAFKA_BOOTSTRAP"]
        for variable in ("DATABASE_URL", "TRADING_DATABASE_URL", "MAIN_API_DATABASE_URL"):
            assert environment[f"{variable}_FILE"] == "/run/secrets/database_url", variable


def test_the_alert_evaluator_runs_on_its_own_unpublished() -> None:
    evaluator = compose()["services"]["alerts"]
    assert evaluator["command"][:3] == ["mdp", "alerts", "evaluate"]
    assert "ports" not in evaluator


def _mounted_files(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: the path inside the container -> the file or folder here."""
    return {
        volume.split(":")[1]: COMPOSE / volume.split(":")[0]
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    }


def test_the_observability_services_run_unpublished_on_the_platform_network() -> None:
    services = compose()["services"]
    for name in OBSERVABILITY:
        service = services[name]
        assert "ports" not in service, name
        assert "command" not in service or service["command"][0] != "mdp", name
        assert service["networks"] == ["mdp"], name
        for inside, here in _mounted_files(service).items():
            assert here.exists(), f"{name}: {here} (mounted at {inside})"


@pytest.mark.parametrize(
    ("service", "inside"),
    [
        ("prometheus", "/etc/prometheus/prometheus.yml"),
        ("alertmanager", "/etc/alertmanager/alertmanager.yml"),
        ("otel-collector", "/etc/otelcol/config.yml"),
        ("grafana", "/etc/grafana/provisioning"),
        ("blackbox-exporter", "/etc/blackbox_exporter/config.yml"),
    ],
)
def test_each_observability_service_reads_configuration_that_parses(
    service: str, inside: str
) -> None:
    found = compose()["services"][service]
    here = _mounted_files(found)[inside]
    files = sorted(here.rglob("*.yml")) if here.is_dir() else [here]
    assert files
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
    assert any(inside in part for part in found.get("command", [inside]))


def test_the_collector_receives_otlp_over_http_and_sends_traces_to_jaeger() -> None:
    services = compose()["services"]
    (config,) = _mounted_files(services["otel-collector"]).values()
    document = yaml.safe_load(config.read_text())
    assert document["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    (traces,) = document["service"]["pipelines"].values()
    assert traces["receivers"] == ["otlp"]
    (exporter,) = traces["exporters"]
    assert exporter.startswith("otlp")
    assert document["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert services["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    # and every platform service sends to it (the default of --otlp-endpoint)
    environment = compose()["x-mdp"]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    for name in mdp_commands():
        assert environment.items() <= services[name]["environment"].items(), name


def test_grafana_reads_its_admin_password_from_a_secret_file() -> None:
    document = compose()
    grafana = document["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == (
        "/run/secrets/grafana_admin_password"
    )
    assert grafana["secrets"] == ["grafana_admin_password"]
    assert document["secrets"]["grafana_admin_password"]["file"] == (
        "./secrets/grafana_admin_password"
    )


TLS_OPTIONS = ("--tls-cert", "--tls-key", "--tls-ca", "--backend-tls-ca", "--backend-tls-cert")
TLS_FOLDER = "/run/tls/"


def without_tls(argv: list[str]) -> list[str]:
    """``argv`` without the TLS options and their files, the key set's URL on http again."""
    kept: list[str] = []
    skip = False
    for word in argv:
        if skip or word in TLS_OPTIONS:
            skip = not skip
            continue
        kept.append(word.replace("https://auth:", "http://auth:"))
    return kept


TLS_PROBING = {"blackbox-exporter", "prometheus"}
"""What the TLS override adds beside the services: the probes over mutual TLS
(tests/deploy/test_prometheus_config.py checks them)."""


def test_the_tls_override_adds_tls_and_nothing_else() -> None:
    base, tls = compose()["services"], compose("docker-compose.tls.yml")["services"]
    assert set(tls) == {
        "auth", "gateway-a", "gateway-b", "api", "main-api", "trading", "edge", *TLS_PROBING,
    }  # fmt: skip
    for name in TLS_PROBING:
        assert set(tls[name]) == {"volumes"}, name
    parser = every_command_parser()
    for name, service in tls.items():
        if name in TLS_PROBING:
            continue
        command = service["command"]
        parser.parse_args(command[1:])
        assert without_tls(command) == base[name]["command"], name
        assert command != base[name]["command"]
        assert service["volumes"] == ["./tls:/run/tls:ro"]
    for name in set(tls) - {"edge", *TLS_PROBING}:
        assert "--tls-ca" in tls[name]["command"], f"{name} must require client certificates"
        check = tls[name]["healthcheck"]["test"]
        assert check[4].startswith("https://127.0.0.1:"), name
        assert check[4].split(":")[2].split("/")[0] in base[name]["healthcheck"]["test"][4]
    jwks = [
        word
        for service in tls.values()
        for word in service.get("command", [])
        if word.endswith("jwks.json")
    ]
    assert jwks
    assert all(url.startswith("https://auth:8010/") for url in jwks)


CERTS_ONLY = """import argparse, sys
from mdp.commands import certs
parser = argparse.ArgumentParser(prog="mdp")
certs.add_parser(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""


def test_make_certs_makes_every_file_the_tls_override_names(tmp_path: Path) -> None:
    copy = tmp_path / "compose"
    copy.mkdir()
    script = copy / "make-certs"
    script.write_bytes((COMPOSE / "make-certs").read_bytes())
    # `mdp certs` itself, without importing every other command first (seven runs of the
    # whole `mdp` take half a minute on a busy machine; tests/certs runs the whole command)
    mdp = tmp_path / "mdp"
    mdp.write_text(f"#!{sys.executable}\n{CERTS_ONLY}")
    mdp.chmod(0o755)
    env = os.environ | {"MDP": str(mdp)}
    made = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          check=True)  # fmt: skip
    assert "PRIVATE KEY" not in made.stdout + made.stderr
    folder = copy / "tls"
    assert folder.stat().st_mode & 0o077 == 0, "the folder is its owner's alone"
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    probe = yaml.safe_load((COMPOSE / "prometheus" / "blackbox.yml").read_text())
    named = {
        word.removeprefix(TLS_FOLDER)
        for service in compose("docker-compose.tls.yml")["services"].values()
        for word in [
            *service.get("command", []), *service.get("healthcheck", {}).get("test", []),
            *probe["modules"]["https_mtls"]["http"]["tls_config"].values(),
        ]
        if word.startswith(TLS_FOLDER)
    }  # fmt: skip
    assert {"ca.crt", "edge.pem", "api.crt", "gateway.key", "blackbox.key"} <= named
    for name in named:
        assert (folder / name).is_file(), name
    # every name the edge and the services call each other by is in a certificate
    reached = {"auth", "api", "gateway-a", "gateway-b", "main-api", "trading"}
    sans = {name for path in folder.glob("*.crt") for name in summarize(path.read_bytes()).dns}
    assert reached <= sans
    again = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                           check=True)  # fmt: skip
    assert "kept" in again.stdout
