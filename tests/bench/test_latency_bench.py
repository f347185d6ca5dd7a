"""The latency benchmark: its matching of batches to candle updates, and its embedded smoke
(the cluster smoke runs beside ``bench.kafka``'s, on the session's broker:
``tests/streams/kafka/test_bench_smoke.py``)."""

from __future__ import annotations

import pytest

from bench import latency
from bench.latency import Observed, Sent


def _sent(instrument: str, last_id: int, sent_ns: int, offset: int) -> Sent:
    return Sent(instrument, last_id, sent_ns, 0, offset, measured=True)


def test_a_batch_is_matched_to_the_first_update_reaching_its_last_tick() -> None:
    sent = [_sent("A", 10, 0, 0), _sent("B", 10, 0, 1), _sent("A", 20, 0, 2), _sent("A", 30, 0, 3)]
    seen = [("A", 9, 5), ("A", 10, 6), ("B", 12, 7), ("A", 25, 8), ("A", 26, 9)]
    assert latency.first_seen(sent, seen) == [6, 7, 8, None]


def test_an_update_covering_several_batches_answers_each_of_them() -> None:
    sent = [_sent("A", 10, 0, 0), _sent("A", 20, 0, 1)]
    assert latency.first_seen(sent, [("A", 20, 4)]) == [4, 4]


def test_hops_are_milliseconds_from_the_send_over_measured_batches_only() -> None:
    observed = Observed()
    observed.sent = [
        Sent("A", 10, 1_000_000, 0, 0, measured=False),
        Sent("A", 20, 2_000_000, 0, 1, measured=True),
    ]
    observed.records = {(0, 0): 1_500_000, (0, 1): 3_000_000}
    observed.candles["client receipt"] = [("A", 10, 4_000_000), ("A", 20, 6_000_000)]
    assert observed.hops() == {"engine consumed": [1.0], "client receipt": [4.0]}
    observed.polled = {(0, 1): 2_500_000}
    assert observed.hops()["engine polled"] == [0.5]
    assert observed.missed() == 0
    observed.candles["client receipt"] = [("A", 10, 4_000_000)]
    assert observed.missed() == 1


def test_stages_are_each_batchs_milliseconds_between_one_hop_of_the_path_and_the_next() -> None:
    observed = Observed()
    observed.sent = [Sent("A", 10, 1_000_000, 0, 0, True), Sent("A", 20, 2_000_000, 0, 1, True)]
    observed.polled = {(0, 0): 2_000_000, (0, 1): 3_000_000}
    observed.records = {(0, 0): 2_500_000, (0, 1): 7_000_000}
    observed.candles["candle consumed"] = [("A", 20, 50_000_000)]  # not on the client's path
    observed.candles["client receipt"] = [("A", 10, 4_500_000), ("A", 20, 9_000_000)]
    assert observed.stages() == {
        "send -> engine polled": [1.0, 1.0],
        "engine polled -> engine consumed": [0.5, 4.0],
        "engine consumed -> client receipt": [2.0, 2.0],
    }


def test_a_spread_keeps_its_p99_within_the_maximum() -> None:
    spread = latency.spread([1.0, 2.0, 3.0, 100.0])
    assert spread is not None
    assert spread.p50 == 2.5
    assert spread.p99 <= spread.max == 100.0
    assert latency.spread([]) is None


def test_embedded_smoke_measures_every_hop_to_the_client(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [result] = latency.main(["--smoke", "--modes", "embedded", "--database-url", postgres_url])
    out = capsys.readouterr().out
    assert result.mode == "embedded"
    assert result.batches > 0
    assert result.missed == 0, out
    assert set(result.hops) == set(latency.HOPS) - {"engine polled"}, out  # a cluster hop
    assert "bench.kafka's figure" in out
    assert "load average" in out
