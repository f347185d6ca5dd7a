"""The gateway benchmark runs on a tiny input with every contender (figures are not checked)."""

from __future__ import annotations

import pytest

from bench import gateway


def test_gateway_benchmark_runs_every_contender_in_two_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = gateway.main(["--smoke"])
    out = capsys.readouterr().out
    assert {run.contender for run in runs} == set(gateway.CONTENDERS)
    for run in runs:
        assert run.error is None, run
        assert [phase.name for phase in run.phases] == ["paced", "flat out"]
        assert all(phase.delivered > 0 for phase in run.phases)
    for contender in gateway.CONTENDERS:
        assert contender in out
    assert "flat out vs naive" in out


def test_bench_client_frames_are_masked_and_parse_back() -> None:
    frame = gateway.client_frame(b'{"op":"ping"}')
    assert frame[0] == 0x81
    assert frame[1] == 0x80 | 13
    mask, body = frame[2:6], frame[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b'{"op":"ping"}'
