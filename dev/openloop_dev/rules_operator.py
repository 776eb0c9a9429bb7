"""The dev mesh's rules operator: an Ed25519 key the rules service trusts, so a developer (or
a journey test) can publish, activate and roll back rule sets on the local mesh.

The key is made on first use and kept with the mesh's data, like the other dev secrets. A
deployment trusts its operators' own keys through ``OPENLOOP_RULES_OPERATOR_KEYS``
(``python -m openloop_rules.admin keygen`` makes one).
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openloop_rules.operators import Role, mint

KEY_FILE = "rules-operator.pem"
KID = "dev-operator"


def operator_key_file(workdir: Path) -> Path:
    """The operator's private key in ``workdir`` (made there on first use)."""
    path = workdir / KEY_FILE
    if not path.exists():
        path.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
    return path


def rules_env(workdir: Path) -> dict[str, str]:
    """The rules service's settings that make it trust the dev operator."""
    key = serialization.load_pem_private_key(operator_key_file(workdir).read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"OPENLOOP_RULES_OPERATOR_KEYS": json.dumps({KID: public.decode()})}


def operator_token(workdir: Path, subject: str = "dev", role: Role = Role.OPERATOR) -> str:
    """A five-minute operator token signed by the dev operator."""
    return mint(operator_key_file(workdir).read_bytes(), kid=KID, subject=subject, role=role)
