"""The front of the embedded platform (``mdp up``): the auth service and the edge.

The auth service runs in the platform's process, on its database (its tables come with the
platform's migrations), on a free port of the address the services listen on; revocations
and plan changes go out on the in-process bus's ``auth.events``. The edge is the machine's
HAProxy, the one public port: the chart page, the history API, the WebSocket gateway and
the auth service listen on free ports of 127.0.0.1 behind it. It runs in a folder of its
own for this run (removed at the end, so that several platforms never share one) and
verifies tokens with the auth service's keys, read at start and every
:data:`KEYS_EVERY_S` seconds; a changed key set reloads it without dropping a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from access.jwks import JwksCache
from auth.app import create_app
from auth.claims import Entitlements
from auth.plans import Plan, PlanBook, load_plans
from auth.settings import AuthSettings
from core.auth_events import PlanClaims
from edge.config import EdgeSettings
from edge.haproxy import EdgeError, Haproxy, find_haproxy
from edge.keeper import JWKS_PATH, EdgeKeeper, KeySource
from streams.bus import Bus
from web.server import ApiServer, serving

KEYS_EVERY_S: Final = 10.0
"""How often the edge reads the auth service's key set (the service itself reads its keys
again every 10 s, so a rotation by ``mdp auth rotate-keys`` reaches the edge within 20 s)."""
ALL_HISTORY_DAYS: Final = 36_500
"""A century: all of the history an embedded platform holds."""
STOP_TIMEOUT_S: Final = 2.0
EMBEDDED_CHECK_TIMEOUT_S: Final = 5.0
"""The edge's health checks wait this long here: every service of the platform answers on
one event loop, which a burst (the synthetic history, a replay) keeps busy for a second or
more; a server that does not answer in time is still taken out."""
SERVED_TIMEOUT_S: Final = 15.0
STATUS_TIMEOUT_S: Final = 2.0
SERVED_PATHS: Final = ("/healthz", "/auth/healthz", "/ws")
"""A path of each service behind the edge: the chart and history API, the auth service, the
gateway (whatever it answers a plain GET, it is not the edge's 503)."""
"""In-flight requests get this long when the platform stops; open WebSockets are cut."""


@contextlib.asynccontextmanager
async def auth_service(
    url: str, settings: AuthSettings, bus: Bus, host: str = "127.0.0.1"
) -> AsyncIterator[ApiServer]:
    """The auth service on the database at ``url``, on a free port of ``host``, relaying
    ``auth.events`` onto ``bus``."""
    app = create_app(url, settings, lambda: contextlib.nullcontext(bus))
    async with serving(app, host, 0) as server:
        yield server


def embedded_auth() -> AuthSettings:
    """The auth service's settings in ``mdp up``: the shipped plans, the anonymous one
    (``demo``) widened to everything the platform holds (:func:`widened`)."""
    plans = load_plans()
    if plans.anonymous is None:
        return AuthSettings(plans=plans)
    anonymous = widened(plans.get(plans.anonymous))
    return AuthSettings(
        plans=PlanBook(plans.plans | {anonymous.name: anonymous}, anonymous.name, plans.signup)
    )


def widened(plan: Plan) -> Plan:
    """``plan`` over every instrument and all of history: an embedded platform holds only
    what its one feed brought (a replayed file of last year, a venue the plan does not name),
    for the person at this machine. Its delay, rates and limits stay."""
    return dataclasses.replace(plan, instruments=("*",), history_days=ALL_HISTORY_DAYS)


def anonymous_claims(settings: AuthSettings) -> PlanClaims | None:
    """The claims of the anonymous plan, as the services take them (None: there is none)."""
    name = settings.plans.anonymous
    if name is None:
        return None
    return Entitlements.of(settings.plans.get(name)).plan_claims()


def access_keys(auth: ApiServer, settings: AuthSettings) -> JwksCache:
    """The auth service's keys as the services check tokens with them (``async with`` it)."""
    return JwksCache(jwks_url(auth), issuer=settings.issuer, audience=settings.audience)


def haproxy_missing() -> str | None:
    """Why the edge cannot run here, in one line with how to get HAProxy; None when it can."""
    try:
        find_haproxy()
    except EdgeError as exc:
        return str(exc)
    return None


class Edge:
    """HAProxy in front of the embedded services, with the auth service's keys.

    ``settings`` are the edge's but for the tokens and the folder, which this fills in;
    ``jwks_url`` is the auth service's key set. ``async with`` starts and stops it; :meth:`watch`
    keeps the keys current, feeds revocations from the bus's ``auth.events`` into HAProxy, and
    raises :class:`EdgeError` should HAProxy stop by itself.
    """

    def __init__(
        self, settings: EdgeSettings, jwks_url: str, bus: Bus, say: Callable[[str], None]
    ) -> None:
        self._wanted = settings
        self._jwks_url = jwks_url
        self._bus = bus
        self._say = say
        self._haproxy: Haproxy | None = None
        self._keeper: EdgeKeeper | None = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def url(self) -> str:
        return self._running().url()

    @property
    def metrics_url(self) -> str:
        return self._running().metrics_url()

    async def __aenter__(self) -> Edge:
        async with contextlib.AsyncExitStack() as stack:
            folder = Path(tempfile.mkdtemp(prefix="mdp-up-edge-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            tokens = self._wanted.tokens
            assert tokens is not None, "the edge's settings name the issuer and the audience"
            keys = KeySource(
                folder, tokens.issuer, tokens.audience, self._jwks_url, every_s=KEYS_EVERY_S
            )
            await stack.enter_async_context(keys.following())
            policy = await asyncio.to_thread(keys.policy)
            if policy is None or not policy.keys:
                raise EdgeError("the edge cannot read the auth service's keys")
            settings = dataclasses.replace(self._wanted, tokens=policy, error_dir=folder)
            haproxy = Haproxy(folder, stop_timeout=STOP_TIMEOUT_S)
            await asyncio.to_thread(haproxy.start, settings)
            stack.push_async_callback(asyncio.to_thread, haproxy.stop)
            self._haproxy = haproxy
            self._keeper = EdgeKeeper(haproxy, settings, keys, self._edge_says)
            await self._served()
            self._stack = stack.pop_all()
        return self

    async def _served(self) -> None:
        """Until every service answers through the edge (HAProxy counts a server in once its
        health checks pass), so that the first visitor is served; after
        :data:`SERVED_TIMEOUT_S`, a line says which is not, and the platform goes on."""
        url = self.url
        deadline = asyncio.get_running_loop().time() + SERVED_TIMEOUT_S
        waiting = list(SERVED_PATHS)
        while waiting:
            answers = await asyncio.gather(
                *(asyncio.to_thread(_status, url + path) for path in waiting)
            )
            waiting = [path for path, status in zip(waiting, answers, strict=True) if status == 503]
            if waiting and asyncio.get_running_loop().time() > deadline:
                self._say(f"edge: {', '.join(waiting)} not served yet (503); going on")
                return
            if waiting:
                await asyncio.sleep(0.1)

    async def __aexit__(self, *exc: object) -> None:
        self._haproxy = self._keeper = None
        await self._stack.aclose()

    async def watch(self) -> None:
        """Until cancelled: revocations on the bus's ``auth.events`` into HAProxy's map at run
        time; reload when the key set changes; raise when HAProxy is gone."""
        keeper = self._keeper
        if keeper is None:
            raise EdgeError("the edge is not running")
        tasks = [
            asyncio.create_task(keeper.follow_revocations(self._bus), name="edge: auth.events"),
            asyncio.create_task(keeper.follow_keys(), name="edge: keys"),
            asyncio.create_task(keeper.watch(), name="edge: HAProxy"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # the error that ended it

    def _edge_says(self, line: str) -> None:
        self._say(f"edge: {line}")

    def _running(self) -> Haproxy:
        if self._haproxy is None:
            raise EdgeError("the edge is not running")
        return self._haproxy


def jwks_url(auth: ApiServer) -> str:
    """The key set of the auth service at ``auth``."""
    return f"{auth.url}{JWKS_PATH}"


def _status(url: str) -> int:
    """The HTTP status ``url`` answers (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=STATUS_TIMEOUT_S) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0
