"""The main API: ``/api/v1`` (``docs/main-api.md``): the caller's profile, watchlists, alerts,
notifications and webhooks.

Every ``/api/v1`` route but the OpenAPI document needs a token the auth service issued for an
account (an account's own or one of its keys'), verified here (:class:`web.tokens.TokenGate`,
never anonymous): 401 without one. Everything read or written is the token's account's: an id
of another account's is 404, as one that does not exist. Instruments are checked three ways:
their form (422), the plan's patterns (403 ``instrument-not-in-plan``), and that the platform
has them (``instruments_exist``: 422 ``unknown-instrument``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from access.grant import Grant
from main_api import requests as checks
from main_api.alert_body import alert_request
from main_api.errors import (
    REFUSALS,
    BadParameterError,
    RefusedError,
    StoreUnavailableError,
    problem,
)
from main_api.openapi import document
from main_api.requests import InvalidFieldError
from main_api.settings import MAX_INSTRUMENTS, MainApiSettings, PlanLimits
from main_api.store import DEFAULT_PAGE, MAX_PAGE, MainStore, new_id
from main_api.views import AlertStatus
from main_api.webhooks.schedule import DeliveryState
from main_api.webhooks.store import WebhookStore
from main_api.webhooks.urls import webhook_url
from streams.bus import Bus
from web import health
from web.routes import Guard, json_response, read_body, service_routes
from web.tokens import TokenGate, service_app, unauthorized

PREFIX: Final = "/api/v1"
PROFILE_FIELDS: Final = ("display_name", "time_zone", "default_interval")
WATCHLIST_FIELDS: Final = ("name", "instruments")
ORDER_FIELDS: Final = ("order",)
WEBHOOK_FIELDS: Final = ("url",)

InstrumentsExist = Callable[[str], Awaitable[bool]]
"""Whether the platform has an instrument (the storage's ``has_instrument``)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the token's account and plan."""

    account: int
    plan: str
    grant: Grant


class _Api:
    def __init__(
        self,
        store: MainStore,
        settings: MainApiSettings,
        gate: TokenGate,
        instruments_exist: InstrumentsExist,
    ) -> None:
        self.store, self.settings, self.gate = store, settings, gate
        self.instruments_exist = instruments_exist
        self.max_body_bytes = settings.http.max_body_bytes
        self.hooks = WebhookStore(store)

    async def caller(self, request: Request) -> Caller:
        """Who asks: an account's token."""
        grant = await self.gate.grant(request)
        if grant.account_id is None:
            raise unauthorized("token-required", "the main API needs an account's token")
        return Caller(grant.account_id, grant.plan, grant)

    async def body(self, request: Request) -> bytes:
        return await read_body(request, self.max_body_bytes)

    def limits(self, caller: Caller) -> PlanLimits:
        return self.settings.limits_of(caller.plan)

    async def check_instruments(self, caller: Caller, names: list[str], field: str) -> None:
        """``names`` within the plan's limit of a watchlist, each covered by the plan and known
        to the platform."""
        most = self.limits(caller).instruments
        if field == "instruments" and len(names) > most:
            raise RefusedError(
                "plan-limit", "instruments",
                f"the {caller.plan} plan allows {most} instruments in a watchlist",
                limit=most, plan=caller.plan,
            )  # fmt: skip
        for index, name in enumerate(names):
            at = field if field == "instrument" else f"{field}[{index}]"
            if not caller.grant.covers(name):
                raise RefusedError(
                    "instrument-not-in-plan", at,
                    f"the {caller.plan} plan does not cover {name}", plan=caller.plan,
                )  # fmt: skip
            if not await self.instruments_exist(name):
                raise InvalidFieldError(
                    at, "unknown-instrument", f"the platform has no instrument {name}"
                )

    # -- profile ----------------------------------------------------------------------------

    async def get_profile(self, request: Request, caller: Caller) -> Response:
        return json_response({"profile": await self.store.profile(caller.account)})

    async def put_profile(self, request: Request, caller: Caller) -> Response:
        given = checks.fields(await self.body(request), PROFILE_FIELDS)
        changes: dict[str, str] = {}
        if "display_name" in given:
            changes["display_name"] = checks.name(given["display_name"], "display_name", empty=True)
        if "time_zone" in given:
            changes["time_zone"] = checks.time_zone(given["time_zone"])
        if "default_interval" in given:
            changes["default_interval"] = checks.interval(
                given["default_interval"], self.settings.intervals, "default_interval"
            )
        return json_response({"profile": await self.store.put_profile(caller.account, changes)})

    # -- watchlists -------------------------------------------------------------------------

    async def list_watchlists(self, request: Request, caller: Caller) -> Response:
        return json_response({"watchlists": await self.store.watchlists(caller.account)})

    async def create_watchlist(self, request: Request, caller: Caller) -> Response:
        given = checks.fields(await self.body(request), WATCHLIST_FIELDS)
        if "name" not in given:
            raise InvalidFieldError("name", "required", "a watchlist needs a name")
        name = checks.name(given["name"], "name")
        instruments = checks.instruments(given.get("instruments", []), MAX_INSTRUMENTS)
        await self.check_instruments(caller, instruments, "instruments")
        made = await self.store.create_watchlist(
            caller.account, name, instruments, self.limits(caller), caller.plan
        )
        return json_response({"watchlist": made}, 201)

    async def get_watchlist(self, request: Request, caller: Caller) -> Response:
        found = await self.store.watchlist(caller.account, _id(request, "watchlist_id"))
        return json_response({"watchlist": found})

    async def update_watchlist(self, request: Request, caller: Caller) -> Response:
        watchlist_id = _id(request, "watchlist_id")
        given = checks.fields(await self.body(request), WATCHLIST_FIELDS)
        if not given:
            raise InvalidFieldError("body", "required", "give name, instruments or both")
        name = checks.name(given["name"], "name") if "name" in given else None
        instruments = None
        if "instruments" in given:
            instruments = checks.instruments(given["instruments"], MAX_INSTRUMENTS)
            await self.check_instruments(caller, instruments, "instruments")
        changed = await self.store.update_watchlist(
            caller.account, watchlist_id, name=name, instruments=instruments
        )
        return json_response({"watchlist": changed})

    async def delete_watchlist(self, request: Request, caller: Caller) -> Response:
        await self.store.delete_watchlist(caller.account, _id(request, "watchlist_id"))
        return Response(status_code=204)

    async def reorder_watchlists(self, request: Request, caller: Caller) -> Response:
        given = checks.fields(await self.body(request), ORDER_FIELDS)
        if "order" not in given:
            raise InvalidFieldError(
                "order", "required", "give the watchlists' ids in their new order"
            )
        order = checks.ids(given["order"], "order")
        return json_response(
            {"watchlists": await self.store.reorder_watchlists(caller.account, order)}
        )

    # -- alerts -----------------------------------------------------------------------------

    async def list_alerts(self, request: Request, caller: Caller) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in AlertStatus._value2member_map_:
            raise BadParameterError(
                "status", "unknown", "status is active, fired, expired or deleted"
            )
        alerts, after = await self.store.alerts(
            caller.account, status=status, limit=_limit(request), after=_int(request, "after")
        )
        return json_response({"alerts": alerts, "next_after": after})

    async def create_alert(self, request: Request, caller: Caller) -> Response:
        spec = alert_request(
            await self.body(request), alert_id=new_id("a"), account=caller.account,
            now_ns=self.store.clock(), intervals=self.settings.intervals,
        )  # fmt: skip
        await self.check_instruments(caller, [spec.instrument], "instrument")
        made = await self.store.create_alert(spec, self.limits(caller), caller.plan)
        return json_response({"alert": made}, 201)

    async def get_alert(self, request: Request, caller: Caller) -> Response:
        return json_response(
            {"alert": await self.store.alert(caller.account, _id(request, "alert_id"))}
        )

    async def replace_alert(self, request: Request, caller: Caller) -> Response:
        spec = alert_request(
            await self.body(request), alert_id=_id(request, "alert_id"), account=caller.account,
            now_ns=self.store.clock(), intervals=self.settings.intervals,
        )  # fmt: skip
        await self.store.alert(caller.account, spec.alert_id)  # 404 before 403/422 of the world
        await self.check_instruments(caller, [spec.instrument], "instrument")
        changed = await self.store.replace_alert(spec, self.limits(caller), caller.plan)
        return json_response({"alert": changed})

    async def delete_alert(self, request: Request, caller: Caller) -> Response:
        await self.store.delete_alert(caller.account, _id(request, "alert_id"))
        return Response(status_code=204)

    async def fired(self, request: Request, caller: Caller) -> Response:
        limit, after = _limit(request), _int(request, "after")
        firings = await self.store.fired(caller.account, _id(request, "alert_id"), limit, after)
        next_after = firings[-1].seq if len(firings) == limit else None
        return json_response({"fired": firings, "next_after": next_after})

    # -- notifications ----------------------------------------------------------------------

    async def notifications(self, request: Request, caller: Caller) -> Response:
        limit = _limit(request)
        before = _int(request, "before") if "before" in request.query_params else None
        unread = _flag(request, "unread")
        items, unread_count = await self.store.notifications(
            caller.account, unread=unread, limit=limit, before=before
        )
        next_before = items[-1].seq if len(items) == limit else None
        return json_response(
            {"notifications": items, "unread": unread_count, "next_before": next_before}
        )

    async def mark_read(self, request: Request, caller: Caller) -> Response:
        fire_id = _id(request, "fire_id")
        return json_response({"notification": await self.store.mark_read(caller.account, fire_id)})

    async def mark_all_read(self, request: Request, caller: Caller) -> Response:
        return json_response({"marked": await self.store.mark_all_read(caller.account)})

    # -- webhooks ---------------------------------------------------------------------------

    async def list_webhooks(self, request: Request, caller: Caller) -> Response:
        return json_response({"webhooks": await self.hooks.webhooks(caller.account)})

    async def create_webhook(self, request: Request, caller: Caller) -> Response:
        given = checks.fields(await self.body(request), WEBHOOK_FIELDS)
        if "url" not in given:
            raise InvalidFieldError("url", "required", "a webhook needs a url")
        hooks = self.settings.webhooks
        url = webhook_url(
            given["url"], allow_private=hooks.allow_private_hosts, allowed=hooks.allowed_networks
        )
        made, secret = await self.hooks.create(
            caller.account, url, self.limits(caller).webhooks, caller.plan
        )
        return _secret({"webhook": made, "secret": secret}, 201)

    async def delete_webhook(self, request: Request, caller: Caller) -> Response:
        await self.hooks.delete(caller.account, _id(request, "webhook_id"))
        return Response(status_code=204)

    async def rotate_secret(self, request: Request, caller: Caller) -> Response:
        overlap = self.settings.webhooks.rotation_overlap_s
        made, secret = await self.hooks.rotate(caller.account, _id(request, "webhook_id"), overlap)
        return _secret({"webhook": made, "secret": secret})

    async def deliveries(self, request: Request, caller: Caller) -> Response:
        state = request.query_params.get("state")
        if state is not None and state not in DeliveryState._value2member_map_:
            raise BadParameterError("state", "unknown", "state is pending, delivered or dead")
        chosen = None if state is None else DeliveryState(state)
        return await self._deliveries(request, caller, chosen)

    async def dead_letters(self, request: Request, caller: Caller) -> Response:
        return await self._deliveries(request, caller, DeliveryState.DEAD)

    async def _deliveries(
        self, request: Request, caller: Caller, state: DeliveryState | None
    ) -> Response:
        limit = _limit(request)
        found = await self.hooks.deliveries(
            caller.account, state=state, webhook_id=_text(request, "webhook_id"), limit=limit,
            after=_int(request, "after"),
        )  # fmt: skip
        key = "dead_letters" if state is DeliveryState.DEAD else "deliveries"
        return json_response(
            {key: found, "next_after": found[-1].seq if len(found) == limit else None}
        )

    async def replay(self, request: Request, caller: Caller) -> Response:
        webhook_id, fire_id = _id(request, "webhook_id"), _id(request, "fire_id")
        return json_response(
            {"delivery": await self.hooks.replay(caller.account, webhook_id, fire_id)}
        )

    async def replay_all(self, request: Request, caller: Caller) -> Response:
        webhook_id = _text(request, "webhook_id")
        return json_response({"replayed": await self.hooks.replay_all(caller.account, webhook_id)})

    # -- health -----------------------------------------------------------------------------

    async def ready(self, request: Request) -> Response:
        """Ready when the database answers."""
        try:
            await self.store.ping()
        except StoreUnavailableError:
            return health.ready({"database": "unavailable"})
        return health.ready({"database": None})


def _id(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if not 0 < len(value) <= 2 * checks.MAX_ID_CHARS or not value.isprintable():
        raise InvalidFieldError(name, "format", "not an id")
    return value


def _text(request: Request, name: str) -> str | None:
    """An optional id given in the query."""
    text = request.query_params.get(name)
    if text is not None and not (0 < len(text) <= checks.MAX_ID_CHARS and text.isprintable()):
        raise BadParameterError(name, "format", f"{name} must be an id")
    return text


def _secret(content: object, status: int = 200) -> Response:
    """An answer holding a secret: never kept by a cache."""
    answer = json_response(content, status)
    answer.headers["Cache-Control"] = "no-store"
    return answer


def _int(request: Request, name: str, default: int = 0) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 18:
        raise BadParameterError(name, "format", f"{name} must be a whole number")
    return int(text)


def _limit(request: Request) -> int:
    limit = _int(request, "limit", DEFAULT_PAGE)
    if not 1 <= limit <= MAX_PAGE:
        raise BadParameterError("limit", "out-of-range", f"limit is 1 to {MAX_PAGE}")
    return limit


def _flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false")
    if text not in ("true", "false"):
        raise BadParameterError(name, "format", f"{name} is true or false")
    return text == "true"


def create_app(
    store: MainStore,
    settings: MainApiSettings,
    instruments_exist: InstrumentsExist,
    *,
    bus: Bus | None = None,
) -> Starlette:
    """The app over an open ``store`` (the caller owns it). ``settings.tokens`` must name a
    key set (``jwks_url`` or ``keys``) and no anonymous plan; ``instruments_exist`` says
    whether the platform has an instrument. Given a ``bus``, revocations and plan changes on
    ``auth.events`` apply at once."""
    tokens = settings.tokens
    if not tokens.checks_tokens:
        raise ValueError("the main API checks tokens: give it jwks_url or keys")
    if tokens.anonymous is not None:
        raise ValueError("the main API has no anonymous plan")
    gate = TokenGate(tokens, "main-api")
    api = _Api(store, settings, gate, instruments_exist)
    g = Guard(api.caller, REFUSALS, problem)
    p = PREFIX
    hook = f"{p}/webhooks/{{webhook_id}}"
    routes = [
        Route(f"{p}/profile", g(api.get_profile), methods=["GET"]),
        Route(f"{p}/profile", g(api.put_profile), methods=["PUT"]),
        Route(f"{p}/watchlists", g(api.list_watchlists), methods=["GET"]),
        Route(f"{p}/watchlists", g(api.create_watchlist), methods=["POST"]),
        Route(f"{p}/watchlists/order", g(api.reorder_watchlists), methods=["PUT"]),
        Route(f"{p}/watchlists/{{watchlist_id}}", g(api.get_watchlist), methods=["GET"]),
        Route(f"{p}/watchlists/{{watchlist_id}}", g(api.update_watchlist), methods=["PATCH"]),
        Route(f"{p}/watchlists/{{watchlist_id}}", g(api.delete_watchlist), methods=["DELETE"]),
        Route(f"{p}/alerts", g(api.list_alerts), methods=["GET"]),
        Route(f"{p}/alerts", g(api.create_alert), methods=["POST"]),
        Route(f"{p}/alerts/{{alert_id}}", g(api.get_alert), methods=["GET"]),
        Route(f"{p}/alerts/{{alert_id}}", g(api.replace_alert), methods=["PUT"]),
        Route(f"{p}/alerts/{{alert_id}}", g(api.delete_alert), methods=["DELETE"]),
        Route(f"{p}/alerts/{{alert_id}}/fired", g(api.fired), methods=["GET"]),
        Route(f"{p}/notifications", g(api.notifications), methods=["GET"]),
        Route(f"{p}/notifications/read", g(api.mark_all_read), methods=["POST"]),
        Route(f"{p}/notifications/{{fire_id}}/read", g(api.mark_read), methods=["POST"]),
        Route(f"{p}/webhooks", g(api.list_webhooks), methods=["GET"]),
        Route(f"{p}/webhooks", g(api.create_webhook), methods=["POST"]),
        Route(f"{p}/webhooks/deliveries", g(api.deliveries), methods=["GET"]),
        Route(f"{p}/webhooks/dead-letters", g(api.dead_letters), methods=["GET"]),
        Route(f"{p}/webhooks/dead-letters/replay", g(api.replay_all), methods=["POST"]),
        Route(hook, g(api.delete_webhook), methods=["DELETE"]),
        Route(f"{hook}/secret", g(api.rotate_secret), methods=["POST"]),
        Route(f"{hook}/dead-letters/{{fire_id}}/replay", g(api.replay), methods=["POST"]),
        *service_routes(p, document(), api.ready),
    ]

    return service_app(routes, gate, bus)
