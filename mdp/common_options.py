"""Options several ``mdp`` commands share, each defined once: the log's format and level
(every command's), the candle intervals, the database URL (and ``--wait``, how long a service
waits for that database at start) and the gateway's allowed origins
(read from the environment here, at the edge, and nowhere else, a URL also from a file
``$DATABASE_URL_FILE`` names; the URL held as a
:class:`~core.secrets.DatabaseUrl`, which never prints its password)."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from core.auth_events import PlanClaims
from core.intervals import DEFAULT_INTERVALS, Interval, parse_intervals
from core.secrets import DatabaseUrl
from storage.backlog import DEFAULT_MAX_BYTES
from telemetry import tracing
from telemetry.logs import FORMATS, LEVELS, LogSettings, configure
from telemetry.tracing import DEFAULT_SAMPLE, ENDPOINT_VARIABLE

DEFAULT_LEVEL = "warning"
"""What a command logs unless it sets its own default or is told: warnings and errors, as
before there was a log setup (the lines for people say the rest)."""

if TYPE_CHECKING:
    from access.settings import TokenSettings

ORIGINS_VARIABLE = "MDP_ALLOWED_ORIGINS"
EXIT_FAILED: Final = 1
"""A command's exit status when what it was to do failed (a database or broker it cannot
reach, a server that did not start); every ``mdp`` command's, defined here once."""
EXIT_BAD_INPUT: Final = 2
"""A command's exit status when it was given bad options or input (argparse's own, too)."""

DEFAULT_INTERVAL_LABELS = " ".join(i.label for i in DEFAULT_INTERVALS)


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """``--log-format`` and ``--log-level``, ``--trace-sample`` and ``--otlp-endpoint`` on
    ``parser`` and, when it has sub-commands, on each of theirs (where the options are given:
    ``mdp trading serve --log-level debug``)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in actions:
        for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
            add_log_options(sub)
    if actions:
        return
    logs = parser.add_argument_group("logs")
    logs.add_argument(
        "--log-format",
        choices=FORMATS,
        help="log records as JSON lines or text, on stderr (default: text on a terminal, else"
        " json); the lines printed for people (chart:, status) are unchanged",
    )
    level = parser.get_default("log_level") or DEFAULT_LEVEL  # a command may set its own
    logs.add_argument(
        "--log-level",
        choices=LEVELS,
        default=level,
        help=f"the least level logged (default {level})",
    )
    traces = parser.add_argument_group("traces")
    traces.add_argument(
        "--trace-sample",
        type=_sample_ratio,
        default=DEFAULT_SAMPLE,
        metavar="RATIO",
        help=f"the share of tick batches and requests traced, 0 to 1 (default {DEFAULT_SAMPLE});"
        " work that continues a sampled trace (a traceparent header) is traced too",
    )
    traces.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        default=os.environ.get(ENDPOINT_VARIABLE),
        help=f"send the spans over OTLP/HTTP to this collector (http://HOST:4318; default:"
        f" ${ENDPOINT_VARIABLE}, else spans are sampled but sent nowhere)",
    )


def _sample_ratio(text: str) -> float:
    """A ratio from 0 to 1."""
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise argparse.ArgumentTypeError(f"a ratio from 0 to 1, not {text!r}")
    return ratio


def configure_logging(args: argparse.Namespace, service: str | None = None) -> None:
    """The one log setup (:func:`telemetry.logs.configure`) and the one tracing setup
    (:func:`telemetry.tracing.configure`) as ``args`` ask, for ``service`` (default: the
    command run)."""
    name = service or args.command
    configure(LogSettings(name, args.log_format, args.log_level))
    tracing.configure(tracing.TraceSettings(name, args.trace_sample, args.otlp_endpoint or None))


def add_interval_option(parser: argparse._ActionsContainer, what: str, after: str = "") -> None:
    """``--interval``, repeatable; ``what`` starts its help, ``after`` ends it."""
    parser.add_argument(
        "--interval",
        action="append",
        metavar="INTERVAL",
        help=f"{what}, repeatable (default: {DEFAULT_INTERVAL_LABELS}){after}",
    )


def intervals_of(args: argparse.Namespace) -> tuple[Interval, ...]:
    """The ``--interval`` values parsed (``ValueError`` names a bad one), or the defaults."""
    return tuple(parse_intervals(args.interval)) if args.interval else tuple(DEFAULT_INTERVALS)


def database_failure(url: DatabaseUrl | None, exc: BaseException) -> str:
    """One line for a database that cannot be used: which one (password masked), and why
    (the driver's first line, with the password masked too: libpq quotes what it cannot
    parse, which may be the password)."""
    where = "the private database" if url is None else f"the database at {url}"
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot use {where}: {first if url is None else url.scrub(first)}"


MAX_SECRET_FILE_BYTES = 4096


class _SecretFile(str):
    """The path a ``<NAME>_FILE`` variable names: read only when the option's default is
    taken (argparse applies the option's type to a default that is a string)."""


def secret_variable(name: str) -> str | None:
    """A secret from the environment: ``$<name>``, or else the content of the file that
    ``$<name>_FILE`` names (as Docker and Kubernetes mount secrets), read when used."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    return _SecretFile(path) if path else None


def _read_secret_file(path: str) -> str:
    """The secret in ``path`` without its trailing newline; its content never appears in an
    error."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot read the secret file {path}: {exc.strerror or 'unreadable'}"
        ) from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise argparse.ArgumentTypeError(
            f"the secret file {path} is over {MAX_SECRET_FILE_BYTES} bytes"
        )
    try:
        return data.decode().rstrip("\r\n")
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(f"the secret file {path} is not UTF-8 text") from None


