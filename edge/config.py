"""The edge's HAProxy configuration, written from settings: no I/O here.

:func:`render` turns :class:`EdgeSettings` into the text of ``haproxy.cfg``. The shape:

- one public frontend: ``/ws`` to the WebSocket gateways, ``/v1`` and ``/udf`` to the history
  API, ``/auth`` to the auth service, ``/`` to the chart page, ``/trading`` to the trading
  service and ``/api`` to the main API when they are given; the paths of services that do
  not run here (``/trading`` or ``/api`` without one) answer 503 problem+json;
- bounds before anything else: request line and head sizes, head and body deadlines;
- a bearer token (``Authorization: Bearer`` or, for ``/ws`` where browsers cannot set headers,
  ``?token=``) is checked here: ``alg`` pinned to ES256, the signature against each current
  key named by its ``kid``, ``exp``, ``iss`` and ``aud``; a bad token is 401 problem+json;
  without a token the request is anonymous, or 401 when anonymous access is off;
- the signature of a token that passed is remembered for a minute, by the SHA-256 of the
  whole token (:data:`VERIFIED_TABLE`): its next requests skip ``jwt_verify`` and have every
  other check made again;
- a token whose key (``sub``), session (``sid``) or account (``acct``) is in the revocation
  map (:data:`REVOCATION_MAP`, fed at run time through HAProxy's runtime API) is 401 until the
  entry's time (the moment every such token has expired);
- ``/trading`` needs a token whose ``trade`` claim is true (403 otherwise), before it is
  routed (or answered 503); a trading service partitioned by account gets each request at the
  partition of the token's ``acct`` claim (``acct % N``, :mod:`core.partitions`);
- request rates: per principal (its plan's ``rpm`` claim, requests per minute), per address
  for anonymous requests, and per address for logins; over the limit is 429 with
  ``Retry-After``; a WebSocket upgrade from an address that holds too many connections
  already is 429 too;
- with :class:`BackendTls` the edge speaks TLS to a backend's servers (health checks too):
  their certificate must come from the given CA, and the edge presents its own (mutual TLS,
  ``docs/security.md``);
- servers are named by address or host name; with ``follow_dns`` names are looked up again as
  they change (compose and Kubernetes give containers new addresses);
- every backend is health-checked on its ``/healthz``; a server that fails is taken out and
  comes back when it answers again, and one that keeps answering 5xx is taken out too
  (``observe layer7``); with no server left the edge answers 503 problem+json;
- an admin frontend, on its own address, serves HAProxy's Prometheus metrics at ``/metrics``;
- one JSON line per request in the log, without the query string, the token or any header
  (so never the ``Authorization`` header, a ``?token=`` or a cookie).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from core.partitions import MAX_PARTITIONS, Partition

PROBLEM_TYPE_BASE: Final = "https://ganntec.dev/problems/"
TOKEN_ALGORITHM: Final = "ES256"
"""The one algorithm a token may name: a token signed any other way is refused unverified."""
MAX_URL_BYTES: Final = 8 * 1024
MAX_BODY_BYTES: Final = 64 * 1024
MAX_HEAD_BYTES: Final = 16 * 1024
"""Heads above this are answered 431 by the rules; HAProxy's buffer (twice as large) is the
hard bound, past which HAProxy answers its own 400 before any rule runs."""
_HEALTH: Final = "inter 1s fall 2 rise 2 observe layer7 error-limit 10 on-error mark-down"
"""Health checks each second: down after two failures (or ten 5xx answers in a row), up again
after two successes."""
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_REUSE: Final = ("never", "safe", "aggressive", "always")
REVOCATION_MAP: Final = "revoked.map"
"""In the edge's folder: ``<subject> <until>`` per line, the subjects (``key:<id>``,
``session:<sid>``, ``account:<id>``) whose tokens are refused until ``until`` (UNIX s)."""
RUNTIME_SOCKET: Final = "runtime.sock"
"""In the edge's folder: HAProxy's runtime API (``level admin``, mode 600), named relative to
it (HAProxy runs there) because a socket's path is short (HAProxy takes 97 bytes)."""
_FILE_UNSAFE: Final = ",()"
"""Besides :func:`_unsafe`: what would end a file name inside a converter's arguments."""
RESOLVERS: Final = "system"
"""The ``resolvers`` section of :attr:`EdgeSettings.follow_dns`."""
CONNECTIONS_PER_ADDRESS: Final = 64
ADDRESS_TABLE: Final = "per_address"
"""Per client address: its connections now and its login attempts' rate."""
VERIFIED_TABLE: Final = "verified_tokens"
"""The stick table of tokens whose signature has been verified, keyed by the SHA-256 of the
whole token (32 bytes): a token edited in any byte has another key and is verified afresh."""
VERIFIED_FOR_S: Final = 60
"""How long a verified token is taken as signed before its signature is verified again."""
VERIFIED_SIZE: Final = 100_000
"""Tokens remembered at most (about 100 bytes each); past it the oldest entries go, which
only costs their next request a verification."""
RATE_CLAIM: Final = "$.rpm"
"""A token's requests-per-minute limit among its claims (the plan's, ``docs/auth.md``; flat,
as ``jwt_payload_query`` reads top-level members only)."""


