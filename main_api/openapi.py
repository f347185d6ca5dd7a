"""The main API's OpenAPI 3.1 document, its schemas made by msgspec from the very types the
app encodes (so the document cannot drift from the answers)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from core.alerts import Arming, Condition, Source
from main_api.views import AlertView, Firing, Notification, Profile, Watchlist
from main_api.webhooks.event import WebhookEvent
from main_api.webhooks.views import Delivery, Webhook

_REF: Final = "#/components/schemas/"


class ProfileBody(msgspec.Struct, kw_only=True):
    """What changes (the fields not given keep theirs)."""

    display_name: str | None = None
    time_zone: str | None = None
    default_interval: str | None = None


class WatchlistBody(msgspec.Struct, kw_only=True):
    """A new watchlist (``name`` required), or what changes in one."""

    name: str | None = None
    instruments: list[str] | None = None


class OrderBody(msgspec.Struct, kw_only=True):
    """Every watchlist's id, in the new order."""

    order: list[str]


class AlertBody(msgspec.Struct, kw_only=True):
    """An alert (threshold as a decimal string; a percentage for the move conditions)."""

    instrument: str
    condition: Condition
    threshold: str
    source: Source = Source.TICKS
    interval: str | None = None
    window_s: int = 0
    arming: Arming = Arming.ONCE
    cooldown_s: int = 0
    expires_at: int | None = None


class ProfileAnswer(msgspec.Struct):
    profile: Profile


class WatchlistAnswer(msgspec.Struct):
    watchlist: Watchlist


class Watchlists(msgspec.Struct):
    watchlists: list[Watchlist]


class AlertAnswer(msgspec.Struct):
    alert: AlertView


class AlertsPage(msgspec.Struct):
    alerts: list[AlertView]
    next_after: int | None


class FiredPage(msgspec.Struct):
    fired: list[Firing]
    next_after: int | None


class NotificationsPage(msgspec.Struct):
    notifications: list[Notification]
    unread: int
    next_before: int | None


class NotificationAnswer(msgspec.Struct):
    notification: Notification


class Marked(msgspec.Struct):
    marked: int


class WebhookBody(msgspec.Struct, kw_only=True):
    """A new endpoint: an http or https URL (a public host unless the service allows
    others)."""

    url: str


class NewSecret(msgspec.Struct):
    """An endpoint and its signing secret: shown this once."""

    webhook: Webhook
    secret: str


class Webhooks(msgspec.Struct):
    webhooks: list[Webhook]


class DeliveriesPage(msgspec.Struct):
    deliveries: list[Delivery]
    next_after: int | None


class DeadLettersPage(msgspec.Struct):
    dead_letters: list[Delivery]
    next_after: int | None


class DeliveryAnswer(msgspec.Struct):
    delivery: Delivery


class Replayed(msgspec.Struct):
    replayed: int