def _database_url(text: str) -> DatabaseUrl | None:
    """The address, checked by the driver's own parser; an empty ``--database-url ''`` (or
    ``DATABASE_URL=``) means none, as if not given. ``ArgumentTypeError``, unlike other
    errors, keeps argparse from quoting the value, password and all."""
    if isinstance(text, _SecretFile):
        text = _read_secret_file(text)
    if not text.strip():
        return None
    try:
        conninfo_to_dict(text)
    except psycopg.Error:
        raise argparse.ArgumentTypeError(
            "the database URL is malformed (a password with characters such as % @ / : or"
            " spaces must be percent-encoded in a URL)"
        ) from None
    return DatabaseUrl(text)


def add_database_option(parser: argparse._ActionsContainer, otherwise: str) -> None:
    """``--database-url``, by default ``$DATABASE_URL``; ``otherwise`` says what runs without."""
    parser.add_argument(
        "--database-url",
        metavar="URL",
        type=_database_url,
        default=secret_variable("DATABASE_URL"),
        help=f"PostgreSQL (default: $DATABASE_URL or the file $DATABASE_URL_FILE names; with"
        f" neither: {otherwise})",
    )


DEFAULT_WAIT_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 10
"""How long one attempt to reach the database may take (a host that does not answer at all)."""


def add_wait_option(parser: argparse._ActionsContainer) -> None:
    """``--wait SECONDS`` (checked by :func:`check_wait`): how long a service waits at start
    for a database that is not there yet. A service started beside its database (a compose
    file, a machine booting) often comes up first. Instead of one attempt and exit 1, the
    commands that need the database at start (``mdp api``, ``mdp main-api``, ``mdp trading
    serve``, ``mdp auth serve``, ``mdp alerts evaluate``) try again with backoff for up to
    ``--wait`` seconds (default 60; 0: one attempt): :func:`wait_for_database`."""
    parser.add_argument(
        "--wait", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
        help="how long to keep trying the database at start (default 60; 0: fail at once)",
    )  # fmt: skip


def check_wait(args: argparse.Namespace) -> None:
    """``ValueError`` for a ``--wait`` below 0."""
    if not args.wait >= 0:
        raise ValueError("--wait must be 0 or more")


