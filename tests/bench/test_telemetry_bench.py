"""The telemetry benchmark runs on tiny inputs and prints each path with metrics and tracing
on beside both off (the figures are not checked: benchmarks measure, tests do not time)."""

from __future__ import annotations

import re

import pytest

from bench import telemetry
from bench.processor import records
from telemetry import tracing


def test_telemetry_benchmark_runs_and_prints_each_path_on_and_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry.main(["--smoke"])
    out = capsys.readouterr().out
    for title in ("engine round", "feed publish", "HTTP request", "gateway fan-out"):
        assert title in out
    assert len(re.findall(r"metrics \+ tracing at 1% +[\d,]+ ", out)) == 4, out
    assert len(re.findall(r"both off +[\d,]+ ", out)) == 4, out
    assert len(re.findall(r"throughput lost [+-]\d+\.\d%", out)) == 4, out
    assert re.search(r"the middlewares' cost: -?\d+\.\d µs a request", out), out
    assert re.search(r"p99 round +\d+\.\d+ ms", out), out
    assert re.search(r"paced p99 +\d+\.\d ms", out), out
    assert "failed" not in out


def test_the_on_records_carry_a_sampled_context_about_once_in_a_hundred() -> None:
    plain = records(40_000, 10)  # 4,000 records
    traced = telemetry.sampled(plain)
    carrying = [r for r in traced if r.headers]
    assert 10 <= len(carrying) <= 100  # 1% of 4,000 is 40
    assert all(tracing.parent_of(r.headers) is not None for r in carrying)
    assert [r.value for r in traced] == [r.value for r in plain]