class Problem(msgspec.Struct, kw_only=True):
    """A refusal (RFC 9457): ``code`` is ours; ``parameter`` the field at fault."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    parameter: str | None = None


_TYPES: Final[tuple[type[Any], ...]] = (
    ProfileBody,
    WatchlistBody,
    OrderBody,
    AlertBody,
    ProfileAnswer,
    WatchlistAnswer,
    Watchlists,
    AlertAnswer,
    AlertsPage,
    FiredPage,
    NotificationsPage,
    NotificationAnswer,
    Marked,
    WebhookBody,
    NewSecret,
    Webhooks,
    DeliveriesPage,
    DeadLettersPage,
    DeliveryAnswer,
    Replayed,
    WebhookEvent,
    Problem,
)


def _param(name: str, where: str = "query", kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": kind}}


def _op(
    summary: str,
    answer: str | None,
    body: str | None = None,
    *params: dict[str, Any],
    status: str = "200",
) -> dict[str, Any]:
    problem = {"content": {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}}}
    ok: dict[str, Any] = {"description": "OK"}
    if answer is not None:
        ok["content"] = {"application/json": {"schema": {"$ref": _REF + answer}}}
    made: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {status: ok, "default": {"description": "a refusal", **problem}},
    }
    if params:
        made["parameters"] = list(params)
    if body is not None:
        content = {"application/json": {"schema": {"$ref": _REF + body}}}
        made["requestBody"] = {"required": True, "content": content}
    return made


def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(_TYPES, ref_template=_REF + "{name}")
    watchlist, alert = (
        _param("watchlist_id", "path", "string"),
        _param("alert_id", "path", "string"),
    )
    limit, after = _param("limit"), _param("after")
    base = "/api/v1"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ganntec main API", "version": "1"},
        "paths": {
            f"{base}/profile": {
                "get": _op("The caller's profile", "ProfileAnswer"),
                "put": _op("Change the profile", "ProfileAnswer", "ProfileBody"),
            },
            f"{base}/watchlists": {
                "get": _op("The watchlists, in order", "Watchlists"),
                "post": _op("A new watchlist", "WatchlistAnswer", "WatchlistBody", status="201"),
            },
            f"{base}/watchlists/order": {
                "put": _op("Reorder the watchlists", "Watchlists", "OrderBody"),
            },
            f"{base}/watchlists/{{watchlist_id}}": {
                "get": _op("One watchlist", "WatchlistAnswer", None, watchlist),
                "patch": _op(
                    "Rename, or set its instruments", "WatchlistAnswer", "WatchlistBody", watchlist
                ),
                "delete": _op("Delete it", None, None, watchlist, status="204"),
            },
            f"{base}/alerts": {
                "get": _op(
                    "The alerts, oldest first",
                    "AlertsPage",
                    None,
                    limit,
                    after,
                    _param("status", kind="string"),
                ),
                "post": _op("A new alert", "AlertAnswer", "AlertBody", status="201"),
            },
            f"{base}/alerts/{{alert_id}}": {
                "get": _op("One alert", "AlertAnswer", None, alert),
                "put": _op("Replace what it asks", "AlertAnswer", "AlertBody", alert),
                "delete": _op("Delete it", None, None, alert, status="204"),
            },
            f"{base}/alerts/{{alert_id}}/fired": {
                "get": _op("Its firings, oldest first", "FiredPage", None, alert, limit, after),
            },
            f"{base}/notifications": {
                "get": _op(
                    "Notifications, newest first",
                    "NotificationsPage",
                    None,
                    limit,
                    _param("before"),
                    _param("unread", kind="boolean"),
                ),
            },
            f"{base}/notifications/read": {"post": _op("Mark all read", "Marked")},
            f"{base}/notifications/{{fire_id}}/read": {
                "post": _op(
                    "Mark one read", "NotificationAnswer", None, _param("fire_id", "path", "string")
                ),
            },
            **_webhook_paths(base, limit, after),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _webhook_paths(base: str, *page: dict[str, Any]) -> dict[str, Any]:
    hook, fire = _param("webhook_id", "path", "string"), _param("fire_id", "path", "string")
    of_hook, state = _param("webhook_id", kind="string"), _param("state", kind="string")
    return {
        f"{base}/webhooks": {
            "get": _op("The webhook endpoints", "Webhooks"),
            "post": _op("A new endpoint and its secret", "NewSecret", "WebhookBody", status="201"),
        },
        f"{base}/webhooks/{{webhook_id}}": {
            "delete": _op("Delete it and its deliveries", None, None, hook, status="204"),
        },
        f"{base}/webhooks/{{webhook_id}}/secret": {
            "post": _op("A new secret (the old one signs for a day more)", "NewSecret", None, hook),
        },
        f"{base}/webhooks/deliveries": {
            "get": _op("Deliveries, oldest first", "DeliveriesPage", None, *page, of_hook, state),
        },
        f"{base}/webhooks/dead-letters": {
            "get": _op("Dead letters, oldest first", "DeadLettersPage", None, *page, of_hook),
        },
        f"{base}/webhooks/dead-letters/replay": {
            "post": _op("Replay every dead letter (of one endpoint)", "Replayed", None, of_hook),
        },
        f"{base}/webhooks/{{webhook_id}}/dead-letters/{{fire_id}}/replay": {
            "post": _op("Replay one dead letter", "DeliveryAnswer", None, hook, fire),
        },
    }