@dataclass(frozen=True, slots=True)
class BackendTls:
    """TLS from the edge to a backend's servers: ``ca`` (PEM) the servers' certificates must
    come from (``verify required``), and ``cert``, the edge's certificate and key in one PEM
    file (``mdp certs issue edge``: ``edge.pem``), presented to servers that require one."""

    ca: Path
    cert: Path

    def __post_init__(self) -> None:
        for path in (self.ca, self.cert):
            if _unsafe(str(path)):
                raise ValueError(f"the TLS file's path {path} may hold no quote or space")

    def server_options(self, server: str) -> str:
        """What follows ``check`` on the server line of ``server`` (``host:port``): a server
        named by host name must also carry that name in its certificate (``verifyhost``); one
        named by address is checked for its CA only (HAProxy matches DNS names only)."""
        host = server.rpartition(":")[0].strip("[]")
        options = f"ssl verify required ca-file {self.ca} crt {self.cert}"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"{options} verifyhost {host}"
        return options


@dataclass(frozen=True, slots=True)
class Upstream:
    """One service behind the edge: its instances (``host:port``) and its health path."""

    name: str
    servers: tuple[str, ...]
    health_path: str = "/healthz"
    websocket: bool = False
    """Long-lived upgraded connections: balanced by fewest connections, with a tunnel
    timeout instead of the request timeouts."""
    tls: BackendTls | None = None
    """TLS to the servers (None: plain HTTP, as inside ``mdp up``)."""

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.servers:
            raise ValueError(f"upstream {self.name}: at least one server is needed")
        for server in self.servers:
            host, sep, port = server.rpartition(":")
            if _unsafe(server) or not sep or not host or not port.isdigit():
                raise ValueError(f"upstream {self.name}: {server!r} is not host:port")
            if not 0 < int(port) < 65536:
                raise ValueError(f"upstream {self.name}: {server!r} is not host:port")
        if not self.health_path.startswith("/") or _unsafe(self.health_path):
            raise ValueError(f"upstream {self.name}: bad health path {self.health_path!r}")


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A public key tokens may be signed with: its ``kid`` and the PEM file holding it."""

    kid: str
    pem: Path

    def __post_init__(self) -> None:
        _check_name(self.kid)
        if _unsafe(str(self.pem)):
            raise ValueError(f"key {self.kid}: the key file's path may hold no quote or space")


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What a token must be to pass the edge."""

    issuer: str
    audience: str
    keys: tuple[VerifyKey, ...]

    def __post_init__(self) -> None:
        for value in (self.issuer, self.audience):
            if not value or _unsafe(value):
                raise ValueError(f"issuer and audience must be plain words, not {value!r}")
        if len({key.kid for key in self.keys}) != len(self.keys):
            raise ValueError("two keys with the same kid")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per minute, counted over a sliding ``window_s`` (HAProxy's ``http_req_rate``):
    a client over its limit may try again after one window."""

    anonymous_per_address: int = 1200
    logins_per_address: int = 30
    """Login attempts per address and minute, at most five in ten seconds (the auth service
    also limits per account)."""
    token_default: int = 600
    """For a token that names no rate of its own."""
    window_s: int = 10

    def __post_init__(self) -> None:
        for value in (self.anonymous_per_address, self.logins_per_address, self.token_default):
            if value < 1:
                raise ValueError("rate limits must be at least 1 request per minute")
        if self.window_s < 1 or 60 % self.window_s:
            raise ValueError("the rate window must be a whole divisor of 60 seconds")

    @property
    def per_minute(self) -> str:
        """The converter that scales a window's count to a minute's."""
        return f"mul({60 // self.window_s})"

    @property
    def store(self) -> str:
        return f"store http_req_rate({self.window_s}s)"


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """Everything :func:`render` needs."""

    host: str
    port: int
    admin_host: str
    admin_port: int
    chart: Upstream
    """The chart page."""
    history: Upstream
    """``/v1`` and ``/udf`` (in ``mdp up``, the same server as the chart page)."""
    gateway: Upstream
    auth: Upstream | None = None
    trading: Upstream | tuple[Upstream, ...] | None = None
    """``/trading`` (``None``: 503 there, after the trade claim's check); partitioned by
    account, one upstream per partition in partition order (:func:`trading_partitions`)."""
    main_api: Upstream | None = None
    """``/api`` (``None``: 503 there)."""
    tokens: TokenPolicy | None = None
    """``None``: every token is refused (nothing could check it); anonymous requests pass if
    ``anonymous`` allows them."""
    anonymous: bool = True
    limits: RateLimits = field(default_factory=RateLimits)
    error_dir: Path = Path(".")
    """The edge's folder: :func:`error_files` (HAProxy reads them at start), the revocation
    map and the runtime socket."""
    max_connections_per_address: int = CONNECTIONS_PER_ADDRESS
    """WebSocket upgrades are refused (429) from an address holding this many connections to
    the edge (0: no cap). Behind the edge every gateway sees the edge's address, so the cap
    per client is kept here and the gateways run without theirs."""
    follow_dns: bool = False
    """Servers named by host name are looked up again as their addresses change (through the
    name servers of ``/etc/resolv.conf``: compose's, Kubernetes'), and a name that does not
    resolve yet leaves its server down instead of stopping HAProxy from starting. Off: names
    are resolved once, at start, and must resolve."""
    max_connections: int = 8_000
    """HAProxy needs about two file descriptors per connection: 8,000 fits the common hard
    limit of 20,000 (`ulimit -Hn`)."""
    head_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    tunnel_timeout_s: float = 3600.0
    check_timeout_s: float = 1.0
    """How long a health check may wait for its answer: a server slower than this fails it.
    ``mdp up``, whose services share one busy event loop, allows more."""
    threads: int | None = None
    """HAProxy's threads (``nbthread``); ``None``: HAProxy's default, one per core it may run
    on. ``bench.edge`` compares the choices (``docs/edge.md``, "Benchmark")."""
    server_reuse: str = "safe"
    """How idle connections to the servers are shared between client connections
    (``http-reuse``; ``safe`` is HAProxy's default and writes nothing)."""
    access_log: bool = True
    """One JSON line per request (:data:`ACCESS_LOG`); off only to measure what it costs."""

    def __post_init__(self) -> None:
        if self.max_connections_per_address < 0:
            raise ValueError("max_connections_per_address must not be negative (0: no cap)")
        if self.threads is not None and not 1 <= self.threads <= 64:
            raise ValueError(f"threads: 1 to 64, not {self.threads}")
        if self.server_reuse not in _REUSE:
            raise ValueError(f"server_reuse: one of {', '.join(_REUSE)}, not {self.server_reuse}")
        if isinstance(self.trading, tuple):
            count = len(self.trading)
            if not 2 <= count <= MAX_PARTITIONS:
                raise ValueError(f"trading: 2 to {MAX_PARTITIONS} partitions, not {count}")
            for index, upstream in enumerate(self.trading):
                if upstream.name != partition_backend(Partition(index, count)):
                    raise ValueError(f"trading: partition {index}/{count} is misnamed")
        if _unsafe(str(self.error_dir)) or any(c in _FILE_UNSAFE for c in str(self.error_dir)):
            raise ValueError(f"the edge's folder {self.error_dir} may hold no space, quote, , ( )")

    @property
    def revocation_map(self) -> Path:
        return self.error_dir / REVOCATION_MAP

    @property
    def runtime_socket(self) -> Path:
        return self.error_dir / RUNTIME_SOCKET


OPEN_PATHS: Final = ("/", "/config.json", "/favicon.ico", "/ws")
"""Served without a token even where anonymous access is off: the chart page and its files
(and ``/static/``), where a visitor logs in, and ``/ws``, whose token a browser sends in the
first frame (the gateway closes a connection that sends none, ``docs/auth.md``)."""
UNAVAILABLE_PATHS: Final = ("/trading", "/api")
"""Services the platform has or will have: answered 503 where none runs."""
TRADING_PATH: Final = "/trading"
TRADING_BACKEND: Final = "trading"
ACCOUNT_CLAIM: Final = "$.acct"
"""The account a token acts for: what a partitioned trading service is routed by."""
MAIN_API_PATH: Final = "/api"
TRADE_CLAIM: Final = "$.trade"
"""True in a token that may trade (its plan allows it and its scopes include ``trade``)."""
PRINCIPAL_HEADER: Final = "X-Mdp-Principal"
"""The principal of a checked token, as the edge tells the backends (a client's own is
dropped)."""
ACCESS_LOG: Final = (
    '{"time":"%t","client":"%ci","method":"%HM","path":"%[var(txn.path)]","status":%ST,'
    '"bytes":%B,"ms":%Ta,"backend":"%b","server":"%s","retries":%rc,"state":"%ts",'
    '"principal":"%[var(txn.principal)]"}'
)
"""One JSON object per request. The path is read without its query string (which may hold a
``?token=``) and escaped by HAProxy's ``json`` converter; no header is logged, so neither the
``Authorization`` header nor a cookie; the principal is that of a token that passed."""
_RETRIES: Final = "conn-failure empty-response junk-response response-timeout"
"""What the edge retries on another server (``option redispatch``): a request that no server
began to answer, because its server died or does not answer; GET and HEAD only."""


def partition_backend(partition: Partition) -> str:
    """The backend of one partition of the trading service (``trading_p1of2``)."""
    return f"{TRADING_BACKEND}_p{partition.index}of{partition.count}"


def trading_partitions(servers: Sequence[tuple[str, ...]]) -> tuple[Upstream, ...]:
    """The upstreams of a trading service partitioned by account: ``servers[i]`` serves
    partition ``i`` of ``len(servers)``."""
    count = len(servers)
    return tuple(
        Upstream(partition_backend(Partition(index, count)), tuple(given))
        for index, given in enumerate(servers)
    )


def problem(status: int, kind: str, title: str, detail: str) -> str:
    """A problem+json body (RFC 9457), as the services write theirs."""
    body = {"type": PROBLEM_TYPE_BASE + kind, "title": title, "status": status, "detail": detail}
    return json.dumps(body, separators=(",", ":"))


def error_files(settings: EdgeSettings) -> dict[Path, str]:
    """The whole HTTP answers HAProxy sends when it cannot ask a backend (``errorfile``)."""
    answers = {
        503: problem(503, "unavailable", "Service unavailable", "no instance is up: try again"),
        504: problem(504, "timeout", "Gateway timeout", "the service did not answer in time"),
        502: problem(502, "bad-gateway", "Bad gateway", "the service gave no valid answer"),
        408: problem(408, "request-timeout", "Request timeout", "the request was not sent in time"),
        400: problem(400, "bad-request", "Bad request", "the request is not valid HTTP"),
        413: problem(413, "too-large", "Payload too large", "the request head is too large"),
    }  # fmt: skip
    files = {}
    for status, body in answers.items():
        head = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            "Content-Type: application/problem+json",
            f"Content-Length: {len(body)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        if status == 503:
            head.append("Retry-After: 5")
        files[settings.error_dir / f"{status}.http"] = "\r\n".join(head) + "\r\n\r\n" + body
    return files


_REASONS: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Payload Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def render(settings: EdgeSettings, generation: int = 0) -> str:
    """The text of ``haproxy.cfg``; the admin frontend answers ``/generation`` with
    ``generation``, so that whoever reloads can tell when the new configuration serves."""
    lines = [*_global(settings), *_frontend(settings), *_admin(settings, generation)]
    return "\n".join([*lines, *_backends(settings)]) + "\n"


def _global(settings: EdgeSettings) -> Iterator[str]:
    yield "global"
    yield f"    maxconn {settings.max_connections}"
    if settings.threads is not None:
        yield f"    nbthread {settings.threads}"
    yield f"    tune.bufsize {MAX_HEAD_BYTES * 2}"
    yield "    log stderr format raw local0 info"
    # relative: HAProxy runs in the edge's folder, whose path may be longer than a socket's
    yield f"    stats socket unix@{RUNTIME_SOCKET} mode 600 level admin"
    yield ""
    yield "defaults"
    yield "    mode http"
    yield "    log global"
    yield "    option http-keep-alive"
    if settings.server_reuse != "safe":
        yield f"    http-reuse {settings.server_reuse}"
    yield "    option redispatch 1"
    yield "    retries 2"
    yield f"    retry-on {_RETRIES}"
    yield "    timeout connect 2s"
    yield f"    timeout client {_ms(settings.idle_timeout_s)}"
    yield f"    timeout server {_ms(settings.idle_timeout_s)}"
    yield f"    timeout http-request {_ms(settings.head_timeout_s)}"
    yield f"    timeout http-keep-alive {_ms(settings.idle_timeout_s)}"
    yield f"    timeout tunnel {_ms(settings.tunnel_timeout_s)}"
    yield "    timeout client-fin 5s"
    yield f"    timeout check {_ms(settings.check_timeout_s)}"
    for path in sorted(error_files(settings)):
        yield f"    errorfile {path.stem} {path}"
    yield ""
    if settings.follow_dns:
        yield f"resolvers {RESOLVERS}"
        yield "    parse-resolv-conf"
        yield "    hold valid 10s"
        yield ""


def _frontend(settings: EdgeSettings) -> Iterator[str]:
    yield "frontend public"
    yield f"    bind {_address(settings.host, settings.port)}"
    yield "    option forwardfor"
    if settings.access_log:
        yield f"    log-format '{ACCESS_LOG}'"
    else:
        yield "    no log"
    yield "    http-request set-var(txn.path) path,json(utf8s)"
    yield "    http-request disable-l7-retry unless METH_GET || METH_HEAD"
    yield f"    http-request del-header {PRINCIPAL_HEADER}"
    yield from _bounds()
    yield from _connections(settings)
    yield from _identity(settings)
    yield from _rates(settings.limits)
    yield from _routes(settings)
    yield ""


def _bounds() -> Iterator[str]:
    """The target, the head and the declared body; a head past ``tune.bufsize`` never gets
    here (HAProxy answers 400 itself)."""
    yield _refuse(
        414, "uri-too-long", "URI too long", f"the request target is over {MAX_URL_BYTES} bytes",
        f"{{ url_len gt {MAX_URL_BYTES} }}",
    )  # fmt: skip
    yield _refuse(
        431, "header-too-large", "Request header fields too large",
        f"the request head is over {MAX_HEAD_BYTES} bytes",
        f"{{ req.hdrs,length gt {MAX_HEAD_BYTES} }}",
    )  # fmt: skip
    yield _refuse(
        413, "too-large", "Payload too large", f"the body is over {MAX_BODY_BYTES} bytes",
        f"{{ req.hdr_val(content-length) gt {MAX_BODY_BYTES} }}",
    )  # fmt: skip


def _identity(settings: EdgeSettings) -> Iterator[str]:
    """Sets ``has_token`` (a token sent that passed every check; the others are refused here)
    and ``txn.sub``, the principal, which backends get in :data:`PRINCIPAL_HEADER`."""
    yield "    http-request set-var(txn.token) http_auth_bearer"
    yield "    acl has_header req.hdr(authorization) -m found"
    yield "    http-request set-var(txn.token) url_param(token) if !has_header { path /ws }"
    yield "    acl token_sent var(txn.token) -m found"
    tokens = settings.tokens
    if tokens is None or not tokens.keys:
        yield "    acl has_token always_false"
        yield _refuse_token(
            "invalid-token", "this edge has no key to check tokens with", "token_sent"
        )
    else:
        yield from _token_checks(tokens)
        yield from _revocations(settings.revocation_map)
        yield _remember_token()
        yield "    acl has_token var(txn.token) -m found"
        yield f"    http-request set-header {PRINCIPAL_HEADER} %[var(txn.sub)] if has_token"
        yield "    http-request set-var(txn.principal) var(txn.sub),json(utf8s) if has_token"
    if not settings.anonymous:
        detail = "this platform serves no anonymous requests: log in at /auth/v1/login"
        yield _refuse(
            401, "token-required", "Token required", detail,
            f"!token_sent !{{ path_beg /auth/ /static/ }} !{{ path {' '.join(OPEN_PATHS)} }}",
            "hdr WWW-Authenticate Bearer",
        )  # fmt: skip


def _token_checks(tokens: TokenPolicy) -> Iterator[str]:
    """``alg`` pinned, the signature by the key its ``kid`` names, ``exp``, ``iss``, ``aud``.

    The signature is verified once per distinct token: a token that passed every check is
    stored in :data:`VERIFIED_TABLE` under the SHA-256 of its whole text (see
    :func:`_remember_token`), and a token found there is taken as signed; everything else is
    checked on every request."""
    token = "var(txn.token)"
    yield f"    http-request set-var(txn.alg) {token},jwt_header_query('$.alg') if token_sent"
    yield f"    http-request set-var(txn.kid) {token},jwt_header_query('$.kid') if token_sent"
    yield f"    http-request set-var(txn.hash) {token},sha2(256) if token_sent"
    yield f"    acl token_cached var(txn.hash),in_table({VERIFIED_TABLE})"
    yield "    http-request set-var(txn.signed) int(0) if token_sent"
    pinned = f"{{ var(txn.alg) -m str {TOKEN_ALGORITHM} }}"
    current = " ".join(key.kid for key in tokens.keys)
    known = f"{{ var(txn.kid) -m str -- {current} }}"
    cached = f"token_sent token_cached {pinned} {known}"
    yield f"    http-request set-var(txn.signed) int(1) if {cached}"
    for key in tokens.keys:
        verify = f'jwt_verify({TOKEN_ALGORITHM},"{key.pem}")'
        named = f"{{ var(txn.kid) -m str -- {key.kid} }}"
        condition = f"token_sent !token_cached {pinned} {named}"
        yield f"    http-request set-var(txn.signed) {token},{verify} if {condition}"
    yield "    http-request set-var(txn.now) date() if token_sent"
    expiry = "jwt_payload_query('$.exp',int),sub(txn.now)"
    yield f"    http-request set-var(txn.left) {token},{expiry} if token_sent"
    yield f"    http-request set-var(txn.sub) {token},jwt_payload_query('$.sub') if token_sent"
    yield "    acl token_signed var(txn.signed) -m int 1"
    yield "    acl token_live var(txn.left) -m int gt 0"
    yield f"    acl token_ours {token},jwt_payload_query('$.iss') -m str -- {tokens.issuer}"
    yield f"    acl token_for_us {token},jwt_payload_query('$.aud') -m str -- {tokens.audience}"
    yield "    acl token_named var(txn.sub) -m found"
    yield _refuse_token(
        "invalid-token", "the token is not signed by a current key of this platform",
        "token_sent !token_signed",
    )  # fmt: skip
    yield _refuse_token(
        "token-expired", "the token has expired: refresh it", "token_sent !token_live"
    )
    yield _refuse_token(
        "invalid-token", "the token was issued for another service or names no subject",
        "token_sent !token_ours || token_sent !token_for_us || token_sent !token_named",
    )  # fmt: skip


def _remember_token() -> str:
    """After every check has passed (the revocation map last): a token verified just now is
    stored, so that its next requests skip the signature. Only a token that reached this line
    is ever stored, and its entry expires :data:`VERIFIED_FOR_S` seconds later."""
    track = f"track-sc2 var(txn.hash) table {VERIFIED_TABLE}"
    return f"    http-request {track} if token_sent !token_cached"


def _revocations(revoked: Path) -> Iterator[str]:
    """A token whose key, session or account is in the map ``revoked`` with a time still to
    come is refused; the map is changed at run time (``add map``, ``del map``)."""
    for kind, claim in (("session", "$.sid"), ("account", "$.acct")):
        value = f"%[var(txn.token),jwt_payload_query('{claim}')]"
        yield f"    http-request set-var-fmt(txn.{kind}) {kind}:{value} if token_sent"
    for subject in ("txn.sub", "txn.session", "txn.account"):
        left = f"var({subject}),map_str_int({revoked},0),sub(txn.now)"
        yield f"    acl token_revoked {left} -m int gt 0"
    yield _refuse_token(
        "invalid-token", "the token's key, session or account has been revoked",
        "token_sent token_revoked",
    )  # fmt: skip


def _connections(settings: EdgeSettings) -> Iterator[str]:
    """Every connection is counted under its client address in :data:`ADDRESS_TABLE` (counter
    1: HAProxy 2.6 has three, and 0 and 2 are taken by the rate and the token cache); a
    WebSocket upgrade from an address already holding ``max_connections_per_address`` is
    429. The same entry counts the address's logins (:func:`_rates`)."""
    yield f"    tcp-request connection track-sc1 src table {ADDRESS_TABLE}"
    cap = settings.max_connections_per_address
    if cap:
        yield _refuse(
            429, "too-many-connections", "Too many connections",
            f"this address holds {cap} connections already: close one first",
            f"{{ path /ws }} {{ sc_conn_cur(1) gt {cap} }}", "hdr Retry-After 5",
        )  # fmt: skip


def _rates(limits: RateLimits) -> Iterator[str]:
    """Logins per address (general purpose counter 0 of the address's entry, incremented by
    each login); then every request per principal, or per address without one."""
    retry = f"hdr Retry-After {limits.window_s}"
    logins = f"sc_gpc0_rate(1),{limits.per_minute}"
    yield "    acl is_login path /auth/v1/login"
    yield "    http-request sc-inc-gpc0(1) if is_login"
    yield _refuse(
        429, "rate-limited", "Too many requests", "too many login attempts from this address",
        f"is_login {{ {logins} gt {limits.logins_per_address} }}", retry,
    )  # fmt: skip
    yield "    http-request track-sc0 var(txn.sub) table rate_principal if has_token"
    yield "    http-request track-sc0 src table rate_address if !has_token"
    claim = f"var(txn.token),jwt_payload_query('{RATE_CLAIM}',int)"
    yield f"    http-request set-var(txn.limit) {claim} if has_token"
    named = "{ var(txn.limit) -m int gt 0 }"
    yield f"    http-request set-var(txn.limit) int({limits.token_default}) if has_token !{named}"
    yield f"    http-request set-var(txn.limit) int({limits.anonymous_per_address}) if !has_token"
    rate = f"sc_http_req_rate(0),{limits.per_minute}"
    yield f"    http-request set-var(txn.over) {rate},sub(txn.limit)"
    yield _refuse(
        429, "rate-limited", "Too many requests", "over the request rate of your plan",
        "{ var(txn.over) -m int gt 0 }", retry,
    )  # fmt: skip


def _routes(settings: EdgeSettings) -> Iterator[str]:
    missing = [path.strip("/") for path in UNAVAILABLE_PATHS]
    if settings.trading is not None:
        missing.remove(TRADING_PATH.strip("/"))
    if settings.main_api is not None:
        missing.remove(MAIN_API_PATH.strip("/"))
    if settings.auth is None:
        missing.append("auth")
    yield from _trading()
    if isinstance(settings.trading, Upstream):
        yield f"    use_backend {settings.trading.name} if is_{TRADING_PATH.strip('/')}"
    elif settings.trading is not None:
        yield from _partitioned(len(settings.trading))
    for name in missing:
        yield _refuse(
            503, "not-available", "Not available", f"the {name} service is not running here",
            f"{{ path /{name} }} || {{ path_beg /{name}/ }}", "hdr Retry-After 60",
        )  # fmt: skip
    yield f"    use_backend {settings.gateway.name} if {{ path /ws }} || {{ path_beg /ws/ }}"
    if settings.main_api is not None:
        api = f"{{ path {MAIN_API_PATH} }} || {{ path_beg {MAIN_API_PATH}/ }}"
        yield f"    use_backend {settings.main_api.name} if {api}"
    history = "{ path_beg /v1/ } || { path /udf } || { path_beg /udf/ }"
    yield f"    use_backend {settings.history.name} if {history}"
    if settings.auth is not None:
        yield f"    use_backend {settings.auth.name} if {{ path_beg /auth/ }}"
    yield f"    default_backend {settings.chart.name}"


def _trading() -> Iterator[str]:
    """A trading route needs a token that may trade: 401 without one, 403 with one that may
    not (an invalid token never gets here)."""
    name = TRADING_PATH.strip("/")
    yield f"    acl is_trading path {TRADING_PATH}"
    yield f"    acl is_trading path_beg {TRADING_PATH}/"
    yield _refuse(
        401, "token-required", "Token required", "trading needs a token with the trade scope",
        f"is_{name} !has_token", "hdr WWW-Authenticate Bearer",
    )  # fmt: skip
    may_trade = f"{{ var(txn.token),jwt_payload_query('{TRADE_CLAIM}') -m str 1 }}"
    challenge = 'hdr WWW-Authenticate \'Bearer error="insufficient_scope", scope="trade"\''
    yield _refuse(
        403, "insufficient-scope", "Insufficient scope",
        "this token may not trade: its plan or its key lacks the trade scope",
        f"is_{name} !{may_trade}", challenge,
    )  # fmt: skip


def _partitioned(count: int) -> Iterator[str]:
    """Each trading request to the backend of its account's partition, ``acct % count``
    (:func:`partition_backend`); a token that names no account is refused here, since a name
    that matches no backend would fall through to the next rules. A partition with no server
    up answers 503, and only its accounts get it."""
    name = TRADING_PATH.strip("/")
    claim = f"var(txn.token),jwt_payload_query('{ACCOUNT_CLAIM}',int)"
    yield f"    http-request set-var(txn.acct) {claim} if is_{name}"
    yield _refuse(
        401, "token-required", "Token required", "trading needs a token of an account",
        f"is_{name} !{{ var(txn.acct) -m int ge 0 }}", "hdr WWW-Authenticate Bearer",
    )  # fmt: skip
    backend = f"{TRADING_BACKEND}_p%[var(txn.acct),mod({count})]of{count}"  # partition_backend
    yield f"    use_backend {backend} if is_{name}"


def _refuse_token(kind: str, detail: str, condition: str) -> str:
    title = "Token expired" if kind == "token-expired" else "Invalid token"
    challenge = "hdr WWW-Authenticate 'Bearer error=\"invalid_token\"'"
    return _refuse(401, kind, title, detail, condition, challenge)


def _refuse(
    status: int, kind: str, title: str, detail: str, condition: str, headers: str = ""
) -> str:
    """An ``http-request return`` of a problem+json answer when ``condition`` holds."""
    body = problem(status, kind, title, detail).replace("\\", "\\\\").replace('"', '\\"')
    answer = f'content-type application/problem+json string "{body}" hdr Cache-Control no-store'
    extra = f" {headers}" if headers else ""
    return f"    http-request return status {status} {answer}{extra} if {condition}"


def _admin(settings: EdgeSettings, generation: int) -> Iterator[str]:
    yield "frontend admin"
    yield f"    bind {_address(settings.admin_host, settings.admin_port)}"
    yield "    no log"
    yield "    http-request use-service prometheus-exporter if { path /metrics }"
    alive = "content-type text/plain string ok"
    yield f"    http-request return status 200 {alive} if {{ path /healthz }}"
    generation_answer = f"content-type text/plain string {generation}"
    yield f"    http-request return status 200 {generation_answer} if {{ path /generation }}"
    yield "    http-request return status 404"
    yield ""


def _backends(settings: EdgeSettings) -> Iterator[str]:
    store = settings.limits.store
    seen: set[str] = set()
    trading = settings.trading if isinstance(settings.trading, tuple) else (settings.trading,)
    upstreams = (
        settings.chart, settings.history, settings.gateway, settings.auth, *trading,
        settings.main_api,
    )  # fmt: skip
    for upstream in upstreams:
        if upstream is None or upstream.name in seen:
            continue
        seen.add(upstream.name)
        yield f"backend {upstream.name}"
        yield f"    balance {'leastconn' if upstream.websocket else 'roundrobin'}"
        yield f"    option httpchk GET {upstream.health_path}"
        yield "    http-check expect status 200"
        follow = f" resolvers {RESOLVERS} init-addr libc,none" if settings.follow_dns else ""
        yield f"    default-server {_HEALTH}{follow}"
        for index, server in enumerate(upstream.servers, 1):
            tls = "" if upstream.tls is None else f" {upstream.tls.server_options(server)}"
            yield f"    server {upstream.name}{index} {server} check{tls}"
        yield ""
    for table, key in (("rate_principal", "string len 128"), ("rate_address", "ipv6")):
        yield f"backend {table}"
        yield f"    stick-table type {key} size 100k expire 60s {store}"
        yield ""
    yield f"backend {VERIFIED_TABLE}"
    yield f"    stick-table type binary len 32 size {VERIFIED_SIZE} expire {VERIFIED_FOR_S}s"
    yield ""
    yield f"backend {ADDRESS_TABLE}"
    window = settings.limits.window_s
    yield f"    stick-table type ipv6 size 100k expire 60s store conn_cur,gpc0_rate({window}s)"
    yield ""


def _address(host: str, port: int) -> str:
    if not 0 <= port < 65536:
        raise ValueError(f"port {port} is out of range")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _unsafe(text: str) -> bool:
    """Whether ``text`` could end a word or a line of HAProxy's configuration (a space, a
    quote, an escape, a comment)."""
    return any(c.isspace() or c in "\"'\\#" for c in text)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a name HAProxy takes (letters, digits, _ . -)")
