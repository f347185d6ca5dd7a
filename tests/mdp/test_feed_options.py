"""The venue options of ``mdp up`` and ``mdp ingest``: checked before anything starts, turned
into the feed's settings."""

from __future__ import annotations

import argparse

import pytest

from mdp.cli import build_parser
from mdp.commands import up
from mdp.common_options import EXIT_BAD_INPUT
from mdp.feed_options import check_feed_options, venue_settings


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_venue_options_become_the_platforms_feed_settings() -> None:
    args = parse(
        "up", "--venue", "kraken", "--symbols", "BTC/USD, eth/eur",
        "--venue-url", "ws://127.0.0.1:9", "--stale-after", "12.5",
    )  # fmt: skip
    feed = up.settings_from(args).feed
    assert (feed.venue, feed.symbols, feed.venue_url) == (
        "kraken",
        ("BTC/USD", "eth/eur"),
        "ws://127.0.0.1:9",
    )
    assert feed.stale_after == 12.5
    assert feed.live_instruments() == ("KRAKEN:BTC/USD", "KRAKEN:ETH/EUR")


@pytest.mark.parametrize("command", ["up", "ingest"])
def test_without_stale_after_the_venue_keeps_its_own_default(command: str) -> None:
    args = parse(command, "--venue", "binance", "--symbols", "BTCUSDT")
    check_feed_options(args)
    settings = venue_settings(args)
    assert (settings.url, settings.stale_after) == (None, None)
    off = parse(command, "--venue", "binance", "--symbols", "BTCUSDT", "--stale-after", "0")
    assert venue_settings(off).stale_after == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--symbols", "BTCUSDT"], "need --venue"),
        (["--stale-after", "5"], "need --venue"),
        (["--venue", "kraken"], "needs --symbols"),
        (["--venue", "kraken", "--symbols", "BTCUSD"], "looks like BTC/USD"),
        (["--venue", "coinbase", "--symbols", "BTC-USD", "--stale-after", "-1"], "stale_after"),
        (["--venue", "binance", "--symbols", "BTCUSDT", "--venue-url", "http://x"], "ws://"),
    ],
)
@pytest.mark.parametrize("command", ["up", "ingest"])
def test_bad_venue_options_are_refused_before_anything_starts(
    command: str, argv: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_feed_options(parse(command, *argv))


def test_mdp_up_exits_with_2_naming_the_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("up", "--venue", "kraken", "--symbols", "BTC/USD", "--stale-after", "nan")
    assert up.run(args) == EXIT_BAD_INPUT
    assert "mdp up: error: venue setting stale_after" in capsys.readouterr().err
