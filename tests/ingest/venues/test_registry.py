"""The venue registry: names to fresh protocol objects, and clear errors for the rest."""

from __future__ import annotations

import pytest

from ingest.venues import VENUES, UnknownVenueError, venue_protocol


@pytest.mark.parametrize("name", sorted(VENUES))
def test_every_registered_venue_builds_a_protocol_of_that_name(name: str) -> None:
    protocol = venue_protocol(name.upper())
    assert protocol.name == name
    assert protocol.default_url.startswith("wss://")
    assert protocol.contiguous_trade_ids is True
    assert venue_protocol(name) is not protocol  # one per connection: protocols keep state


def test_an_unknown_venue_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownVenueError, match="binance, coinbase, kraken"):
        venue_protocol("mtgox")


def test_a_venue_whose_connector_is_missing_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.venues as registry

    monkeypatch.setattr(registry, "VENUES", {**VENUES, "nowhere": "ingest.venues.nowhere"})
    with pytest.raises(UnknownVenueError, match="nowhere connector is not available"):
        registry.venue_protocol("nowhere")
    assert registry.venue_protocol("kraken").name == "kraken"
