"""The gateway's settings: one frozen object, built by whoever runs the gateway.

Nothing in :mod:`ws_gateway` reads the environment; ``mdp gateway`` (and ``mdp up``) build
these from their command line and environment and pass them down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from certs.tls import TlsFiles
from core.intervals import DEFAULT_INTERVALS, Interval
from ws_gateway.admission import LOOPBACK_ORIGINS, check_origin

DEFAULT_PORT = 8765
ANONYMOUS_PERMISSIONS = frozenset({"read:candles", "read:ticks"})
"""What a client without a token may do when anonymous access is allowed."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may ask of the gateway, and how far it may fall behind.

    - ``max_subscriptions``: channels one connection may hold at once.
    - ``max_frame_bytes``: the largest request frame answered with something other than an
      error; ``max_transport_frame_bytes`` is the largest frame the WebSocket layer accepts at
      all (beyond it the connection closes with 1009).
    - ``rate`` and ``burst``: the token bucket for requests (per second, and its depth);
      ``max_rate_violations`` refused requests in a row close the connection (4429).
    - ``client_buffer_bytes``: bytes the socket may hold for a client before it counts as
      lagging; from then on its updates wait in its outbox, where candle updates conflate.
    - ``max_pending``: messages (after conflation) an outbox may hold; ``max_lag`` seconds a
      client may stay lagging; past either, it is closed with 4008.
    - ``socket_send_buffer``: the kernel's send buffer per client (``SO_SNDBUF``), None for
      the system's autotuning (which may grow to megabytes per client before the gateway sees
      any lag).
    """

    max_subscriptions: int = 100
    max_frame_bytes: int = 4096
    max_transport_frame_bytes: int = 64 * 1024
    rate: float = 20.0
    burst: int = 50
    max_rate_violations: int = 50
    client_buffer_bytes: int = 256 * 1024
    max_pending: int = 2000
    max_lag: float = 30.0
    socket_send_buffer: int | None = None

    def __post_init__(self) -> None:
        if min(self.max_subscriptions, self.max_frame_bytes, self.burst, self.max_pending) < 1:
            raise ValueError("limits must be positive")
        if self.max_transport_frame_bytes < self.max_frame_bytes:
            raise ValueError("max_transport_frame_bytes must be at least max_frame_bytes")
        if self.rate <= 0 or self.max_lag <= 0 or self.client_buffer_bytes < 1:
            raise ValueError("rate, max_lag and client_buffer_bytes must be positive")
        if self.max_rate_violations < 1:
            raise ValueError("max_rate_violations must be positive")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything the gateway needs besides its bus, store and authenticator.

    - ``host``/``port``: where it listens (port 0: a free port, see ``Gateway.port``).
    - ``intervals``: the candle intervals it serves (those the engine builds).
    - ``instruments``: instruments known before any of their data arrives (besides those seen
      on the bus or found in storage); subscribing to any other is ``unknown_instrument``.
    - ``default_snapshot``/``max_snapshot``: candles in a snapshot when the client does not
      say, and the most it may ask for.
    - ``cache_candles``: candles kept in memory per candle channel (at least ``max_snapshot``).
    - ``replay_buffer``: messages kept per channel for ``resume``.
    - ``gap_notices``: feed-gap notices kept per instrument, for ``resume`` and snapshots.
    - ``max_catch_up``: the most candles a resume beyond the replay buffer sends to bring a
      client up to date; when more changed, it gets a reset snapshot instead.
    - ``max_tick_batch``: the most ticks in one ``tick`` message (bigger batches are split).
    - ``heartbeat``: seconds between heartbeats to every client.
    - ``allow_anonymous``: clients without a token get ``anonymous_permissions``.
    - ``auth_timeout``: seconds a connection opened without a token, where anonymous access
      is off, has to send its ``auth`` frame (its check included); then it is closed (4401).
    - ``ping_interval``/``ping_timeout``/``close_timeout``: WebSocket keepalive and closing.
    - ``open_timeout``: seconds a client has from connecting to a completed handshake (its
      HTTP request included: a client that dribbles its headers is cut off then).
    - ``allowed_origins``: the browser origins that may connect (``scheme://host[:port]``,
      ``scheme://host:*`` for any port, ``*`` for any origin); clients that send no
      ``Origin`` (no browser) always may (:mod:`ws_gateway.admission`).
    - ``max_connections_per_address``: connections one client address may hold at once,
      counted from the TCP connection's start, handshakes included (0: no cap); behind a
      proxy every client has the proxy's address, so there the proxy caps instead.
    - ``private_snapshot``: orders and fills in a private channel's snapshot when the client
      does not say (``max_snapshot`` at most: the lower wins); ``private_idle_accounts``:
      accounts whose private channels are kept for resumes while nobody subscribes to them;
      ``private_wait``: seconds a subscribe waits for the live records up to its snapshot.
    - ``group_prefix``: the gateway's consumer group is ``<prefix>-<random>``, one per instance.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    intervals: tuple[Interval, ...] = DEFAULT_INTERVALS
    instruments: tuple[str, ...] = ()
    default_snapshot: int = 300
    max_snapshot: int = 1000
    cache_candles: int = 1200
    replay_buffer: int = 1000
    gap_notices: int = 64
    max_catch_up: int = 2000
    max_tick_batch: int = 500
    heartbeat: float = 5.0
    allow_anonymous: bool = True
    anonymous_permissions: frozenset[str] = ANONYMOUS_PERMISSIONS
    auth_timeout: float = 5.0
    limits: Limits = field(default_factory=Limits)
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 5.0
    open_timeout: float = 10.0
    allowed_origins: tuple[str, ...] = LOOPBACK_ORIGINS
    max_connections_per_address: int = 64
    group_prefix: str = "gateway"
    backlog: int = 1024
    tls: TlsFiles | None = None
    """WSS, and mutual TLS with a CA (``docs/security.md``); None: plain WebSockets."""
    private_snapshot: int = 100
    private_idle_accounts: int = 1000
    private_wait: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {self.port}")
        if not self.intervals:
            raise ValueError("serve at least one interval")
        if not 0 <= self.default_snapshot <= self.max_snapshot:
            raise ValueError("default_snapshot must be within 0..max_snapshot")
        if self.cache_candles < self.max_snapshot:
            raise ValueError("cache_candles must be at least max_snapshot")
        if self.private_snapshot < 0:
            raise ValueError("private_snapshot must not be negative")
        if self.private_wait <= 0:
            raise ValueError("private_wait must be positive")
        for name in (
            "replay_buffer",
            "gap_notices",
            "max_tick_batch",
            "backlog",
            "private_idle_accounts",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if min(self.heartbeat, self.close_timeout, self.open_timeout, self.auth_timeout) <= 0:
            raise ValueError(
                "heartbeat, close_timeout, open_timeout and auth_timeout must be positive"
            )
        if self.max_connections_per_address < 0:
            raise ValueError("max_connections_per_address must not be negative (0: no cap)")
        for origin in self.allowed_origins:
            check_origin(origin)

    def serves(self, label: str) -> Interval | None:
        """The served interval labelled ``label`` (canonical labels only), or None."""
        for interval in self.intervals:
            if interval.label == label:
                return interval
        return None
