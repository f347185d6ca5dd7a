"""A cluster-mode command with ``--admin-port`` serves its own /metrics while it runs, says
where on a ``metrics:`` line, and refuses a port in use with our error."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mdp.admin_options import serving_admin
from mdp.cli import build_parser, main

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
        url = scrape_then_stop(process)
    assert url is not None
    assert process.returncode == 0


def scrape_then_stop(process: subprocess.Popen[str]) -> str | None:
    """The printed metrics URL, once it has shown the gateway's gauges; the process stopped
    (SIGTERM to its pid) after."""
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + STARTUP_S
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line, "mdp gateway ended before printing its metrics URL"
            if found := METRICS.match(line.strip()):
                url = found.group(1)
        assert url is not None
        # the gateway starts after the admin server: its gauges appear once it runs
        text = ""
        while "\nmdp_gateway_clients 0.0" not in text and time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
            time.sleep(0.05)
        assert "\nmdp_gateway_clients 0.0" in text
        assert "# TYPE mdp_gateway_closes_total counter" in text
        return url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_an_admin_port_in_use_is_refused_with_our_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["gateway", "--port", "0", "--admin-port", str(port)])
    assert code == 1
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
    assert "unrecognized arguments: --admin-port 8404" in capsys.readouterr().err
