"""TLS between the services where no mesh gives it (``docs/security.md``): ``--tls-cert``,
``--tls-key`` and ``--tls-ca``, defined once for every service that serves.

With a certificate and key the service serves HTTPS (or WSS); with ``--tls-ca`` too, a client
must present a certificate that CA signed, or the handshake is refused (mutual TLS). The same
files are what the service calls others with: its certificate presented, theirs checked
against the CA (the auth service's key set, ``--jwks-url https://...``). Without them the
service is plain, as inside ``mdp up`` (loopback only).
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from certs.authority import CertificateError, summarize
from certs.tls import TlsFiles
from telemetry.metrics import TLS_CERTIFICATE_EXPIRY


def add_tls_options(parser: argparse._ActionsContainer) -> None:
    group = parser.add_argument_group("TLS (mdp certs)")
    group.add_argument(
        "--tls-cert", type=Path, metavar="FILE",
        help="serve TLS with this certificate (PEM; with --tls-key), and present it to the"
        " services this one calls (default: plain)",
    )  # fmt: skip
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    group.add_argument(
        "--tls-ca", type=Path, metavar="FILE",
        help="the CA (PEM) every client's certificate must come from (refused without one),"
        " and that the services this one calls must show a certificate of",
    )  # fmt: skip


def tls_of(args: argparse.Namespace) -> TlsFiles | None:
    """The TLS files the options name, checked by loading them (``ValueError`` says which
    option is wrong and why); None when none is given."""
    cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
    if cert is None and key is None and ca is None:
        return None
    if cert is None or key is None:
        raise ValueError("--tls-cert and --tls-key go together (and --tls-ca needs them)")
    for option, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)):
        if path is not None and not path.is_file():
            raise ValueError(f"{option} {path}: no such file")
    files = TlsFiles(cert, key, ca)
    try:
        files.server_context()
    except ssl.SSLError as exc:  # a key of another certificate, a file that is not PEM
        with_ca = "" if ca is None else f" and --tls-ca {ca}"
        raise ValueError(
            f"cannot use --tls-cert {cert} with --tls-key {key}{with_ca}: {exc.reason}"
        ) from None
    record_expiry(cert, ca)
    return files


def record_expiry(*files: Path | None) -> None:
    """Each certificate's expiry in :data:`~telemetry.metrics.TLS_CERTIFICATE_EXPIRY` (read
    once: a rotated certificate is served from the next start, ``docs/security.md``)."""
    for path in files:
        if path is None:
            continue
        try:
            expiry = summarize(path.read_bytes()).not_after.timestamp()
        except CertificateError:
            raise ValueError(f"{path}: not a PEM certificate") from None
        TLS_CERTIFICATE_EXPIRY.labels(file=path.name).set(expiry)


def client_context_of(args: argparse.Namespace) -> ssl.SSLContext | None:
    """What the service calls other services with (None: the system's defaults)."""
    files = tls_of(args)
    return None if files is None else files.client_context()
