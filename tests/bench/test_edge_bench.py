"""The edge benchmark runs on tiny sizes: HTTP and WebSocket, direct and through a real HAProxy
verifying a token (and through the variants of its configuration), the CPU each row took, and
the auth service's token issue rate (figures are not checked)."""

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
        *(f"/v1/candles through the edge (JWT, {variant})" for variant in edge.VARIANTS),
        "candle delivery direct",
        "candle delivery through the edge",
        *(f"candle delivery through the edge ({variant})" for variant in edge.VARIANTS),
    ]
    for figure in figures:
        assert figure.failures == 0, figure.name
        assert len(figure.latencies_ns) > 0, figure.name
        assert figure.cpu is not None, figure.name
        assert 0 <= figure.cpu.busy <= 1, figure.name
        if figure.name.endswith("direct"):  # no HAProxy; through one, tiny runs may be 0
            assert figure.cpu.edge_s == 0, figure.name
    out = capsys.readouterr().out
    assert "the edge adds" in out
    assert "ms at p99 against the edge as configured" in out
    assert "access tokens issued per second" in out
