"""ETags and Cache-Control for history pages.

A page whose candles are all final (none ``open``) gets a weak ETag computed from what
determines its bytes (the query, the format, the shape of the responses
(:data:`REPRESENTATION`), and the page's summary or contents), and answers
``If-None-Match`` with 304. A page that also ended longer ago than the revision horizon can
no longer change: it may be cached for ``cache_max_age`` seconds (``private`` when the API
checks tokens: what a page holds depends on the plan, so no shared cache may keep it). A page
with an open candle is ``no-store``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from charting.settings import ApiSettings

REPRESENTATION: Final = "2"
"""The shape of the API's responses, part of every ETag: raise it whenever a response gains
or changes a column, so that a copy cached before cannot be revalidated as current. 2: candles
gained ``gap`` (a stored page's summary did not change with it: migration 0005 rewrote the
stored JSON, not ``updated_at``)."""


@dataclass(frozen=True, slots=True)
class Freshness:
    """What a page's caching headers depend on."""

    has_open: bool
    end: int
    validator: Iterable[object]


def etag_of(request: Request, media_type: str, validator: Iterable[object]) -> str:
    digest = hashlib.sha256(REPRESENTATION.encode())
    digest.update(request.url.path.encode())
    for key, value in sorted(request.query_params.multi_items()):
        digest.update(f"\x00{key}={value}".encode())
    digest.update(f"\x00{media_type}".encode())
    for part in validator:
        digest.update(f"\x00{part}".encode())
    return f'W/"{digest.hexdigest()[:32]}"'


def is_final(freshness: Freshness, settings: ApiSettings) -> bool:
    """Whether the page can no longer change: no open candle, and past the revision horizon."""
    return not freshness.has_open and (freshness.end <= settings.clock() - settings.final_after_ns)


def headers_for(
    request: Request, media_type: str, freshness: Freshness, settings: ApiSettings
) -> dict[str, str]:
    private = settings.checks_tokens  # the bytes depend on who asks: no shared cache
    headers = {"Vary": "Accept, Authorization" if private else "Accept"}
    if freshness.has_open:
        headers["Cache-Control"] = "no-store"
        return headers
    headers["ETag"] = etag_of(request, media_type, freshness.validator)
    if is_final(freshness, settings):
        scope = "private" if private else "public"
        headers["Cache-Control"] = f"{scope}, max-age={settings.cache_max_age}"
    else:
        headers["Cache-Control"] = "no-cache"
    return headers


def not_modified(request: Request, headers: dict[str, str]) -> Response | None:
    """A 304 when the request's ``If-None-Match`` holds the page's ETag."""
    etag = headers.get("ETag")
    wanted = request.headers.get("if-none-match")
    if etag is None or wanted is None:
        return None
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    if "*" in tags or etag.removeprefix("W/") in tags:
        return Response(status_code=304, headers=headers)
    return None
