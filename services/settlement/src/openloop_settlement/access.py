"""Who may call which settlement method: the services on a payment's path, or an operator.

Every RPC of ``openloop.settlement.v1.SettlementService`` is in exactly one of two groups (a
test checks the service descriptor against this module, so a new RPC cannot be left out):

- **Internal** methods are the ones other services call: the gateway records every ledger
  transfer between participants (``RecordTransfer``, for payments and wallet moves, and the
  dev seed's treasury funding the same way), and identity reads a participant's position
  before it lets the participant close (``GetPosition``). They take no operator token,
  because those services act for a bank, not for a person; what protects them is the
  network (only the gateway and identity may reach settlement, ``deploy/k8s/base``).
- **Operator** methods are the platform operator's and its auditors': closing a cycle,
  recording that the central bank settled it, and every report (cycles, their positions,
  obligations, the list of lifetime positions). They need an operator token for audience
  ``openloop-settlement`` (:mod:`openloop_runtime.operators`): role
  ``settlement-operator`` may call every one of them; ``settlement-auditor`` (an auditor,
  or the treasury reading a settlement report) only the reads. No service calls them:
  a report is for a person, and a close or a settle moves what the banks are told to pay.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime

from openloop_runtime.operators import OperatorVerifier
from openloop_runtime.timestamps import utc_now

AUDIENCE = "openloop-settlement"


class Role(enum.StrEnum):
    OPERATOR = "settlement-operator"
    AUDITOR = "settlement-auditor"


OPERATORS = (Role.OPERATOR,)
"""Changes: cutting a cycle, or declaring it paid."""
READERS = (Role.OPERATOR, Role.AUDITOR)
"""Reports: nothing they answer changes anything."""

INTERNAL = frozenset(
    {
        # The gateway, once the ledger applied a payment's or a wallet move's transfer
        # (upstreams.py); the dev seed records the treasury's funding the same way.
        "RecordTransfer",
        # Identity, before a participant may close (positions.py).
        "GetPosition",
    }
)
"""Called by another service on a payment's or a participant's path: no operator token."""

OPERATOR_METHODS: Mapping[str, tuple[Role, ...]] = {
    "ListPositions": READERS,
    "GetSettlementCycle": READERS,
    "ListSettlementCycles": READERS,
    "CloseSettlementCycle": OPERATORS,
    "SettleSettlementCycle": OPERATORS,
    "GetCyclePosition": READERS,
    "ListCyclePositions": READERS,
    "GetObligation": READERS,
    "ListObligations": READERS,
}
"""Every other method, with the roles that may call it."""


def verifier(
    keys: Mapping[str, str],
    *,
    audience: str = AUDIENCE,
    clock: Callable[[], datetime] = utc_now,
) -> OperatorVerifier:
    """Settlement's check of operator tokens: its audience, its roles."""
    return OperatorVerifier(keys, audience=audience, roles=Role, service="settlement", clock=clock)
