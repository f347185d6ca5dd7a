"""The one log setup: JSON lines with the service, level, logger, message and trace id; text
on a terminal; secrets masked in every part of a record; the scan that checks a run's output
finds a secret that slipped through."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from auth.families import new_token
from mdp.cli import build_parser
from telemetry.logs import FIELDS, LogSettings, configure, default_format, installed
from tests.support.leaks import leaks


@pytest.fixture
def restore_root() -> Iterator[None]:
    """The root logger as it was, whatever a test configured."""
    root = logging.getLogger()
    ours = set(installed())  # a command an earlier test ran in this process may have set one
    level, handlers = root.level, [h for h in root.handlers if h not in ours]
    yield
    for handler in installed():
        root.removeHandler(handler)
    root.setLevel(level)
    assert root.handlers == handlers


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_our_fields(restore_root: None) -> None:
    out = io.StringIO()
    configure(LogSettings("gateway", "json", "info"), out)
    logging.getLogger("ws_gateway.server").info("%d sessions", 3)
    logging.getLogger("ws_gateway.server").debug("below the level")
    (line,) = lines(out)
    assert tuple(line) == FIELDS
    assert line["service"] == "gateway"
    assert line["level"] == "INFO"
    assert line["logger"] == "ws_gateway.server"
    assert line["message"] == "3 sessions"
    assert line["trace_id"] == ""
    assert str(line["time"]).endswith("+00:00")


def test_a_record_inside_a_span_carries_its_trace_id(restore_root: None) -> None:
    out = io.StringIO()
    configure(LogSettings("up", "json"), out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("tick batch") as span:
        logging.getLogger("streams").warning("late")
        expected = trace.format_trace_id(span.get_span_context().trace_id)
    logging.getLogger("streams").warning("after")
    inside, after = lines(out)
    assert inside["trace_id"] == expected
    assert len(expected) == 32
    assert expected != "0" * 32
    assert after["trace_id"] == ""


def test_text_on_a_terminal_json_elsewhere(restore_root: None) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert default_format(io.StringIO()) == "json"
    assert default_format(Terminal()) == "text"
    out = Terminal()
    configure(LogSettings("auth"), out)
    logging.getLogger("auth.app").error("store unavailable")
    assert out.getvalue().endswith(" ERROR auth auth.app: store unavailable\n")


def test_secrets_are_masked_in_the_message_the_traceback_and_extra_fields(
    restore_root: None,
) -> None:
    out = io.StringIO()
    configure(LogSettings("auth", "json"), out)
    token = new_token().reveal()
    log = logging.getLogger("auth.app")
    try:
        raise RuntimeError(f"refresh of {token} failed")
    except RuntimeError:
        log.exception("login for %s", "postgresql://app:hunter2@db/x", extra={"body": token})
    (line,) = lines(out)
    assert line["message"] == "login for postgresql://app:***@db/x"
    assert line["body"] == "***"
    assert "refresh of *** failed" in str(line["exc_info"])
    assert leaks(out.getvalue(), {"token": token, "password": "hunter2"}) == []


def test_the_scan_finds_a_secret_planted_in_a_log_line() -> None:
    token = new_token().reveal()
    password = "pass word/with: symbols"
    planted = json.dumps({"message": f"login {password} then {token}"})
    assert leaks(planted, {"password": password, "token": token}) == ["password", "token"]
    encoded = "GET /?p=pass%20word%2Fwith%3A%20symbols"
    assert leaks(encoded, {"password": password}) == ["password"]
    shortened = f'< TEXT \'{{"token": "{token[:20]}...\' [661 bytes]'
    assert leaks(shortened, {"token": token}) == ["token"]
    assert leaks("nothing here", {"password": password, "token": token}) == []
    assert leaks("hunter", {"short": "hunter2"}) == []


def leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser.prog, parser
    for action in subs:
        for sub in action.choices.values():
            yield from leaf_parsers(sub)


def test_every_command_takes_the_log_options_once() -> None:
    leaves = dict(leaf_parsers(build_parser()))
    assert {"mdp up", "mdp worker", "mdp trading serve", "mdp auth serve"} <= set(leaves)
    for prog, parser in leaves.items():
        options = [o for a in parser._actions for o in a.option_strings]
        assert options.count("--log-format") == 1, prog
        assert options.count("--log-level") == 1, prog


def test_the_default_level_is_warning_but_where_a_command_told_more_before() -> None:
    parse = build_parser().parse_args
    assert parse(["up"]).log_level == "warning"
    assert parse(["gateway"]).log_level == "warning"
    assert parse(["worker"]).log_level == "info"  # its partitions' recoveries
    assert parse(["api"]).log_level == "info"  # uvicorn's start and access lines
    assert parse(["auth", "serve"]).log_level == "info"


def test_the_service_is_the_commands_name() -> None:
    args = build_parser().parse_args(["main-api", "--log-format", "text", "--log-level", "debug"])
    assert (args.command, args.log_format, args.log_level) == ("main-api", "text", "debug")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--log-format", "xml"])
