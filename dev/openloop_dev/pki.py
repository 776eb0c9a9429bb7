"""A local development PKI: a CA, the Envoy edge certificate, a client certificate per participant.

Banks reach OpenLoop over mutual TLS and the gateway learns *which* participant is calling from
the SPIFFE URI SAN that Envoy forwards in ``x-forwarded-client-cert``. Developers and end-to-end
tests need exactly that shape of identity locally, without hand-rolled openssl commands.

Files are reused while they are still valid (parseable, matching key, issued by the current CA,
expected names, not close to expiry), so a running Envoy or client keeps working across reruns
and adding a participant does not invalidate the others. Nothing here is fit for production.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PARTICIPANT_URI_PREFIX = "spiffe://openloop.dev/participants/"
"""A client certificate's URI SAN is this prefix followed by the participant id."""

SERVER_DNS_NAMES = ("localhost", "envoy", "edge.openloop.local")
SERVER_IP_ADDRESSES = ("127.0.0.1",)

# SPIFFE path segments allow letters, digits, '.', '-' and '_'; starting with an alphanumeric
# also rules out '.'/'..' and keeps the id safe to use as a file name.
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ORGANIZATION = "OpenLoop Development"
_CA_LIFETIME = dt.timedelta(days=3650)
_LEAF_LIFETIME = dt.timedelta(days=365)
_RENEW_BEFORE = dt.timedelta(days=30)
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ClientCert:
    """A participant's client certificate and private key, as its TLS client presents them."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class DevPki:
    """Where the PKI files are; the names inside the directory are what Envoy's template expects."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    clients: Mapping[str, ClientCert]


@dataclass(frozen=True)
class _Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class _LeafSpec:
    common_name: str
    names: frozenset[x509.GeneralName]
    usage: x509.ObjectIdentifier


def participant_uri(participant_id: str) -> str:
    """The identity the gateway trusts for a participant; rejects ids SPIFFE would not allow."""
    if not _PARTICIPANT_ID.fullmatch(participant_id):
        raise ValueError(f"invalid participant id {participant_id!r}: use [A-Za-z0-9._-], max 64")
    return PARTICIPANT_URI_PREFIX + participant_id


def ensure_dev_pki(directory: Path, participants: Sequence[str]) -> DevPki:
    """Create or reuse the dev PKI in ``directory``; safe to call concurrently and repeatedly."""
    if isinstance(participants, str):
        raise TypeError("participants must be a sequence of ids, not a single string")
    ids = list(dict.fromkeys(participants))
    for participant_id in ids:
        participant_uri(participant_id)
    directory.mkdir(parents=True, exist_ok=True)
    pki = DevPki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        clients=MappingProxyType(
            {
                pid: ClientCert(
                    directory / "clients" / f"{pid}.pem", directory / "clients" / f"{pid}-key.pem"
                )
                for pid in ids
            }
        ),
    )
    with _exclusive(directory / ".lock"):
        ca = _ensure_ca(pki.ca_cert, directory / "ca-key.pem")
        _ensure_leaf(ca, pki.server_cert, pki.server_key, _server_spec())
        for pid, client in pki.clients.items():
            _ensure_leaf(ca, client.cert, client.key, _client_spec(pid))
    return pki


def _server_spec() -> _LeafSpec:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IP_ADDRESSES]
    return _LeafSpec("edge.openloop.local", frozenset(names), ExtendedKeyUsageOID.SERVER_AUTH)


def _client_spec(participant_id: str) -> _LeafSpec:
    uri = x509.UniformResourceIdentifier(participant_uri(participant_id))
    return _LeafSpec(participant_id, frozenset([uri]), ExtendedKeyUsageOID.CLIENT_AUTH)


def _ensure_ca(cert_path: Path, key_path: Path) -> _Issuer:
    loaded = _load_pair(cert_path, key_path)
    if loaded is not None and _is_ca(loaded[0]):
        return _Issuer(*loaded)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("OpenLoop Development CA")
    cert = (
        _builder(name, name, key.public_key(), _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_pair(cert_path, cert, key_path, key)
    return _Issuer(cert, key)


def _ensure_leaf(ca: _Issuer, cert_path: Path, key_path: Path, spec: _LeafSpec) -> None:
    loaded = _load_pair(cert_path, key_path)
    if loaded is not None and _matches(loaded[0], ca, spec):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(spec.common_name), ca.cert.subject, key.public_key(), _LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([spec.usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sorted(spec.names, key=str)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    _write_pair(cert_path, cert, key_path, key)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cert.verify_directly_issued_by(cert)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return constraints.ca


def _matches(cert: x509.Certificate, ca: _Issuer, spec: _LeafSpec) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return frozenset(names) == spec.names and list(usages) == [spec.usage]


def _load_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The pair on disk if it is usable for a while longer, else None (so it gets replaced)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        return None
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return None
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc - _RENEW_BEFORE:
        return None
    os.chmod(key_path, 0o600)
    return cert, key


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_pair(
    cert_path: Path, cert: x509.Certificate, key_path: Path, key: ec.EllipticCurvePrivateKey
) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Readers (a running Envoy, a parallel test) see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)  # the umask may have narrowed it; a key must be exactly 0600
    os.replace(tmp, path)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise generators so a devstack and a test run never mint two different CAs."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
