"""A broker outage is logged once, then at a bounded rate, and its end once."""

from __future__ import annotations

import logging
import sys

import pytest

from streams.kafka.log_limits import (
    NETWORK_MODULES,
    BrokerWatch,
    RepeatLimiter,
    limit_client_logs,
)
from tests.support.clock import Clock


def record(msg: str, *args: object, name: str = "aiokafka.client") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_of_one_kind_pass_once_per_period_saying_how_many_were_held() -> None:
    clock = Clock()
    limiter = RepeatLimiter(every=30.0, clock=clock)
    passed = []
    for second in range(90):
        clock.now = float(second)
        for node in range(100):  # a hundred a second, arguments differing
            line = record("Unable connect to node with id %s: %s", node, "refused")
            if limiter.filter(line):
                passed.append(line.getMessage())
    assert len(passed) == 3
    assert passed[0] == "Unable connect to node with id 0: refused"
    assert passed[1].endswith("[2999 more like this in the last 30s]")


def failed(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        line = record("Metadata refresh failed on %s", "node 1", name="kafka.cluster")
        line.exc_info = sys.exc_info()
        return line


def test_a_lost_connections_traceback_is_folded_into_its_line_and_others_are_kept() -> None:
    limiter = RepeatLimiter(every=30.0, clock=Clock())
    reset = failed(ConnectionResetError(104, "Connection reset by peer"))
    assert limiter.filter(reset)
    assert reset.exc_info is None
    assert logging.Formatter().format(reset) == (
        "Metadata refresh failed on node 1 (ConnectionResetError: [Errno 104] Connection reset"
        " by peer)"
    )
    bug = failed(KeyError("partition"))
    assert RepeatLimiter(every=30.0, clock=Clock()).filter(bug)
    assert "Traceback" in logging.Formatter().format(bug)  # not a lost connection: kept


def test_a_new_kind_of_error_passes_at_once() -> None:
    limiter = RepeatLimiter(every=30.0, clock=Clock())
    assert limiter.filter(record("Failed fetch messages from %s: %s", 1, "x"))
    assert not limiter.filter(record("Failed fetch messages from %s: %s", 1, "y"))
    assert limiter.filter(record("Heartbeat failed: %r", "z"))
    assert limiter.filter(record("Failed fetch messages from %s: %s", 1, "x", name="other"))


def test_the_limiter_remembers_a_bounded_number_of_kinds() -> None:
    limiter = RepeatLimiter(every=30.0, clock=Clock())
    for n in range(10_000):
        limiter.filter(record(f"message {n}"))
    assert not limiter.filter(record("message 9999"))  # remembered: held
    assert limiter.filter(record("message 0"))  # long forgotten (at most 256 are kept): through


def test_it_goes_on_every_existing_logger_of_the_clients() -> None:
    child = logging.getLogger("aiokafka.consumer.fetcher")
    limiter = limit_client_logs(30.0)
    try:
        assert limiter in child.filters
        assert limiter in logging.getLogger("faust").filters
        for module in NETWORK_MODULES:  # loaded first: their loggers exist and are limited
            assert limiter in logging.getLogger(module).filters
        assert limiter not in logging.getLogger("streams").filters
    finally:
        for name in ("aiokafka", "kafka", "faust", "mode", *logging.root.manager.loggerDict):
            logger = logging.getLogger(name)
            if limiter in logger.filters:
                logger.removeFilter(limiter)


def test_the_watch_tells_an_outage_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    watch = BrokerWatch(logging.getLogger("test.watch"), clock)
    with caplog.at_level(logging.INFO, "test.watch"):
        watch.answered()
        for second in range(20):
            clock.now = float(second)
            watch.failed(ConnectionRefusedError("refused"))
        assert watch.down
        watch.answered()
        watch.answered()
    assert [r.getMessage() for r in caplog.records] == [
        "the Kafka broker does not answer (refused): candles wait until it is back",
        "the Kafka broker answers again after 19.0s away",
    ]
