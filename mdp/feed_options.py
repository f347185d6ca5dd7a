"""The feed options ``mdp up`` and ``mdp ingest`` share: the synthetic market (default), a
replayed file, or a live venue."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.files.detect import format_names
from ingest.synthetic import DEFAULT_INSTRUMENTS
from ingest.venues import venue_protocol, venues
from ingest.venues.room import Venue
from ingest.venues.settings import VenueSettings


def add_feed_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the ``feed`` option group; a command adds its own options to the group returned."""
    feed = parser.add_argument_group("feed")
    feed.add_argument("--replay", type=Path, metavar="FILE", help="replay a tick file")
    feed.add_argument(
        "--format", choices=format_names(), help="the file's format (default: detected)"
    )
    feed.add_argument("--instrument", metavar="VENUE:SYMBOL", help="the file's instrument")
    feed.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="event seconds per second (default 1; 0: as fast as possible)",
    )
    feed.add_argument(
        "--instruments",
        default=",".join(DEFAULT_INSTRUMENTS),
        help="synthetic instruments, comma-separated",
    )
    feed.add_argument("--rate", type=float, default=20.0, help="synthetic ticks/s per instrument")
    feed.add_argument("--seed", type=int, default=0, help="synthetic seed")
    rooms = venues()
    feed.add_argument(
        "--venue", choices=[room.name for room in rooms], help="a live venue's trades"
    )
    examples = "; ".join(f"{','.join(room.example_symbols)} on {room.name}" for room in rooms)
    feed.add_argument(
        "--symbols", metavar="LIST", help=f"the venue's symbols, comma-separated ({examples})"
    )
    feed.add_argument(
        "--venue-url",
        metavar="URL",
        help="the venue's WebSocket URL (default: its public endpoint)",
    )
    feed.add_argument(
        "--stale-after",
        type=float,
        metavar="SECONDS",
        help="the venue's connection counts as dead after this long without a frame (default:"
        f" the venue's own: {_stale_defaults(rooms)}; 0: never, WebSocket pings alone decide)",
    )
    return feed


def _stale_defaults(rooms: tuple[Venue, ...]) -> str:
    """``none on binance, 5 on coinbase, ...``: each venue's own stale timeout (none where
    a quiet symbol may send nothing at all)."""
    timeouts = ((room.name, room.protocol().stale_after) for room in rooms)
    return ", ".join(
        f"{'none' if after is None else f'{after:g}'} on {name}" for name, after in timeouts
    )


def check_feed_options(args: argparse.Namespace) -> None:
    """Refuse a negative speed or a missing replay file (``ValueError``, for exit code 2)."""
    if args.speed < 0:
        raise ValueError("--speed must not be negative")
    if args.replay is not None and not args.replay.is_file():
        raise ValueError(f"{args.replay}: no such file")
    if args.venue is None:
        if args.symbols or args.venue_url or args.stale_after is not None:
            raise ValueError("--symbols, --venue-url and --stale-after need --venue")
        return
    if args.replay is not None:
        raise ValueError("give either --replay or --venue, not both")
    symbols = symbols_of(args)
    if not symbols:
        raise ValueError(
            f"--venue {args.venue} needs --symbols: the venue's symbols, comma-separated"
        )
    protocol = venue_protocol(args.venue)
    for symbol in symbols:
        protocol.instrument(symbol)
    venue_settings(args)


def venue_settings(args: argparse.Namespace) -> VenueSettings:
    """The venue feed's settings from ``--venue-url`` and ``--stale-after``; ``ValueError``
    naming the setting when one is bad."""
    return VenueSettings(url=args.venue_url, stale_after=args.stale_after)


def instruments_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``--instruments`` list, split and trimmed."""
    return tuple(part.strip() for part in args.instruments.split(",") if part.strip())


def symbols_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``--symbols`` list, split and trimmed (empty without the option)."""
    return tuple(part.strip() for part in (args.symbols or "").split(",") if part.strip())
