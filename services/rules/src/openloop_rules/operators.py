"""Who may change the rules: the rules service's audience and roles for operator tokens.

The token format and every check are the runtime's (:mod:`openloop_runtime.operators`);
what is the rules service's own is its audience, ``openloop-rules`` (a token for another
service opens nothing here), and its roles: ``rules-operator`` may do everything,
``rules-auditor`` may only read (rule sets, activations, simulations).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from openloop_runtime import operators
from openloop_runtime.operators import Operator, OperatorVerifier
from openloop_runtime.timestamps import utc_now

__all__ = ["AUDIENCE", "READERS", "WRITERS", "Operator", "OperatorVerifier", "Role", "mint"]

AUDIENCE = "openloop-rules"


class Role(enum.StrEnum):
    OPERATOR = "rules-operator"
    AUDITOR = "rules-auditor"


READERS = (Role.OPERATOR, Role.AUDITOR)
WRITERS = (Role.OPERATOR,)


def verifier(
    keys: Mapping[str, str],
    *,
    audience: str = AUDIENCE,
    clock: Callable[[], datetime] = utc_now,
) -> OperatorVerifier:
    """The rules service's check of operator tokens."""
    return OperatorVerifier(keys, audience=audience, roles=Role, service="rules", clock=clock)


def mint(
    private_key_pem: bytes,
    *,
    kid: str,
    subject: str,
    role: Role = Role.OPERATOR,
    now: datetime | None = None,
    lifetime: timedelta = operators.DEFAULT_TOKEN_LIFETIME,
    audience: str = AUDIENCE,
) -> str:
    """A rules token for ``subject``: what the admin CLI and the dev mesh's seed send."""
    return operators.mint(
        private_key_pem,
        kid=kid,
        subject=subject,
        role=role,
        audience=audience,
        now=now,
        lifetime=lifetime,
    )
