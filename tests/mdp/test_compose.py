"""The cluster deployment in compose/ is checked statically (Docker does not run here): the
YAML parses, the services are there, and every command is an ``mdp`` command line that the
``mdp`` parser accepts."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import mdp.commands
from mdp.cli import build_parser

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
SERVICES = {"kafka", "postgres", "worker", "writer", "gateway", "api", "ingest"}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
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
    assert set(services) >= SERVICES
    assert services["kafka"]["image"].startswith("apache/kafka:3.9")
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["gateway"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("service", sorted(mdp_commands()))
def test_each_service_runs_an_mdp_command_line_that_parses(service: str) -> None:
    argv = mdp_commands()[service]
    parser = every_command_parser()
    if argv[0] not in sub_commands(parser):
        pytest.skip(f"`mdp {argv[0]}` is not in mdp/commands yet")
    parser.parse_args(argv)  # exits (fails the test) on an unknown command or option


def test_the_platform_services_are_wired_into_mdp() -> None:
    wired = sub_commands(build_parser())
    assert {"kafka", "ingest", "worker", "writer", "db"} <= wired
    assert {argv[0] for argv in mdp_commands().values()} - wired <= {"gateway", "api"}


def test_services_find_kafka_and_the_database_by_service_name() -> None:
    document = compose()
    environment = document["x-mdp"]["environment"]
    assert environment["KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert (COMPOSE / "Dockerfile").is_file()
    assert (COMPOSE / "nginx.conf").is_file()


def test_the_image_installs_the_locked_packages_with_their_hashes_checked() -> None:
    steps = [
        line.split(None, 1)[1]
        for line in (COMPOSE / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN pip install")
    ]
    assert steps[0].endswith("--require-hashes --no-deps -r requirements/base.txt")
    assert all("--no-deps" in step for step in steps), "every install takes the lock's versions"


def test_published_ports_are_bound_to_this_host_only() -> None:
    published = [
        str(port) for service in compose()["services"].values() for port in service.get("ports", [])
    ]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published


def test_the_proxy_caps_connections_per_client_instead_of_the_gateways() -> None:
    assert "--max-connections-per-ip" in mdp_commands()["gateway"]
    nginx = (COMPOSE / "nginx.conf").read_text()
    assert "limit_conn_zone $binary_remote_addr" in nginx
    assert "limit_conn per_client" in nginx


def test_the_history_api_is_ready_only_while_its_database_answers() -> None:
    check = " ".join(compose()["services"]["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in check


def test_the_gateway_reads_the_private_channels_snapshots_from_the_database() -> None:
    document = compose()
    environment = document["services"]["gateway"]["environment"]
    assert environment["KAFKA_BOOTSTRAP"] == document["x-mdp"]["environment"]["KAFKA_BOOTSTRAP"]
    for variable in ("DATABASE_URL", "TRADING_DATABASE_URL", "MAIN_API_DATABASE_URL"):
        assert "@postgres:5432/" in environment[variable], variable


def test_the_alert_evaluator_runs_on_its_own_unpublished() -> None:
    evaluator = compose()["services"]["alerts"]
    assert evaluator["command"][:3] == ["mdp", "alerts", "evaluate"]
    assert "ports" not in evaluator
