"""The edge health-checks every backend on the ``/healthz`` every service serves
(``web.health``; the gateway's own on its port), and takes a failing one out."""

from __future__ import annotations

import re
from pathlib import Path

from edge.config import EdgeSettings, Upstream, render
from web.health import ALIVE_PATH


def test_every_backend_is_checked_on_the_shared_alive_path(tmp_path: Path) -> None:
    settings = EdgeSettings(
        host="127.0.0.1", port=18080, admin_host="127.0.0.1", admin_port=18081,
        chart=Upstream("api", ("127.0.0.1:8000",)), history=Upstream("api", ("127.0.0.1:8000",)),
        gateway=Upstream("gateway", ("127.0.0.1:8765",), websocket=True),
        auth=Upstream("auth", ("127.0.0.1:8010",)),
        trading=Upstream("trading", ("127.0.0.1:8030",)),
        main_api=Upstream("main-api", ("127.0.0.1:8020",)),
        error_dir=tmp_path,
    )  # fmt: skip
    text = render(settings)
    backends = dict(re.findall(r"^backend (\S+)\n((?:    .*\n)+)", text, re.MULTILINE))
    services = {"api", "gateway", "auth", "trading", "main-api"}
    assert services <= set(backends)
    for name in services:
        assert f"    option httpchk GET {ALIVE_PATH}\n" in backends[name], name
        assert "    http-check expect status 200\n" in backends[name], name
        assert re.search(r"^    server \S+ \S+ check$", backends[name], re.MULTILINE), name
