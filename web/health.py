"""The one shape of every service's ``/healthz`` (alive) and ``/readyz`` (ready to serve).

``/healthz`` answers 200 ``{"status": "ok"}`` while the process answers: a liveness probe
restarts a process that fails it, so it checks nothing else but what the process knows it
cannot recover from without a restart (the trading process's stopped consumer:
:func:`failed`). ``/readyz`` runs the service's checks, each named for what it needs
(``database``, ``feed``...) and each ``None`` when it holds or a short reason (a code, never
a host, a port or a password: the detail is for the service's log) when it does not::

    200 {"status": "ready", "checks": {"database": "ok"}}
    503 {"status": "unavailable", "detail": "database unavailable",
         "checks": {"database": "unavailable"}}                      Retry-After: 5

Both carry ``Cache-Control: no-store``. :func:`readiness` is the plain part (status, body and
headers), for a server that is not Starlette (the WebSocket gateway); :func:`alive` and
:func:`ready` are the Starlette answers. ``docs/operations.md`` lists every service's checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from web.problems import RETRY_AFTER_S

ALIVE_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"
JSON: Final = "application/json"
NO_STORE: Final = {"Cache-Control": "no-store"}
ALIVE: Final = msgspec.json.encode({"status": "ok"})

Checks = Mapping[str, str | None]
"""What a service needs → ``None`` when it holds, else why not (a short code)."""


def readiness(checks: Checks) -> tuple[int, bytes, dict[str, str]]:
    """The status, JSON body and headers of ``/readyz`` for ``checks``."""
    failing = [name for name, why in checks.items() if why is not None]
    body: dict[str, object] = {"status": "unavailable" if failing else "ready"}
    if failing:
        body["detail"] = ", ".join(f"{name} {checks[name]}" for name in failing)
    body["checks"] = {name: why or "ok" for name, why in checks.items()}
    if not failing:
        return 200, msgspec.json.encode(body), dict(NO_STORE)
    return 503, msgspec.json.encode(body), NO_STORE | {"Retry-After": str(RETRY_AFTER_S)}


async def alive(request: Request) -> Response:
    """``/healthz``: the process answers."""
    return Response(ALIVE, media_type=JSON, headers=NO_STORE)


def failed(checks: Checks) -> Response:
    """``/healthz`` of a process that knows it cannot serve until it is restarted (a part
    of it stopped): 503 with ``/readyz``'s body, so that a liveness probe restarts it."""
    status, body, headers = readiness(checks)
    return Response(body, status, media_type=JSON, headers=headers)


def ready(checks: Checks) -> Response:
    """``/readyz``'s answer for ``checks``."""
    status, body, headers = readiness(checks)
    return Response(body, status, media_type=JSON, headers=headers)
