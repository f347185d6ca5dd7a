"""Property-based fuzzing from the OpenAPI document (schemathesis): never a 5xx, and every
answer conforms to the document (status codes, content types, JSON bodies)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from charting import ApiSettings, create_app_for_url
from charting.openapi import document
from core.gaps import FeedGap, GapReason
from storage import PostgresStore
from tests.charting.conftest import NOW
from tests.charting.data import INSTRUMENT, MINUTE, T0, series, ticks
from tests.charting.servers import threaded_server

EXAMPLES = 25
"""Examples per operation and pass: bounded, so that CI stays quick."""
SETTINGS = ApiSettings(intervals=(MINUTE,), clock=lambda: NOW)
SCHEMA = schemathesis.openapi.from_dict(document(SETTINGS))
ALL_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def served(migrated_database: str) -> Iterator[str]:
    async def stock() -> None:
        async with PostgresStore.open(migrated_database) as store:
            down = FeedGap(
                instrument=INSTRUMENT,
                start_ns=T0 + 10**12,
                end_ns=T0 + 2 * 10**12,
                reason=GapReason.DISCONNECTED,
                detail="reset",
                ts_recv=T0 + 2 * 10**12,
            )
            candles = series(400, gap_every=5, flag_every=7)
            await store.write(candles=candles, ticks=[ticks(400)], gaps=[down])

    asyncio.run(stock())
    with threaded_server(create_app_for_url(migrated_database, SETTINGS)) as url:
        yield url


def _fuzz(url: str, mode: GenerationMode, query: dict[str, Any] | None) -> Counter[str]:
    """Fuzz every operation; how many answers of each (path, status) there were."""
    seen: Counter[str] = Counter()
    checks = ALL_CHECKS if mode is GenerationMode.POSITIVE else ALL_CHECKS[:3]
    for result in SCHEMA.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        names = {p.name for p in operation.query}
        fixed = {k: v for k, v in (query or {}).items() if k in names} or None
        if (query is not None and fixed is None) or (mode is GenerationMode.NEGATIVE and not names):
            continue  # nothing to fix, or nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode, query=fixed))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call_and_validate(base_url=url, checks=checks)
            seen[f"{case.operation.path} {response.status_code}"] += 1

        run()
    return seen


def test_generated_requests_never_get_a_server_error(served: str) -> None:
    _fuzz(served, GenerationMode.POSITIVE, None)


def test_requests_for_an_instrument_with_data_conform_to_the_document(served: str) -> None:
    seen = _fuzz(served, GenerationMode.POSITIVE, {"instrument": INSTRUMENT, "symbol": INSTRUMENT})
    for path in ("/v1/candles", "/v1/ticks", "/v1/gaps", "/udf/history", "/udf/symbols"):
        assert seen[f"{path} 200"], f"the fuzzer never got data from {path}: {seen}"


def test_invalid_requests_are_refused_without_a_server_error(served: str) -> None:
    _fuzz(served, GenerationMode.NEGATIVE, None)
