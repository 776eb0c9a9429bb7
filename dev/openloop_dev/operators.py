"""The dev mesh's operators: an Ed25519 key per administered service (rules, identity,
settlement) that the service trusts, so the seed, a developer or a journey test can
administer the local mesh: publish rule sets, onboard participants, enrol citizens, export
and erase data, close and settle settlement cycles.

Each key is made on first use and kept with the mesh's data (``.devstack``), readable by
its owner only, like the other dev secrets; only its public half goes into the service's
environment. A deployment trusts its operators' own keys through
``OPENLOOP_RULES_OPERATOR_KEYS``, ``OPENLOOP_IDENTITY_OPERATOR_KEYS`` and
``OPENLOOP_SETTLEMENT_OPERATOR_KEYS`` (``python -m openloop_rules.admin keygen`` makes one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import grpc

from openloop_identity import access
from openloop_rules.operators import AUDIENCE as RULES_AUDIENCE
from openloop_rules.operators import Role
from openloop_runtime.operator_calls import OperatorToken, operator_channel
from openloop_runtime.operators import OperatorKey, mint
from openloop_settlement import access as settlement_access

Service = Literal["rules", "identity", "settlement"]
KID = "dev-operator"
AUDIENCES: dict[Service, str] = {
    "rules": RULES_AUDIENCE,
    "identity": access.AUDIENCE,
    "settlement": settlement_access.AUDIENCE,
}
ROLES: dict[Service, str] = {
    "rules": Role.OPERATOR,
    "identity": access.Role.OPERATOR,
    "settlement": settlement_access.Role.OPERATOR,
}
"""The role the dev operator acts in: the one that may do everything."""


def operator_key_file(workdir: Path, service: Service = "rules") -> Path:
    """The dev operator's private key for ``service`` in ``workdir`` (made on first use)."""
    path = workdir / f"{service}-operator.pem"
    if not path.exists():
        path.write_bytes(OperatorKey.generate(KID).private_pem)
        path.chmod(0o600)
    return path


def operator_env(workdir: Path, service: Service) -> dict[str, str]:
    """The service's settings that make it trust the dev operator."""
    key = OperatorKey(KID, operator_key_file(workdir, service).read_bytes())
    return {f"OPENLOOP_{service.upper()}_OPERATOR_KEYS": json.dumps(key.trusted())}


def operator_token(workdir: Path, subject: str = "dev", role: Role = Role.OPERATOR) -> str:
    """A five-minute rules operator token signed by the dev operator."""
    return mint(
        operator_key_file(workdir, "rules").read_bytes(),
        kid=KID,
        subject=subject,
        role=role,
        audience=RULES_AUDIENCE,
    )


def dev_operator(workdir: Path, service: Service, subject: str = "dev") -> OperatorToken:
    """Tokens of the dev operator for ``service``, renewed before they expire."""
    return OperatorToken(
        operator_key_file(workdir, service).read_bytes(),
        kid=KID,
        subject=subject,
        role=ROLES[service],
        audience=AUDIENCES[service],
    )


def dev_operator_channel(
    workdir: Path, service: Service, target: str, subject: str = "dev"
) -> grpc.aio.Channel:
    """A channel to ``service`` at ``target`` whose every call the dev operator signs."""
    return operator_channel(target, dev_operator(workdir, service, subject))
