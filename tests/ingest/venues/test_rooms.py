"""One room per venue: the registry's rooms drive file detection, the live feed factory and the
empty-interval policy of ``mdp up`` and ``mdp worker``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

import ingest.venues as registry
from core.engine import EmptyPolicy
from core.instruments import venue_of
from core.ticks import TickBatch
from ingest.files import FileFormat, ReadReport
from ingest.files.detect import detect_format, format_names
from ingest.files.formats import Head
from ingest.files.reader import read_ticks
from ingest.venues import (
    VENUES,
    UnknownVenueError,
    empty_by_venue,
    kraken,
    venue,
    venue_file_formats,
    venue_protocol,
)
from ingest.venues.kraken import KrakenSpot
from ingest.venues.room import Venue
from mdp.cli import build_parser
from mdp.commands import up, worker


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def engine_policies(instrument: str) -> tuple[EmptyPolicy, EmptyPolicy]:
    """The empty-interval policy ``mdp up`` and ``mdp worker`` give ``instrument``."""
    return (
        up.settings_from(parse("up")).engine.empty_for(instrument),
        worker.settings_from(parse("worker")).engine.empty_for(instrument),
    )


@pytest.mark.parametrize("name", sorted(VENUES))
def test_every_registered_venue_has_a_room_with_a_feed_a_policy_and_its_files(name: str) -> None:
    room = venue(name)
    assert room.name == name
    protocol = room.protocol()
    assert protocol.name == name
    assert room.example_symbols
    for symbol in room.example_symbols:
        assert venue_of(protocol.instrument(symbol)) == room.instrument_venue
    assert isinstance(room.empty, EmptyPolicy)
    assert empty_by_venue()[room.instrument_venue] is room.empty
    assert engine_policies(f"{room.instrument_venue}:X") == (room.empty, room.empty)
    for fmt in room.files:
        assert fmt in venue_file_formats()
        assert fmt.name in format_names()


def test_the_venues_dump_formats_are_detected_between_parquet_and_generic_csv() -> None:
    names = format_names()
    assert names == ("parquet", *(fmt.name for fmt in venue_file_formats()), "csv")
    assert {"binance-aggtrades", "kraken-trades"} <= set(names)


def test_kraken_fills_empty_intervals_because_its_room_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert kraken.VENUE.empty is EmptyPolicy.FILL
    assert engine_policies("KRAKEN:XBTUSDT") == (EmptyPolicy.FILL, EmptyPolicy.FILL)
    assert engine_policies("BINANCE:BTCUSDT") == (EmptyPolicy.SKIP, EmptyPolicy.SKIP)
    monkeypatch.setattr(kraken, "VENUE", dataclasses.replace(kraken.VENUE, empty=EmptyPolicy.SKIP))
    assert engine_policies("KRAKEN:XBTUSDT") == (EmptyPolicy.SKIP, EmptyPolicy.SKIP)


class _MtGoxSpot(KrakenSpot):
    name: ClassVar[str] = "mtgox"


def _read_mtgox(
    path: Path,
    *,
    instrument: str | None = None,
    report: ReadReport | None = None,
    chunk_rows: int = 1,
) -> Iterator[TickBatch]:
    yield TickBatch.empty(instrument or "MTGOX:BTCUSD")


MTGOX = Venue(
    name="mtgox",
    protocol=_MtGoxSpot,
    empty=EmptyPolicy.FILL,
    example_symbols=("BTC/USD",),
    files=(FileFormat("mtgox-trades", lambda head: head.text.startswith("MTGOX"), _read_mtgox),),
)


def register(monkeypatch: pytest.MonkeyPatch, exported: Venue | None) -> None:
    """Add the venue ``mtgox`` as a venue is added: a room (here a module made on the spot,
    exporting ``exported``) and one line in the registry."""
    room = types.ModuleType("tests_mtgox_room")
    room.VENUE = exported  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, room.__name__, room)
    monkeypatch.setattr(registry, "VENUES", {**VENUES, "mtgox": room.__name__})


@pytest.fixture
def with_mtgox(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, MTGOX)


@pytest.mark.usefixtures("with_mtgox")
def test_a_venue_added_to_the_registry_reaches_detection_feeds_and_candles(
    tmp_path: Path,
) -> None:
    dump = tmp_path / "dump.txt"
    dump.write_text("MTGOX trades\n")
    assert detect_format(dump) == "mtgox-trades"
    assert format_names()[-1] == "csv"  # generic CSV stays the last resort
    assert [batch.instrument for batch in read_ticks(dump)] == ["MTGOX:BTCUSD"]
    assert isinstance(venue_protocol("MtGox"), _MtGoxSpot)
    assert parse("up", "--venue", "mtgox", "--symbols", "BTC/USD").venue == "mtgox"
    assert engine_policies("MTGOX:BTCUSD") == (EmptyPolicy.FILL, EmptyPolicy.FILL)


def test_two_formats_of_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    twin = dataclasses.replace(MTGOX, files=(dataclasses.replace(MTGOX.files[0], name="csv"),))
    register(monkeypatch, twin)
    with pytest.raises(ValueError, match="two tick-file formats are named csv"):
        format_names()


@pytest.mark.parametrize("exported", [None, dataclasses.replace(MTGOX, name="other")])
def test_a_room_that_exports_no_venue_of_its_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, exported: Venue | None
) -> None:
    register(monkeypatch, exported)
    with pytest.raises(UnknownVenueError, match="the mtgox connector is not available"):
        venue("mtgox")


def test_heads_are_seen_as_csv_only_under_csv_names() -> None:
    assert Head(".csv", b"\xef\xbb\xbfA,B\n").csv_names == ["a", "b"]
    assert Head("", b"a,b\n").csv_names == ["a", "b"]
    assert Head(".json", b"a,b\n").csv_names is None
