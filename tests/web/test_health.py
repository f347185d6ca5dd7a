"""``/readyz``'s one shape: every check named, ``ok`` or why not; 503 with ``Retry-After``
when any fails; never cached."""

from __future__ import annotations

import json

from web.health import readiness


def test_ready_when_every_check_holds() -> None:
    status, body, headers = readiness({"database": None, "feed": None})
    assert status == 200
    assert json.loads(body) == {"status": "ready", "checks": {"database": "ok", "feed": "ok"}}
    assert headers == {"Cache-Control": "no-store"}


def test_unavailable_when_any_check_fails_each_named_with_its_reason() -> None:
    status, body, headers = readiness({"database": "unavailable", "feed": None, "lag": "high"})
    assert status == 503
    assert json.loads(body) == {
        "status": "unavailable",
        "detail": "database unavailable, lag high",
        "checks": {"database": "unavailable", "feed": "ok", "lag": "high"},
    }
    assert headers == {"Cache-Control": "no-store", "Retry-After": "5"}
