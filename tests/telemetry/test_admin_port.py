"""A cluster-mode command with ``--admin-port`` serves its own /metrics while it runs, says
where on a ``metrics:`` line, and refuses a port in use with our error: the gateway, and the
HTTP services beside their own port (Kubernetes scrapes every service there: deploy/k8s)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from machine import stop_process
from mdp.admin_options import serving_admin
from mdp.cli import build_parser, main
from mdp.common_options import EXIT_FAILED

MDP = Path(sys.executable).parent / "mdp"
STARTUP_S = 30.0
METRICS = re.compile(r"^metrics: (http://127\.0\.0\.1:\d+/metrics)$")


def test_mdp_gateway_serves_its_metrics_on_the_admin_port() -> None:
    with subprocess.Popen(
        [str(MDP), "gateway", "--port", "0", "--admin-port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as process:
        url = scrape_then_stop(process, "\nmdp_gateway_clients 0.0")
    assert url is not None
    assert process.returncode == 0


# The HTTP services, each with a series of its SLOs (docs/alerting.md). The main API and
# trading check every token: against a key set fetched when a token comes (none comes here).
JWKS = ["--jwks-url", "http://127.0.0.1:9/auth/.well-known/jwks.json"]
HTTP_SERVICES = {
    "api": (["api"], "# TYPE mdp_http_request_duration_seconds histogram"),
    "auth": (["auth", "serve"], "# TYPE mdp_http_request_duration_seconds histogram"),
    "main-api": (["main-api", *JWKS], "# TYPE mdp_http_request_duration_seconds histogram"),
    "trading": (["trading", "serve", *JWKS], "# TYPE mdp_trading_order_ack_seconds histogram"),
}


@pytest.mark.parametrize("service", sorted(HTTP_SERVICES))
def test_each_http_service_serves_its_metrics_on_the_admin_port(
    service: str, migrated_database: str
) -> None:
    command, series = HTTP_SERVICES[service]
    with subprocess.Popen(
        [str(MDP), *command, "--port", "0", "--admin-port", "0",
         "--database-url", migrated_database],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    ) as process:  # fmt: skip
        url = scrape_then_stop(process, series, alive=True)
    assert url is not None


def scrape_then_stop(
    process: subprocess.Popen[str], series: str, *, alive: bool = False
) -> str | None:
    """The printed metrics URL, once its /metrics has shown ``series`` (and, ``alive``, its
    /healthz answered); the process stopped (SIGTERM to its pid) after."""
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + STARTUP_S
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line, f"{process.args!r} ended before printing its metrics URL"
            if found := METRICS.match(line.strip()):
                url = found.group(1)
        assert url is not None
        # the service starts after the admin server: its gauges appear once it runs
        text = ""
        while series not in text and time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
            time.sleep(0.05)
        assert series in text
        assert "# TYPE mdp_gateway_closes_total counter" in text
        if alive:
            time.sleep(0.5)  # what a service that fails to start says, it says by now
            assert process.poll() is None, process.stderr.read()
            health = url.removesuffix("/metrics") + "/healthz"
            with urllib.request.urlopen(health, timeout=5) as answer:
                assert answer.status == 200
        return url
    finally:
        stop_process(process, 15)


def test_an_admin_port_in_use_is_refused_with_our_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["gateway", "--port", "0", "--admin-port", str(port)])
    assert code == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("mdp gateway: error: --admin-port: ")
    assert "in use" in err


def test_the_edge_s_exporter_is_its_metrics_port_and_left_to_haproxy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    edge = ["edge", "--api", "api:8000", "--gateway", "gateway:8765"]
    args = parser.parse_args([*edge, "--metrics-port", "8404", "--metrics-host", "0.0.0.0"])
    assert (args.metrics_port, args.metrics_host) == (8404, "0.0.0.0")
    gateway = parser.parse_args(["gateway", "--admin-port", "0"])
    with serving_admin(args) as none, serving_admin(gateway) as served:
        assert none is None, "HAProxy binds the edge's --metrics-port; mdp must not"
        assert served is not None
    with pytest.raises(SystemExit) as refused:
        parser.parse_args([*edge, "--admin-port", "8404"])
    assert refused.value.code == 2
    assert "--admin-port 8404" in capsys.readouterr().err  # argparse's refusal names it
