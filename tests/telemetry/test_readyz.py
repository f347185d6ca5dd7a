"""The admin port answers /healthz and /readyz in the one shape of web.health, with the
checks the process registered; /metrics still serves the registry."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from telemetry.admin import admin_server
from telemetry.readiness import Readiness
from tests.telemetry.probe import get

BASE = "http://127.0.0.1:{}"


def test_healthz_is_alive_and_readyz_ready_without_checks() -> None:
    with admin_server(checks=Readiness()) as server:
        base = BASE.format(server.port)
        assert get(base + "/healthz") == (200, {"status": "ok"})
        assert get(base + "/readyz") == (200, {"status": "ready", "checks": {}})


def test_readyz_is_503_with_the_reasons_of_the_failing_checks_then_200_once_they_hold() -> None:
    checks = Readiness()
    state: dict[str, str | None] = {"database": "unavailable"}
    checks.add("database", lambda: state["database"])
    checks.add("bus", lambda: None)
    with admin_server(checks=checks) as server:
        url = BASE.format(server.port) + "/readyz"
        assert get(url) == (
            503,
            {
                "status": "unavailable",
                "detail": "database unavailable",
                "checks": {"database": "unavailable", "bus": "ok"},
            },
        )
        state["database"] = None
        assert get(url) == (200, {"status": "ready", "checks": {"database": "ok", "bus": "ok"}})


def test_a_check_that_raises_reads_as_error_and_a_removed_check_is_gone() -> None:
    checks = Readiness()

    def broken() -> str | None:
        raise RuntimeError("a bug")

    remove = checks.add("feed", broken)
    assert checks.checks() == {"feed": "error"}
    remove()
    assert checks.checks() == {}


def test_the_readyz_answer_is_not_cached_and_says_when_to_retry() -> None:
    checks = Readiness()
    checks.add("bus", lambda: "unreachable")
    with admin_server(checks=checks) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(BASE.format(server.port) + "/readyz", timeout=5)
        assert refused.value.code == 503
        assert refused.value.headers["Cache-Control"] == "no-store"
        assert refused.value.headers["Retry-After"].isdigit()
        assert refused.value.headers["Content-Type"] == "application/json"
        refused.value.close()
        with urllib.request.urlopen(BASE.format(server.port) + "/metrics", timeout=5) as r:
            assert b"mdp_consumer_lag_records" in r.read()
