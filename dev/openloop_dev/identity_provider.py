"""The dev mesh's identity provider: a ThaiD stand-in whose ID tokens identity trusts.

Its ES256 key is made on first use and kept with the mesh's data, like the other dev
secrets, so tokens minted by ``make demo`` or the benchmark verify against the JWKS the
identity service was started with. Nothing here is for production: a deployment trusts
real providers through ``OPENLOOP_IDENTITY_TRUSTED_ISSUERS``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from openloop.common.v1 import money_pb2
from openloop_identity.assertions import DevIssuer
from openloop_identity.domain.assurance import AAL
from openloop_identity.payment_binding import binding_claims

ISSUER = "https://id.dev.openloop.local"
AUDIENCE = "openloop"
KEY_FILE = "identity-issuer.pem"
_KID = "dev-1"


def dev_issuer(workdir: Path) -> DevIssuer:
    """The mesh's issuer, with the key saved in ``workdir`` (made there on first use)."""
    path = workdir / KEY_FILE
    if not path.exists():
        path.write_bytes(DevIssuer(ISSUER, kid=_KID).private_key_pem())
        path.chmod(0o600)
    return DevIssuer(ISSUER, kid=_KID, private_key_pem=path.read_bytes())


def identity_env(workdir: Path) -> dict[str, str]:
    """The identity service's settings that make it trust this provider."""
    return {
        "OPENLOOP_IDENTITY_TRUSTED_ISSUERS": json.dumps({ISSUER: dev_issuer(workdir).jwks}),
        "OPENLOOP_IDENTITY_ASSERTION_AUDIENCE": AUDIENCE,
    }


def bank_signer(workdir: Path, participant: str) -> DevIssuer:
    """The key ``participant`` (a dev bank) signs its customers' payment authorisations with,
    kept in ``workdir``; the seed registers its public half with identity."""
    path = workdir / f"{participant}-payments.pem"
    issuer = f"participants/{participant}"
    kid = f"{participant}-dev-1"
    if not path.exists():
        path.write_bytes(DevIssuer(issuer, kid=kid).private_key_pem())
        path.chmod(0o600)
    return DevIssuer(issuer, kid=kid, private_key_pem=path.read_bytes())


def payment_authorisation(
    signer: DevIssuer, citizen_id: str, payee: str, amount: money_pb2.Money
) -> str:
    """What a bank's app sends with each payment: the customer, authenticated at AAL 2.2
    (biometric on a bound device), authorises paying ``amount`` to ``payee``
    ("merchants/{merchant}") and nothing else; valid for five minutes, once."""
    return signer.id_token(
        audience=AUDIENCE,
        pid=citizen_id,
        now=datetime.now(UTC),
        aal=AAL.AAL_2_2,
        extra_claims=binding_claims(payee, amount.currency_code, amount.amount_satang),
    )


def enrolment_assertion(workdir: Path, citizen_id: str) -> str:
    """An ID token proving ``citizen_id`` at IAL 2.3, as a bank's e-KYC would pass on."""
    return dev_issuer(workdir).id_token(audience=AUDIENCE, pid=citizen_id, now=datetime.now(UTC))
