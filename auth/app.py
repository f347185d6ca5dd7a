"""The auth service's HTTP routes (Starlette): thin shells around :class:`AuthService`.

Routes (``docs/auth.md``)::

    POST   /auth/v1/accounts               sign up (when enabled)
    POST   /auth/v1/login                  email and password -> access and refresh tokens
    POST   /auth/v1/refresh                a refresh token -> the next pair
    POST   /auth/v1/logout                 end the refresh token's session
    GET    /auth/v1/keys                   the caller's API keys         (Bearer)
    POST   /auth/v1/keys                   issue a key                   (Bearer)
    POST   /auth/v1/keys/{key_id}/rotate   a new secret for a key        (Bearer)
    DELETE /auth/v1/keys/{key_id}          revoke a key                  (Bearer)
    POST   /auth/v1/token                  an API key -> an access token
    GET    /auth/v1/plans                  the plans' entitlements, and the anonymous one
    GET    /auth/.well-known/jwks.json     the public keys of access tokens
    GET    /auth/healthz                   200 while the process answers (the edge's check)
    GET    /auth/readyz                    200 when the database answers, else 503
    GET    /healthz, /readyz               the same, where every service has them (web.health)

Bodies are JSON objects of at most ``max_body_bytes`` with bounded strings; errors are
problem+json with our codes (:mod:`auth.problems`). Token answers carry ``Cache-Control:
no-store``; secrets are in answers only, never in a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, ClassVar, Final, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from auth.claims import Entitlements
from auth.passwords import MAX_PASSWORD_CHARS
from auth.problems import (
    AuthError,
    http_error_handler,
    problem_handler,
    unavailable_handler,
)
from auth.relay import relay_events
from auth.service import AccessToken, AuthService, Session
from auth.settings import AuthSettings
from auth.store import ApiKey, AuthStore
from core.secrets import MaskedFields, Secret
from core.topics import AUTH_EVENTS
from storage.unavailable import DatabaseUnavailableError
from streams.bus import Bus
from streams.rounds import RoundFailures
from web.health import ALIVE_PATH, READY_PATH, alive, ready
from web.internal_errors import InternalErrors

_Email = Annotated[str, msgspec.Meta(max_length=320)]
_Password = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD_CHARS + 1)]
_Token = Annotated[str, msgspec.Meta(max_length=256)]
NO_STORE: Final = {"Cache-Control": "no-store"}
JWKS_MAX_AGE_S: Final = 60
log = logging.getLogger(__name__)


class Credentials(MaskedFields, msgspec.Struct, forbid_unknown_fields=True):
    masked: ClassVar[frozenset[str]] = frozenset({"password"})

    email: _Email
    password: _Password


class RefreshBody(MaskedFields, msgspec.Struct, forbid_unknown_fields=True):
    masked: ClassVar[frozenset[str]] = frozenset({"refresh_token"})

    refresh_token: _Token


class NewKeyBody(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=64)]
    scopes: Annotated[list[Annotated[str, msgspec.Meta(max_length=16)]], msgspec.Meta(max_length=4)]


class KeyTokenBody(MaskedFields, msgspec.Struct, forbid_unknown_fields=True):
    masked: ClassVar[frozenset[str]] = frozenset({"api_key"})

    api_key: _Token


Body = TypeVar("Body", bound=msgspec.Struct)


BusOpener = Callable[[], contextlib.AbstractAsyncContextManager[Bus]]


def create_app(
    url: str, settings: AuthSettings, bus: BusOpener | None = None, *, wait: float = 5.0
) -> Starlette:
    """The app on the database at ``url``; revocations relayed to ``auth.events`` on the bus
    that ``bus()`` opens for the app's lifespan (none: they stay in the outbox table)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            store = await stack.enter_async_context(AuthStore.open(url, wait=wait))
            service = AuthService(store, settings)
            await service.start()
            await store.prune(service.now())
            app.state.service = service
            prune = prune_sessions(store, service.now, settings.prune_every_s)
            tasks = [asyncio.create_task(prune, name="auth prune")]
            if bus is not None:
                events = (await stack.enter_async_context(bus())).topic(AUTH_EVENTS)
                relay = relay_events(
                    store, events, service.revoked, settings.relay_poll_s, settings.plans
                )
                tasks.append(asyncio.create_task(relay, name="auth.events relay"))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    proxies = list(settings.trusted_proxies)
    middleware = [Middleware(InternalErrors)]
    if proxies:
        middleware.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=proxies))
    return Starlette(
        routes=_routes(),
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={
            AuthError: problem_handler,
            DatabaseUnavailableError: unavailable_handler,
            HTTPException: http_error_handler,
        },
    )


def _routes() -> list[Route]:
    return [
        Route("/auth/v1/accounts", signup, methods=["POST"]),
        Route("/auth/v1/login", login, methods=["POST"]),
        Route("/auth/v1/refresh", refresh, methods=["POST"]),
        Route("/auth/v1/logout", logout, methods=["POST"]),
        Route("/auth/v1/keys", list_keys, methods=["GET"]),
        Route("/auth/v1/keys", create_key, methods=["POST"]),
        Route("/auth/v1/keys/{key_id}/rotate", rotate_key, methods=["POST"]),
        Route("/auth/v1/keys/{key_id}", revoke_key, methods=["DELETE"]),
        Route("/auth/v1/token", key_token, methods=["POST"]),
        Route("/auth/v1/plans", plans, methods=["GET"]),
        Route("/auth/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/auth/healthz", alive, methods=["GET"]),
        Route("/auth/readyz", readyz, methods=["GET"]),
        Route(ALIVE_PATH, alive, methods=["GET"]),
        Route(READY_PATH, readyz, methods=["GET"]),
    ]


