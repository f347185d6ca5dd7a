"""A venue's room: everything the platform knows of one venue, in the venue's own folder.

Each venue package (``ingest/venues/<venue>/``) exports ``VENUE``, a :class:`Venue` built from
its own modules: the live protocol (``protocol.py``), the readers of its dump files
(``files.py``, where it publishes any) and its convention for intervals without trades. The
registry (:data:`ingest.venues.VENUES`) names the packages; file detection, the live feed
factory and the candle engine's empty-interval policy read the rooms through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.engine import EmptyPolicy
from ingest.files.formats import FileFormat
from ingest.venues.base import VenueProtocol


@dataclass(frozen=True, slots=True)
class Venue:
    """One venue.

    - ``name``: lower case, as ``--venue`` takes it; the venue part of its instruments is the
      same in upper case (:attr:`instrument_venue`).
    - ``protocol``: builds a fresh live protocol, one per connection (protocols keep state).
    - ``empty``: what the venue's own candles do with an interval without trades (Kraken
      fills it with a flat candle at the last close); the platform follows it.
    - ``example_symbols``: symbols in the venue's own spelling, for help texts.
    - ``files``: the formats of the venue's dump files (none for a venue without dumps).
    """

    name: str
    protocol: Callable[[], VenueProtocol]
    empty: EmptyPolicy
    example_symbols: tuple[str, ...]
    files: tuple[FileFormat, ...] = ()

    @property
    def instrument_venue(self) -> str:
        """The venue part of its instrument ids: ``KRAKEN`` in ``KRAKEN:XBTUSDT``."""
        return self.name.upper()
