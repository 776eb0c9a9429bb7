"""An operator key pair: what it signs, the service configured with its public half trusts."""

from __future__ import annotations

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from openloop_runtime.errors import DomainError
from openloop_runtime.operators import OperatorKey, OperatorVerifier, mint


def _verifier(keys: dict[str, str]) -> OperatorVerifier:
    return OperatorVerifier(keys, audience="openloop-test", roles=["test-operator"], service="test")


def _token(key: OperatorKey) -> str:
    return mint(
        key.private_pem,
        kid=key.kid,
        subject="alice",
        role="test-operator",
        audience="openloop-test",
    )


def test_a_service_trusting_the_public_half_accepts_what_the_private_half_signs() -> None:
    key = OperatorKey.generate("ops-1")
    assert list(key.trusted()) == ["ops-1"]
    assert _verifier(key.trusted()).verify(_token(key)).subject == "alice"
    stranger = OperatorKey.generate("ops-1")  # the same key id, another key
    with pytest.raises(DomainError) as refused:
        _verifier(key.trusted()).verify(_token(stranger))
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_only_an_ed25519_key_is_an_operator_key() -> None:
    p256 = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(TypeError):
        OperatorKey("ops-1", p256).trusted()
