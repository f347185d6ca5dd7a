"""The certificates' folder (``mdp certs``): the I/O shell around :mod:`certs.authority`.

In the folder: ``ca.crt`` and ``ca.key`` (the CA), and per service ``NAME.crt``, ``NAME.key``
and ``NAME.pem`` (certificate then key, the one file HAProxy's ``crt`` takes). Keys are
written mode 600 and never read back into anything printed; certificates are 644. Files are
written whole (a temporary file renamed), so a reader never sees half of one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certs.authority import (
    SERVICE_DAYS,
    CertificateError,
    Issued,
    Names,
    Summary,
    issue,
    load_authority,
    make_authority,
    summarize,
)

CA_CERT: Final = "ca.crt"
CA_KEY: Final = "ca.key"
KEY_MODE: Final = 0o600
CERT_MODE: Final = 0o644


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: ``made`` (False: what was there is kept) and the files."""

    made: bool
    files: tuple[Path, ...]


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(temporary, mode)  # whatever the umask
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise CertificateError(f"{folder} is not a folder")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def init(folder: Path, now: dt.datetime) -> Outcome:
    """The CA in ``folder``: made if there is none, kept if there is one (checked)."""
    _folder(folder)
    cert, key = folder / CA_CERT, folder / CA_KEY
    if cert.exists() or key.exists():
        if not (cert.exists() and key.exists()):
            there = cert if cert.exists() else key
            raise CertificateError(f"{there} is there without its pair: remove it or restore both")
        load_authority(authority(folder))
        return Outcome(False, (cert, key))
    made = make_authority(now)
    _write(key, made.key, KEY_MODE)
    _write(cert, made.certificate, CERT_MODE)
    return Outcome(True, (cert, key))


def authority(folder: Path) -> Issued:
    """The CA of ``folder`` (:class:`CertificateError` when it has none)."""
    cert, key = folder / CA_CERT, folder / CA_KEY
    if not (cert.is_file() and key.is_file()):
        raise CertificateError(f"no CA in {folder}: run mdp certs init --dir {folder}")
    return Issued(cert.read_bytes(), key.read_bytes())


def service_files(folder: Path, service: str) -> tuple[Path, Path, Path]:
    """``NAME.crt``, ``NAME.key`` and ``NAME.pem`` (certificate and key, for HAProxy)."""
    return folder / f"{service}.crt", folder / f"{service}.key", folder / f"{service}.pem"


def issue_service(
    folder: Path, names: Names, now: dt.datetime, days: int = SERVICE_DAYS, *, renew: bool = False
) -> Outcome:
    """A certificate for ``names.service``, signed by the folder's CA. One already there with
    the same names and the same CA is kept unless ``renew``; one with other names is refused
    unless ``renew`` (a rename is a decision, not a side effect)."""
    ca = authority(folder)
    cert, key, both = paths = service_files(folder, names.service)
    if cert.exists() and not renew:
        have = summarize(cert.read_bytes())
        if (set(have.dns), set(have.addresses)) != (set(names.dns), set(names.addresses)):
            raise CertificateError(
                f"{cert} names {', '.join(have.dns + have.addresses)}; give --renew to replace"
                " it with one that names what you asked"
            )
        if _signed_by(cert.read_bytes(), ca) and key.exists() and both.exists():
            return Outcome(False, paths)
    made = issue(ca, names, now, days)
    _write(key, made.key, KEY_MODE)
    _write(both, made.certificate + made.key, KEY_MODE)
    _write(cert, made.certificate, CERT_MODE)
    return Outcome(True, paths)


def _signed_by(pem: bytes, ca: Issued) -> bool:
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.certificate))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def summaries(folder: Path) -> list[tuple[Path, Summary]]:
    """Every certificate in ``folder`` (``*.crt``), by name."""
    if not folder.is_dir():
        raise CertificateError(f"{folder} is not a folder")
    found = []
    for path in sorted(folder.glob("*.crt")):
        try:
            found.append((path, summarize(path.read_bytes())))
        except CertificateError:
            raise CertificateError(f"{path} is not a PEM certificate") from None
    return found
