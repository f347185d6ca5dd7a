"""``mdp certs``: a development CA and the services' certificates, for mutual TLS between the
services where no mesh gives it (``docs/security.md``).

``init --dir DIR`` makes the CA (``ca.crt``, and ``ca.key`` mode 600) unless DIR has one.
``issue NAME --dir DIR [--dns NAME ...] [--ip ADDR ...]`` signs a certificate for the service
NAME (``NAME.crt``, ``NAME.key``, and ``NAME.pem``, certificate and key for HAProxy's ``crt``),
for serving and calling; it names NAME and what ``--dns`` and ``--ip`` add. One already there
with the same names is kept; ``--renew`` replaces it (rotation). ``check --dir DIR`` prints
each certificate's days left, and fails when one has fewer than ``--warn-days``. No key is
ever printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, Final

from mdp.common_options import EXIT_BAD_INPUT, EXIT_FAILED

DEFAULT_WARN_DAYS: Final = 30


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "certs",
        help="make a development CA and the services' TLS certificates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="make the development CA")
    issue = actions.add_parser("issue", help="sign a service's certificate")
    issue.add_argument("name", metavar="NAME", help="the service (its file names and a DNS name)")
    issue.add_argument(
        "--dns", action="append", default=[], metavar="NAME",
        help="another DNS name the service is reached by, repeatable",
    )  # fmt: skip
    issue.add_argument(
        "--ip", action="append", default=[], metavar="ADDR",
        help="an IP address the service is reached by, repeatable",
    )  # fmt: skip
    from certs.authority import MAX_SERVICE_DAYS, SERVICE_DAYS

    issue.add_argument(
        "--days", type=int, default=SERVICE_DAYS,
        help=f"validity in days ({SERVICE_DAYS}; at most {MAX_SERVICE_DAYS})",
    )  # fmt: skip
    issue.add_argument(
        "--renew", action="store_true", help="replace the certificate there (and its key)"
    )
    check = actions.add_parser("check", help="print each certificate's days left")
    check.add_argument(
        "--warn-days", type=int, default=DEFAULT_WARN_DAYS,
        help=f"fail when a certificate has fewer days left ({DEFAULT_WARN_DAYS})",
    )  # fmt: skip
    for sub in (init, issue, check):
        sub.add_argument("--dir", type=Path, required=True, metavar="DIR", help="the folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from certs.authority import CertificateError

    try:
        if args.certs_command == "init":
            return _init(args)
        if args.certs_command == "issue":
            return _issue(args)
        return _check(args)
    except CertificateError as exc:
        print(f"mdp certs: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"mdp certs: error: {exc.filename or args.dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _init(args: argparse.Namespace) -> int:
    from certs.authority import describe
    from certs.files import init

    outcome = init(args.dir, _now())
    cert = outcome.files[0]
    said = "made" if outcome.made else "kept (already there)"
    print(f"CA {said}: {cert} ({describe(cert.read_bytes())})")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from certs.authority import Names, describe
    from certs.files import issue_service

    names = Names.of(args.name, tuple(args.dns), tuple(args.ip))
    outcome = issue_service(args.dir, names, _now(), args.days, renew=args.renew)
    cert, key, both = outcome.files
    said = "issued" if outcome.made else "kept (already there, same names)"
    print(f"{names.service} {said}: {cert} ({describe(cert.read_bytes())})")
    print(f"  names: {', '.join(names.dns + names.addresses)}")
    print(f"  key: {key}; certificate and key for HAProxy: {both}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from certs.files import summaries

    now = _now()
    found = summaries(args.dir)
    if not found:
        print(f"mdp certs: error: no certificate in {args.dir}", file=sys.stderr)
        return EXIT_FAILED
    failing = 0
    for path, summary in found:
        days = summary.seconds_left(now) / 86400
        state = "expired" if days < 0 else "renew soon" if days < args.warn_days else "ok"
        failing += state != "ok"
        names = ", ".join(summary.dns + summary.addresses) or "-"
        print(
            f"{path.name}: {days:.0f} days left (until {summary.not_after:%Y-%m-%d %H:%M}Z),"
            f" {state}; names: {names}"
        )
    return EXIT_FAILED if failing else 0
