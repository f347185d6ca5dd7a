"""The edge's configuration as HAProxy itself reads it (``haproxy -c``), for settings that
are easy to get wrong: key ids and names that begin with a dash, several keys, anonymous
access off, no auth service."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from edge.config import (
    EdgeSettings,
    RateLimits,
    TokenPolicy,
    Upstream,
    VerifyKey,
    error_files,
    render,
)
from edge.haproxy import find_haproxy

from .conftest import haproxy_or_skip


def settings(folder: Path, **changes: object) -> EdgeSettings:
    base = EdgeSettings(
        host="127.0.0.1", port=18080, admin_host="127.0.0.1", admin_port=18081,
        chart=Upstream("api", ("127.0.0.1:8000",)), history=Upstream("api", ("127.0.0.1:8000",)),
        gateway=Upstream("gateway", ("127.0.0.1:8765", "127.0.0.1:8766"), websocket=True),
        error_dir=folder,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def haproxy_accepts(config: EdgeSettings, folder: Path) -> str:
    for path, text in error_files(config).items():
        path.write_text(text)
    config.revocation_map.touch()
    cfg = folder / "haproxy.cfg"
    cfg.write_text(render(config))
    done = subprocess.run(
        [str(find_haproxy()), "-c", "-f", str(cfg)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return cfg.read_text()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"anonymous": False},
        {"auth": Upstream("auth", ("127.0.0.1:8100",), health_path="/auth/healthz")},
        {"limits": RateLimits(window_s=1)},
        {"trading": Upstream("trading", ("127.0.0.1:8030", "127.0.0.1:8031"))},
        {"threads": 1, "server_reuse": "always", "access_log": False},
        {"follow_dns": True},
        {"max_connections_per_address": 0},
    ],
)
def test_haproxy_accepts_the_configuration(tmp_path: Path, changes: dict[str, object]) -> None:
    haproxy_or_skip()
    haproxy_accepts(settings(tmp_path, **changes), tmp_path)


def test_a_name_that_does_not_resolve_stops_the_edge_unless_it_follows_dns(
    tmp_path: Path,
) -> None:
    haproxy_or_skip()
    unknown = Upstream("api", ("no-such-service.invalid:8000",))
    once = settings(tmp_path, chart=unknown, history=unknown)
    with pytest.raises(AssertionError, match=r"no-such-service\.invalid"):
        haproxy_accepts(once, tmp_path)
    followed = haproxy_accepts(dataclasses.replace(once, follow_dns=True), tmp_path)
    assert "resolvers system init-addr libc,none" in followed


def test_key_ids_and_names_beginning_with_a_dash_are_patterns_not_options(tmp_path: Path) -> None:
    haproxy_or_skip()
    pem = tmp_path / "k.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\n")
    keys = (VerifyKey("-kid-one", pem), VerifyKey("kid_two", pem))
    text = haproxy_accepts(settings(tmp_path, tokens=TokenPolicy("-iss", "-aud", keys)), tmp_path)
    assert "-m str -- -kid-one" in text
    assert "-m str -- -iss" in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Upstream("a b", ("127.0.0.1:1",)), "is not a name HAProxy takes"),
        (lambda: Upstream("api", ()), "at least one server"),
        (lambda: Upstream("api", ("localhost",)), "is not host:port"),
        (lambda: Upstream("api", ("127.0.0.1:70000",)), "is not host:port"),
        (lambda: Upstream("api", ("127.0.0.1:1 backup",)), "is not host:port"),
        (lambda: Upstream("api", ("127.0.0.1:1",), health_path="/h #"), "bad health path"),
        (lambda: VerifyKey("k", Path("/a b.pem")), "may hold no quote or space"),
        (lambda: TokenPolicy("a b", "x", ()), "must be plain words"),
        (lambda: TokenPolicy("a#b", "x", ()), "must be plain words"),
        (lambda: RateLimits(window_s=7), "whole divisor of 60"),
        (lambda: RateLimits(token_default=0), "at least 1 request per minute"),
        (lambda: settings(Path("."), threads=0), "threads: 1 to 64"),
        (lambda: settings(Path("."), server_reuse="always\nlog"), "server_reuse: one of"),
    ],
)
def test_settings_haproxy_could_misread_are_refused(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]
