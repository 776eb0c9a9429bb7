"""Who may call which identity method: the services on a payment's path, or an operator.

Every RPC of ``openloop.identity.v1.IdentityService`` is in exactly one of two groups (a
test checks the service descriptor against this module, so a new RPC cannot be left out):

- **Internal** methods are the ones the gateway calls while it serves a bank: verifying a
  payment's parties, reading a wallet's citizen or merchant, the participant's registered
  certificates (the edge check) and the three steps of a wallet move. No other service
  calls identity. They take
  no operator token, because the gateway acts for a bank, not for a person; what protects
  them is the network (only the gateway may reach identity, ``deploy/k8s/base``), and what
  they return carries no personal data.
- **Operator** methods administer the program: participants and their credentials,
  enrolment and bulk import of citizens, merchants, the directory look-ups, and every
  method that returns or destroys personal data (``ExportCitizenData``,
  ``EraseCitizenData``). They need an operator token for audience ``openloop-identity``
  (:mod:`openloop_runtime.operators`): role ``identity-operator`` may call every one of
  them; ``identity-auditor`` only those that read and return no personal data (a support
  desk answering "is this citizen enrolled, and with whom?"), and the audit trail
  (``ListAuditEvents``), which holds none.

Exports and erasures are the operator's: a bank asks the platform to act on its
customer's data-subject request, and the ``acting_participant`` of the request is the
operator's statement of which bank that is (it must host the citizen), not a credential.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime

from openloop_runtime.operators import OperatorVerifier
from openloop_runtime.timestamps import utc_now

AUDIENCE = "openloop-identity"


class Role(enum.StrEnum):
    OPERATOR = "identity-operator"
    AUDITOR = "identity-auditor"


OPERATORS = (Role.OPERATOR,)
"""Changes, and anything that opens or destroys personal data."""
READERS = (Role.OPERATOR, Role.AUDITOR)
"""Reads that return no personal data."""

INTERNAL = frozenset(
    {
        # The gateway, on every payment (payments.py).
        "VerifyPaymentParties",
        # The gateway, answering a bank's GetWallet (wallets.py).
        "GetCitizen",
        "GetMerchant",
        # The gateway, on every call: is the client certificate registered (certificates.py)?
        "ListParticipantCredentials",
        # The gateway, moving a wallet and finishing moves its reconciler picks up
        # (wallet_moves.py).
        "BeginWalletMove",
        "GetWalletMove",
        "CompleteWalletMove",
    }
)
"""Called by the gateway on a payment's or a wallet move's path: no operator token."""

OPERATOR_METHODS: Mapping[str, tuple[Role, ...]] = {
    "CreateParticipant": OPERATORS,
    "GetParticipant": READERS,
    "SuspendParticipant": OPERATORS,
    "ReactivateParticipant": OPERATORS,
    "CloseParticipant": OPERATORS,
    "CreateParticipantCredential": OPERATORS,
    "RevokeParticipantCredential": OPERATORS,
    "EnrollCitizen": OPERATORS,
    "ImportCitizens": OPERATORS,
    "ExportCitizenData": OPERATORS,
    "EraseCitizenData": OPERATORS,
    "LookupCitizen": READERS,
    "CreateMerchant": OPERATORS,
    "ResolveAlias": READERS,
    "GenerateMerchantQr": READERS,
    "ListAuditEvents": READERS,
}
"""Every other method, with the roles that may call it."""


def verifier(
    keys: Mapping[str, str],
    *,
    audience: str = AUDIENCE,
    clock: Callable[[], datetime] = utc_now,
) -> OperatorVerifier:
    """Identity's check of operator tokens: its audience, its roles."""
    return OperatorVerifier(keys, audience=audience, roles=Role, service="identity", clock=clock)
