"""A development certificate authority and the certificates it signs, as PEM bytes: no I/O,
no clock (the time is given).

The CA's key and every service's key are EC P-256. A service's certificate serves both ends
of mutual TLS (``serverAuth`` and ``clientAuth``): the service presents it to its clients and
to the services it calls. Its names are subject alternative names (DNS names and addresses);
the common name only labels it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS: Final = 3650
"""The development CA's validity: ten years."""
SERVICE_DAYS: Final = 90
"""A service certificate's validity: short, so that rotation is routine."""
MAX_SERVICE_DAYS: Final = 397
BACKDATE: Final = dt.timedelta(minutes=5)
"""Certificates start a little before they are made: clocks that lag still accept them."""
CA_NAME: Final = "Ganntec mdp development CA"
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DNS = re.compile(r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                  r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")  # fmt: skip


class CertificateError(ValueError):
    """A request for a certificate that cannot be met, or PEM that is not what it should be."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, PEM; the key never appears in a repr."""

    certificate: bytes
    key: bytes

    def __repr__(self) -> str:
        return f"Issued({describe(self.certificate)})"


@dataclass(frozen=True, slots=True)
class Names:
    """A service's name (its certificate's common name and file names) and the names it is
    reached by."""

    service: str
    dns: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.service):
            raise CertificateError(
                f"{self.service!r} is not a service name: lower-case letters, digits and -,"
                " at most 63"
            )
        for name in self.dns:
            if len(name) > 253 or not _DNS.fullmatch(name):
                raise CertificateError(f"--dns {name!r} is not a DNS name")
        for address in self.addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise CertificateError(f"--ip {address!r} is not an IP address") from None

    @classmethod
    def of(cls, service: str, dns: tuple[str, ...] = (), addresses: tuple[str, ...] = ()) -> Names:
        """The names given, the service's own name among the DNS names (first), each once."""
        return cls(service, tuple(dict.fromkeys((service, *dns))), tuple(dict.fromkeys(addresses)))

    def alternative_names(self) -> list[x509.GeneralName]:
        dns: list[x509.GeneralName] = [x509.DNSName(name) for name in self.dns]
        ips = [x509.IPAddress(ipaddress.ip_address(address)) for address in self.addresses]
        return dns + ips


def _key_usage(*, signs: bool) -> x509.KeyUsage:
    """Signatures (the TLS handshake's); a CA's also signs certificates and revocation lists."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=signs, crl_sign=signs,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _serial_and_dates(now: dt.datetime, days: int) -> tuple[int, dt.datetime, dt.datetime]:
    if now.tzinfo is None:
        raise CertificateError("the time must be aware (UTC)")
    return x509.random_serial_number(), now - BACKDATE, now + dt.timedelta(days=days)


def make_authority(now: dt.datetime, days: int = CA_DAYS) -> Issued:
    """A new self-signed CA, able to sign service certificates only (path length 0)."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    serial, start, end = _serial_and_dates(now, days)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def load_authority(authority: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA's certificate and key, checked to belong together and to be a CA."""
    try:
        certificate = x509.load_pem_x509_certificate(authority.certificate)
        key = serialization.load_pem_private_key(authority.key, password=None)
    except ValueError:
        raise CertificateError("the CA's files are not PEM of a certificate and its key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError("the CA's key is not an EC key")
    if certificate.public_key() != key.public_key():
        raise CertificateError("the CA's key does not belong to its certificate")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        raise CertificateError("the CA's certificate is not a CA's") from None
    if not constraints.value.ca:
        raise CertificateError("the CA's certificate is not a CA's")
    return certificate, key


def issue(authority: Issued, names: Names, now: dt.datetime, days: int = SERVICE_DAYS) -> Issued:
    """A certificate for ``names``, for serving and calling (``serverAuth``, ``clientAuth``),
    signed by ``authority``, valid ``days`` days from ``now``."""
    if not 1 <= days <= MAX_SERVICE_DAYS:
        raise CertificateError(f"--days: 1 to {MAX_SERVICE_DAYS}, not {days}")
    ca, ca_key = load_authority(authority)
    if now + dt.timedelta(days=days) > ca.not_valid_after_utc:
        raise CertificateError("the CA expires before this certificate would: make a new CA")
    key = _new_key()
    serial, start, end = _serial_and_dates(now, days)
    public = key.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.service)])
    ca_key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names.alternative_names()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True, slots=True)
class Summary:
    """What a certificate says that an operator checks: who, which names, until when."""

    subject: str
    dns: tuple[str, ...]
    addresses: tuple[str, ...]
    not_after: dt.datetime
    is_authority: bool

    def seconds_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds()


def summarize(pem: bytes) -> Summary:
    """The first certificate in ``pem``, summarized (:class:`CertificateError` if none)."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateError("not a PEM certificate") from None
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = str(common[0].value) if common else certificate.subject.rfc4514_string()
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(sans.get_values_for_type(x509.DNSName))
        addresses = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, addresses = (), ()
    try:
        ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    return Summary(subject, dns, addresses, certificate.not_valid_after_utc, ca)


def describe(pem: bytes) -> str:
    try:
        summary = summarize(pem)
    except CertificateError:
        return "unreadable certificate"
    return f"{summary.subject}, until {summary.not_after:%Y-%m-%d}"
