"""The dev PKI hands out the identities the edge and the gateway rely on."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from openloop_dev.pki import (
    PARTICIPANT_URI_PREFIX,
    DevPki,
    ensure_dev_pki,
    participant_uri,
)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _fingerprint(pki: DevPki) -> dict[Path, tuple[bytes, int, int]]:
    paths = [pki.ca_cert, pki.server_cert, pki.server_key]
    paths += [p for client in pki.clients.values() for p in (client.cert, client.key)]
    return {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in paths}


def test_server_cert_verifies_for_every_edge_name(dev_pki: DevPki) -> None:
    verifier_policy = PolicyBuilder().store(Store([_cert(dev_pki.ca_cert)]))
    for name in (
        x509.DNSName("localhost"),
        x509.DNSName("envoy"),
        x509.DNSName("edge.openloop.local"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ):
        chain = verifier_policy.build_server_verifier(name).verify(_cert(dev_pki.server_cert), [])
        assert len(chain) == 2


def test_client_cert_chains_to_ca_and_names_the_participant(dev_pki: DevPki) -> None:
    verifier = PolicyBuilder().store(Store([_cert(dev_pki.ca_cert)])).build_client_verifier()
    for participant_id, client in dev_pki.clients.items():
        cert = _cert(client.cert)
        verified = verifier.verify(cert, [])
        assert verified.subjects == [
            x509.UniformResourceIdentifier(participant_uri(participant_id))
        ]
        common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert [attr.value for attr in common_names] == [participant_id]


def test_keys_are_owner_only_p256(dev_pki: DevPki) -> None:
    keys = [dev_pki.server_key] + [client.key for client in dev_pki.clients.values()]
    for key_path in keys:
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        key = load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"


def test_rerun_reuses_every_file(tmp_path: Path) -> None:
    first = ensure_dev_pki(tmp_path, ["bank-a", "bank-b"])
    before = _fingerprint(first)
    second = ensure_dev_pki(tmp_path, ["bank-a", "bank-b"])
    assert second == first
    assert _fingerprint(second) == before


def test_adding_a_participant_keeps_the_others(tmp_path: Path) -> None:
    before = _fingerprint(ensure_dev_pki(tmp_path, ["bank-a"]))
    after = _fingerprint(ensure_dev_pki(tmp_path, ["bank-a", "bank-c"]))
    assert {path: after[path] for path in before} == before


def test_damaged_client_cert_is_reissued_alone(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path, ["bank-a", "bank-b"])
    before = _fingerprint(pki)
    pki.clients["bank-a"].cert.write_text("not a certificate")
    after = _fingerprint(ensure_dev_pki(tmp_path, ["bank-a", "bank-b"]))
    changed = {path for path in before if after[path][0] != before[path][0]}
    assert changed == {pki.clients["bank-a"].cert, pki.clients["bank-a"].key}
    _cert(pki.clients["bank-a"].cert).verify_directly_issued_by(_cert(pki.ca_cert))


def test_new_ca_reissues_every_leaf(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path, ["bank-a"])
    old_leaves = {pki.server_cert.read_bytes(), pki.clients["bank-a"].cert.read_bytes()}
    pki.ca_cert.unlink()
    ensure_dev_pki(tmp_path, ["bank-a"])
    ca = _cert(pki.ca_cert)
    for leaf in (pki.server_cert, pki.clients["bank-a"].cert):
        assert leaf.read_bytes() not in old_leaves
        _cert(leaf).verify_directly_issued_by(ca)


def test_participant_uri_is_the_spiffe_id() -> None:
    assert PARTICIPANT_URI_PREFIX == "spiffe://openloop.dev/participants/"
    assert participant_uri("bank-a") == "spiffe://openloop.dev/participants/bank-a"


@pytest.mark.parametrize("bad_id", ["", "..", "bank/a", "bank a", "-bank", "b" * 65])
def test_unsafe_participant_ids_are_rejected(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(ValueError, match="invalid participant id"):
        ensure_dev_pki(tmp_path, [bad_id])


def test_a_bare_string_is_not_a_participant_list(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        ensure_dev_pki(tmp_path, "bank-a")
