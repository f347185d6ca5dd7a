"""The edge benchmark runs on tiny sizes: HTTP and WebSocket, direct and through a real HAProxy
verifying a token, and the auth service's token issue rate (figures are not checked)."""

from __future__ import annotations

import pytest

from bench import edge

from ..edge.conftest import haproxy_or_skip


def test_edge_benchmark_measures_both_paths(capsys: pytest.CaptureFixture[str]) -> None:
    haproxy_or_skip()
    figures = edge.main(["--smoke"])
    names = [figure.name for figure in figures]
    assert names == [
        "/v1/candles direct",
        "/v1/candles through the edge (JWT)",
        "/v1/candles through the edge (JWT, new each time)",
        "/v1/candles through the edge (no token)",
        "candle delivery direct",
        "candle delivery through the edge",
    ]
    for figure in figures:
        assert figure.failures == 0, figure.name
        assert len(figure.latencies_ns) > 0, figure.name
    out = capsys.readouterr().out
    assert "the edge adds" in out
    assert "access tokens issued per second" in out