def wait_for_database(args: argparse.Namespace, tell: Callable[[str], object]) -> None:
    """Return once the database of ``--database-url`` takes a connection, trying for up to
    ``--wait`` seconds; after that, the last ``psycopg.OperationalError`` is raised. The
    wait is told on ``tell`` in one line when it begins and one every 30 s
    (:func:`~streams.retry.until_available`), the password masked. Ctrl-C ends it
    (``KeyboardInterrupt``)."""
    from streams.retry import until_available

    url = args.database_url.reveal()

    async def connect() -> None:
        conn = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
        await conn.close()

    asyncio.run(
        until_available(
            connect,
            "the database",
            within_s=args.wait,
            retry_on=(psycopg.OperationalError,),
            describe=lambda exc: database_failure(args.database_url, exc),
            then=f"trying again for up to {args.wait:g} s",
            say=tell,
        )
    )


def database_refused(args: argparse.Namespace, tell: Callable[[str], None]) -> int:
    """:func:`wait_for_database`: 0 once the database is reached; else ``EXIT_FAILED``,
    ``tell`` having said the last error in one line (a database that cannot be reached at
    start is one line, not a server's traceback)."""
    try:
        wait_for_database(args, tell)
    except psycopg.Error as exc:
        tell(f"error: {database_failure(args.database_url, exc)}")
        return EXIT_FAILED
    return 0


def schema_name(text: str) -> str:
    """A schema name given on the command line: an identifier of at most 50 characters."""
    if not text.isidentifier() or len(text) > 50:
        raise argparse.ArgumentTypeError("a schema name is an identifier of at most 50 characters")
    return text


def add_reads_options(
    parser: argparse._ActionsContainer,
    service: str,
    serves: str,
    tables: str,
    default_schema: str,
) -> None:
    """``--<service>-database-url`` (by default ``$<SERVICE>_DATABASE_URL``) and
    ``--<service>-schema``: where the gateway reads the snapshots of the private channels
    ``serves`` names, in ``tables`` (without a URL they are not served)."""
    variable = f"{service.upper().replace('-', '_')}_DATABASE_URL"
    parser.add_argument(
        f"--{service}-database-url",
        metavar="URL",
        type=_database_url,
        default=secret_variable(variable),
        help=f"the PostgreSQL of {tables}, for the private {serves} (default: ${variable} or"
        f" the file ${variable}_FILE names; with neither: answered unavailable)",
    )
    parser.add_argument(
        f"--{service}-schema",
        type=schema_name,
        default=default_schema,
        help=f"the schema of {tables} (default {default_schema})",
    )


def add_origin_option(parser: argparse._ActionsContainer, default: str) -> None:
    """``--allowed-origin``, repeatable, by default ``$MDP_ALLOWED_ORIGINS`` (separated by
    spaces or commas); ``default`` says what holds without either."""
    parser.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="a browser origin the WebSocket gateway accepts: scheme://host[:port],"
        f" scheme://host:* (any port) or * (any), repeatable (default: ${ORIGINS_VARIABLE},"
        f" else {default}); clients without an Origin header are always accepted",
    )