async def prune_sessions(store: AuthStore, now: Callable[[], int], every_s: float) -> None:
    """Prune dead sessions every ``every_s`` seconds, for ever (the start prunes once
    itself); after a failure, whatever it was, again with backoff until it works."""
    failures = RoundFailures("auth prune: database", log, expected=(DatabaseUnavailableError,))
    pause = every_s
    task = asyncio.current_task()
    while True:
        await asyncio.sleep(pause)
        try:
            await store.prune(now())
        except Exception as exc:
            if task is not None and task.cancelling():
                raise  # a stop that landed in the query, told as its error: not one to retry
            pause = failures.failed(exc)
        else:
            failures.succeeded()
            pause = every_s


# -- routes -----------------------------------------------------------------------------------


async def signup(request: Request) -> Response:
    body = await _body(request, Credentials)
    account = await _service(request).signup(body.email, Secret(body.password), _address(request))
    answer = {"account_id": account.account_id, "email": account.email, "plan": account.plan}
    return _json(answer, 201)


async def login(request: Request) -> Response:
    body = await _body(request, Credentials)
    session = await _service(request).login(body.email, Secret(body.password), _address(request))
    return _session(session)


async def refresh(request: Request) -> Response:
    body = await _body(request, RefreshBody)
    return _session(await _service(request).refresh(Secret(body.refresh_token)))


async def logout(request: Request) -> Response:
    body = await _body(request, RefreshBody)
    await _service(request).logout(Secret(body.refresh_token))
    return Response(status_code=204, headers=NO_STORE)


async def list_keys(request: Request) -> Response:
    service = _service(request)
    caller = await service.caller(request.headers.get("authorization"))
    keys = await service.store.keys(caller.account.account_id)
    return _json({"keys": [_key(key) for key in keys]})


async def create_key(request: Request) -> Response:
    service = _service(request)
    caller = await service.caller(request.headers.get("authorization"))
    body = await _body(request, NewKeyBody)
    key, issued = await service.create_key(caller.account, body.name, body.scopes)
    return _json(_key(key) | {"api_key": issued.presented().reveal()}, 201)


async def rotate_key(request: Request) -> Response:
    service = _service(request)
    caller = await service.caller(request.headers.get("authorization"))
    key, issued = await service.rotate_key(request.path_params["key_id"], caller.account)
    return _json(_key(key) | {"api_key": issued.presented().reveal()})


async def revoke_key(request: Request) -> Response:
    service = _service(request)
    caller = await service.caller(request.headers.get("authorization"))
    await service.revoke_key(request.path_params["key_id"], caller.account)
    return Response(status_code=204, headers=NO_STORE)


async def key_token(request: Request) -> Response:
    body = await _body(request, KeyTokenBody)
    return _json(_access(await _service(request).key_token(Secret(body.api_key))))


async def plans(request: Request) -> Response:
    book = _service(request).settings.plans
    return Response(
        msgspec.json.encode(
            {
                "anonymous": book.anonymous,
                "signup": book.signup,
                "plans": {
                    name: Entitlements.of(plan).claims() for name, plan in book.plans.items()
                },
            }
        ),
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_S}"},
    )


async def jwks(request: Request) -> Response:
    keys = await _service(request).jwks()
    return Response(
        msgspec.json.encode(keys),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_S}"},
    )


async def readyz(request: Request) -> Response:
    try:
        await _service(request).store.ping()
    except DatabaseUnavailableError:
        return ready({"database": "unavailable"})
    return ready({"database": None})


# -- plumbing ---------------------------------------------------------------------------------


def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.service
    return service


def _address(request: Request) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy (the edge,
    ``AuthSettings.trusted_proxies``), the last address of ``X-Forwarded-For`` that is not
    one (uvicorn's ``ProxyHeadersMiddleware`` puts it in ``request.client``)."""
    return request.client.host if request.client is not None else "unknown"


async def _body(request: Request, kind: type[Body]) -> Body:
    """The request's JSON body as ``kind``, read within the size bound."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise AuthError("unsupported-media-type", "send the body as application/json")
    limit = _service(request).settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise _too_large(limit)
    try:
        return msgspec.json.decode(bytes(data), type=kind)
    except msgspec.DecodeError as exc:
        raise AuthError("invalid-request", f"the body is not a valid request: {exc}") from None


def _too_large(limit: int) -> AuthError:
    return AuthError("content-too-large", f"a request body may have at most {limit} bytes")


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        msgspec.json.encode(body), status_code=status, media_type="application/json",
        headers=NO_STORE,
    )  # fmt: skip


def _access(access: AccessToken) -> dict[str, Any]:
    return {
        "access_token": access.token.reveal(),
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "plan": access.plan,
    }


def _session(session: Session) -> Response:
    return _json(
        _access(session.access)
        | {
            "refresh_token": session.refresh_token.reveal(),
            "refresh_expires_in": session.refresh_expires_in,
        }
    )


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": key.created_at,
        "rotated_at": key.rotated_at,
        "revoked": key.revoked,
    }
