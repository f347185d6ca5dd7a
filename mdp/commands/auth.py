"""``mdp auth``: the auth service and its administration (``docs/auth.md``).

``mdp auth serve`` serves accounts, sessions, API keys and the JWKS under ``/auth`` on the
database at ``--database-url`` (default: ``DATABASE_URL``; migrated first with ``mdp db
migrate``). With ``--bus kafka`` it publishes revocations and plan changes on
``auth.events``; without, they wait in the database's outbox.

The administration commands work on the same database and need no running service:
``create-account`` (the password is read from standard input, never from the command line),
``issue-key`` (the key is printed once), ``revoke`` (a key, or a whole account),
``set-plan`` and ``rotate-keys``. A running service publishes what they record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import psycopg

from mdp.admin_options import add_admin_options
from mdp.cluster_options import say
from mdp.common_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_database_option,
    add_wait_option,
    check_wait,
    database_failure,
    database_refused,
)
from mdp.tls_options import add_tls_options, tls_of

if TYPE_CHECKING:
    from auth.service import AuthService
    from auth.settings import AuthSettings
    from certs.tls import TlsFiles

DEFAULT_PORT: Final = 8010


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "auth",
        help="serve or administer accounts, API keys and tokens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="auth_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve the auth service")
    serve.set_defaults(log_level="info")  # uvicorn's start and access lines are told
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT})"
    )
    serve.add_argument("--no-signup", action="store_true", help="accounts only by create-account")
    serve.add_argument(
        "--trusted-proxy", action="append", default=[], metavar="ADDRESS",
        help="an address or network (the edge's) whose X-Forwarded-For names the client, for"
        " the login throttle; repeatable (default: none, the peer is the client)",
    )  # fmt: skip
    serve.add_argument(
        "--anonymous", metavar="PLAN", default="none",
        help="the plan of clients without a token, or none (default none: a cluster serves no"
        " anonymous client unless told; `mdp up` takes the plan file's)",
    )  # fmt: skip
    serve.add_argument(
        "--bus", choices=["none", "kafka"], default="none",
        help="where auth.events go (default none: they wait in the database's outbox)",
    )  # fmt: skip
    add_admin_options(serve)
    add_tls_options(serve)
    add_wait_option(serve)
    create = actions.add_parser("create-account", help="make an account (password on stdin)")
    create.add_argument("email")
    create.add_argument("--plan", help="its plan (default: the plan file's signup plan)")
    issue = actions.add_parser("issue-key", help="issue an API key of an account")
    issue.add_argument("email")
    issue.add_argument("--name", required=True, help="what the key is for")
    issue.add_argument("--scope", action="append", choices=["read", "trade"],
                       help="repeatable (default: read)")  # fmt: skip
    revoke = actions.add_parser("revoke", help="revoke an API key, or disable an account")
    what = revoke.add_mutually_exclusive_group(required=True)
    what.add_argument("--key", metavar="KEY_ID")
    what.add_argument("--account", metavar="EMAIL")
    plan = actions.add_parser("set-plan", help="move an account to another plan")
    plan.add_argument("email")
    plan.add_argument("plan")
    rotate = actions.add_parser("rotate-keys", help="a new signing key; the old one is retired")
    rotate.add_argument(
        "--lead", type=int, default=0, metavar="SECONDS",
        help="publish the new key this long before it signs (default 0), so that verifiers"
        " that copy the keys (the edge) have it before its first token",
    )  # fmt: skip
    for action in (serve, create, issue, revoke, plan, rotate):
        add_database_option(action, "the command refuses to start")
        action.add_argument("--plans", type=Path, metavar="FILE",
                            help="the plan file (default: the one shipped)")  # fmt: skip
        action.add_argument(
            "--access-ttl", type=int, default=300, metavar="SECONDS",
            help="access tokens' lifetime (default 300)",
        )  # fmt: skip
        action.add_argument("--issuer", default=None, help="the tokens' iss (ganntec-auth)")
        action.add_argument("--audience", default=None, help="the tokens' aud (ganntec)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from auth.plans import PlanError

    if not args.database_url:
        return _fail("no database: give --database-url or set DATABASE_URL", EXIT_BAD_INPUT)
    try:
        settings = _settings(args)
        tls = tls_of(args) if args.auth_command == "serve" else None
        if "wait" in args:
            check_wait(args)
    except (ValueError, PlanError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    if "wait" in args:  # a service waits for its database; an administrator's command not
        refused = database_refused(args, say("mdp auth"))
        if refused:
            return refused
    try:
        _check_schema(args.database_url.reveal())
    except psycopg.Error as exc:
        return _fail(database_failure(args.database_url, exc))
    except RuntimeError as exc:
        return _fail(str(exc))
    if args.auth_command == "serve":
        return _serve(args, settings, tls)
    return asyncio.run(_administer(args, settings))


def _settings(args: argparse.Namespace) -> AuthSettings:
    from auth.plans import load_plans
    from auth.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER, AuthSettings

    plans = load_plans(args.plans)
    anonymous = getattr(args, "anonymous", None)
    if anonymous is not None:
        plans = plans.with_anonymous(None if anonymous == "none" else anonymous)
    return AuthSettings(
        issuer=args.issuer or DEFAULT_ISSUER,
        audience=args.audience or DEFAULT_AUDIENCE,
        access_ttl_s=args.access_ttl,
        signup=not getattr(args, "no_signup", False),
        trusted_proxies=tuple(getattr(args, "trusted_proxy", ())),
        plans=plans,
    )


def _check_schema(url: str) -> None:
    from storage.migrate import latest_version, schema_state

    with psycopg.connect(url, connect_timeout=10) as conn:
        version = schema_state(conn).version
    if version < latest_version():
        raise RuntimeError(
            f"the database is at schema version {version} of {latest_version()}:"
            " run `mdp db migrate` first"
        )


def _serve(args: argparse.Namespace, settings: AuthSettings, tls: TlsFiles | None) -> int:
    from auth.app import create_app
    from machine import settle_heap
    from mdp.cluster_options import kafka_bus
    from web.server import run_until_stopped

    bus = None if args.bus == "none" else (lambda: kafka_bus(args))
    app = create_app(args.database_url.reveal(), settings, bus)
    settle_heap()  # the modules out of every later collection: short pauses
    started = run_until_stopped(app, args.host, args.port, log_level=args.log_level, tls=tls)
    return 0 if started else EXIT_FAILED


async def _administer(args: argparse.Namespace, settings: AuthSettings) -> int:
    from auth.problems import AuthError
    from storage.unavailable import DatabaseUnavailableError

    actions: dict[str, Callable[[AuthService, argparse.Namespace], Awaitable[str]]] = {
        "create-account": _create_account,
        "issue-key": _issue_key,
        "revoke": _revoke,
        "set-plan": _set_plan,
        "rotate-keys": _rotate_keys,
    }
    try:
        async with _service(args.database_url.reveal(), settings) as service:
            print(await actions[args.auth_command](service, args))
    except AuthError as exc:
        return _fail(exc.detail)
    except DatabaseUnavailableError as exc:
        return _fail(database_failure(args.database_url, exc))
    return 0


@contextlib.asynccontextmanager
async def _service(url: str, settings: AuthSettings) -> AsyncIterator[AuthService]:
    from auth.service import AuthService
    from auth.store import AuthStore

    async with AuthStore.open(url, timeout=10.0) as store:
        yield AuthService(store, settings)


async def _create_account(service: AuthService, args: argparse.Namespace) -> str:
    from core.secrets import Secret

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    plan = args.plan or service.settings.plans.signup
    account = await service.create_account(args.email, Secret(password), plan)
    return f"account {account.account_id}: {account.email}, plan {account.plan}"


async def _issue_key(service: AuthService, args: argparse.Namespace) -> str:
    from auth.problems import AuthError

    account = await service.store.account_by_email(args.email.strip().lower())
    if account is None:
        raise AuthError("not-found", f"there is no account {args.email}")
    key, issued = await service.create_key(account, args.name, args.scope or ["read"])
    print(f"key {key.key_id} ({' '.join(key.scopes)}); shown once, keep it now:", file=sys.stderr)
    return str(issued.presented().reveal())


async def _revoke(service: AuthService, args: argparse.Namespace) -> str:
    if args.key is not None:
        key = await service.revoke_key(args.key, None)
        return f"key {key.key_id} revoked"
    account = await service.disable_account(args.account)
    return f"account {account.account_id} ({account.email}) disabled, its sessions ended"


async def _set_plan(service: AuthService, args: argparse.Namespace) -> str:
    account = await service.set_plan(args.email, args.plan)
    return f"account {account.account_id} ({account.email}): plan {account.plan}"


async def _rotate_keys(service: AuthService, args: argparse.Namespace) -> str:
    from auth.problems import AuthError

    if args.lead < 0:
        raise AuthError("invalid-request", "--lead must not be negative")
    key = await service.rotate_keys(args.lead)
    when = "now" if args.lead == 0 else f"in {args.lead}s"
    return (
        f"signing key {key.kid} published, signing {when}; the previous one stays published"
        " until its tokens expire"
    )


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"mdp auth: error: {message}", file=sys.stderr)
    return code