def origins_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The ``--allowed-origin`` values, else ``$MDP_ALLOWED_ORIGINS``'s, checked
    (``ValueError`` names a bad one); None when neither is given."""
    from ws_gateway.admission import check_origin

    given = args.allowed_origin
    if given is None:
        variable = os.environ.get(ORIGINS_VARIABLE, "")
        given = variable.replace(",", " ").split() or None
    return None if given is None else tuple(check_origin(origin) for origin in given)


def add_write_buffer_option(parser: argparse._ActionsContainer) -> None:
    """``--write-buffer MIB``: what the storage writer holds while the database is away."""
    parser.add_argument(
        "--write-buffer",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**20,
        metavar="MIB",
        help="records read but not yet stored that the writer holds while the database is"
        f" unavailable, in MiB (default {DEFAULT_MAX_BYTES // 2**20}); beyond it the feed"
        " waits (backpressure), nothing is dropped",
    )


def write_buffer_of(args: argparse.Namespace) -> int:
    """``--write-buffer`` in bytes (``ValueError`` unless a finite size of a byte or more)."""
    size = args.write_buffer * 2**20
    if not (math.isfinite(size) and size >= 1):
        raise ValueError("--write-buffer must be a size in MiB, more than 0")
    return int(size)


def add_token_options(
    parser: argparse._ActionsContainer, without: str, whose: str, *, anonymous: bool = True
) -> None:
    """``--jwks-url``, ``--anonymous`` and ``--plans``: how a service checks access tokens
    (``without``: what it does with no key set; ``whose``: what carries a token;
    ``anonymous``: whether a plan may serve a request without one)."""
    parser.add_argument(
        "--jwks-url",
        metavar="URL",
        help="the auth service's key set (http://HOST:8010/auth/.well-known/jwks.json): check"
        f" every {whose}'s token (default: {without})",
    )
    if not anonymous:
        return
    parser.add_argument(
        "--anonymous",
        metavar="PLAN",
        help=f"with --jwks-url, the plan of a {whose} without a token (default: none, 401)",
    )
    parser.add_argument(
        "--plans",
        type=Path,
        metavar="FILE",
        help="the plan file --anonymous names a plan of (default: the auth service's own)",
    )


def add_issuer_options(parser: argparse._ActionsContainer) -> None:
    """``--issuer`` and ``--audience``: the ``iss`` and ``aud`` a token must name."""
    from access.verify import DEFAULT_AUDIENCE, DEFAULT_ISSUER

    parser.add_argument(
        "--issuer", default=DEFAULT_ISSUER, help=f"the tokens' iss (default {DEFAULT_ISSUER})"
    )
    parser.add_argument(
        "--audience", default=DEFAULT_AUDIENCE, help=f"the tokens' aud (default {DEFAULT_AUDIENCE})"
    )


def token_settings(args: argparse.Namespace, **more: Any) -> TokenSettings:
    """How tokens are checked, from ``--jwks-url``, ``--issuer`` and ``--audience``, the key
    set fetched with the service's TLS when it has ``--tls-cert`` (``more``: the other
    :class:`~access.settings.TokenSettings` fields)."""
    from access.settings import TokenSettings
    from mdp.tls_options import client_context_of

    if "tls_cert" in args:
        more.setdefault("tls", client_context_of(args))

    return TokenSettings(jwks_url=args.jwks_url, issuer=args.issuer, audience=args.audience, **more)


def start_refused(args: argparse.Namespace, tell: Callable[[str], None], service: str) -> int:
    """The start checks of a service that serves accounts only (``mdp main-api``, ``mdp
    trading serve``): a database given and reachable (waited for up to ``--wait`` seconds), a
    key set given. 0 when they pass; else the exit code, ``tell`` having said why in one line
    (``service`` names the service)."""
    if args.database_url and not args.jwks_url:
        tell(f"error: {service} checks every token: give --jwks-url")
        return EXIT_BAD_INPUT
    return database_start_refused(args, tell)


def database_start_refused(args: argparse.Namespace, tell: Callable[[str], None]) -> int:
    """The start checks of a process that needs its database alone (``mdp trading follow``):
    given, a valid ``--wait``, and reachable (:func:`database_refused`). 0 when they pass; else
    the exit code, ``tell`` having said why in one line."""
    if not args.database_url:
        tell("error: no database: give --database-url or set DATABASE_URL")
        return EXIT_BAD_INPUT
    try:
        check_wait(args)
    except ValueError as exc:
        tell(f"error: {exc}")
        return EXIT_BAD_INPUT
    return database_refused(args, tell)


def anonymous_plan(args: argparse.Namespace) -> PlanClaims | None:
    """The claims of the ``--anonymous`` plan (ValueError when it is not a plan)."""
    from auth.claims import Entitlements
    from auth.plans import load_plans

    if args.anonymous is None:
        return None
    if args.jwks_url is None:
        raise ValueError("--anonymous needs --jwks-url (without it nothing is checked)")
    book = load_plans(args.plans)
    if args.anonymous not in book.plans:
        raise ValueError(f"--anonymous: there is no plan {args.anonymous!r}")
    return Entitlements.of(book.get(args.anonymous)).plan_claims()
