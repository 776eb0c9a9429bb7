"""The identity service's client-facing failures, each with its code and reason.

Messages and metadata name resources and fields, never a citizen ID.
"""

from __future__ import annotations

import grpc

from openloop_identity.domain.model import AliasKind
from openloop_identity.domain.wallets import wallet_move_name
from openloop_runtime.errors import DomainError, ErrorReason, not_found
from openloop_runtime.names import format_name


def participant_not_found(participant_id: str) -> DomainError:
    return not_found(
        ErrorReason.ERROR_REASON_PARTICIPANT_NOT_FOUND, format_name("participants", participant_id)
    )


def participant_not_active(participant_id: str, state: str) -> DomainError:
    resource = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_PARTICIPANT_NOT_ACTIVE,
        f"{resource} is {state}, not ACTIVE",
        {"resource": resource, "state": state},
    )


def participant_cannot_host(participant_id: str, role: str, *, field: str) -> DomainError:
    resource = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_INVALID_FIELD,
        f"{resource} has role {role}; only BANK and E_WALLET participants host wallets",
        {"field": field, "resource": resource},
    )


def participant_lacks_capability(
    participant_id: str, capability: str, *, field: str
) -> DomainError:
    resource = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_INVALID_FIELD,
        f"{resource} is not a {capability}: it cannot host this wallet",
        {"field": field, "resource": resource, "capability": capability},
    )


def participant_already_exists(participant_id: str) -> DomainError:
    resource = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorReason.ERROR_REASON_PARTICIPANT_ALREADY_EXISTS,
        f"{resource} was created by another request",
        {"resource": resource},
    )


def citizen_not_found(citizen_id: str) -> DomainError:
    return not_found(
        ErrorReason.ERROR_REASON_CITIZEN_NOT_FOUND, format_name("citizens", citizen_id)
    )


def no_citizen_with_id() -> DomainError:
    """LookupCitizen found nothing. The metadata names the field, not its value."""
    return DomainError(
        grpc.StatusCode.NOT_FOUND,
        ErrorReason.ERROR_REASON_CITIZEN_NOT_FOUND,
        "no citizen is enrolled with this citizen ID",
        {"field": "citizen_id"},
    )


def citizen_already_enrolled() -> DomainError:
    """Deliberately names neither the existing citizen nor its host: the caller only
    proved it knows a citizen ID, which is not a reason to learn who hosts that person."""
    return DomainError(
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorReason.ERROR_REASON_CITIZEN_ALREADY_ENROLLED,
        "this citizen ID was already enrolled by another request",
        {"field": "citizen_id"},
    )


def merchant_not_found(merchant_id: str) -> DomainError:
    return not_found(
        ErrorReason.ERROR_REASON_MERCHANT_NOT_FOUND, format_name("merchants", merchant_id)
    )


def merchant_already_exists(merchant_id: str) -> DomainError:
    resource = format_name("merchants", merchant_id)
    return DomainError(
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorReason.ERROR_REASON_MERCHANT_ALREADY_EXISTS,
        f"a merchant with this tax ID exists as {resource}, created by another request",
        {"resource": resource},
    )


def idempotency_key_reused(request_id: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
        "request_id was already used for a different request",
        {"field": "request_id", "request_id": request_id},
    )


def alias_taken(kind: AliasKind) -> DomainError:
    """The alias names another party. The alias itself may be personal data: not echoed."""
    return DomainError(
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorReason.ERROR_REASON_ALIAS_TAKEN,
        f"this {kind.value} already names another party; one alias names one party only",
        {"alias_kind": kind.value},
    )


def alias_not_found(kind: AliasKind | str) -> DomainError:
    """Nothing in the directory under this alias (``kind`` may also name a QR proxy the
    directory never holds, such as EWALLET_ID)."""
    name = kind.value if isinstance(kind, AliasKind) else kind
    return DomainError(
        grpc.StatusCode.NOT_FOUND,
        ErrorReason.ERROR_REASON_ALIAS_NOT_FOUND,
        f"no party is registered under this {name}",
        {"alias_kind": name},
    )


def unknown_district(field: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_UNKNOWN_DISTRICT,
        f"{field} is not a district in the DOPA district table",
        {"field": field},
    )


def invalid_phone_number(field: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_INVALID_PHONE_NUMBER,
        f"{field} must be a 10-digit Thai mobile number starting with 06, 08 or 09",
        {"field": field},
    )


_ASSERTION_CODES = {
    "ASSERTION_MALFORMED": grpc.StatusCode.INVALID_ARGUMENT,
    "ASSERTION_MISSING_CLAIM": grpc.StatusCode.INVALID_ARGUMENT,
    "ASSERTION_BAD_PID": grpc.StatusCode.INVALID_ARGUMENT,
    "ASSERTION_IAL_TOO_LOW": grpc.StatusCode.PERMISSION_DENIED,
    "ASSERTION_AAL_TOO_LOW": grpc.StatusCode.PERMISSION_DENIED,
    "ASSERTION_SUBJECT_MISMATCH": grpc.StatusCode.PERMISSION_DENIED,
    "ASSERTION_PAYMENT_MISMATCH": grpc.StatusCode.PERMISSION_DENIED,
}
"""A malformed token is the client's request at fault (INVALID_ARGUMENT); a token that
proves too little, or proves someone else or another payment, is refused
(PERMISSION_DENIED); anything else (untrusted, forged, expired, replayed) fails to
authenticate (UNAUTHENTICATED)."""


def assertion_rejected(
    reason: str, message: str, *, field: str = "identity_assertion", claim: str = ""
) -> DomainError:
    """INVALID_IDENTITY_ASSERTION with the verifier's reason, and the claim at fault when
    the reason alone does not say; messages never carry the pid."""
    metadata = {"field": field, "assertion_reason": reason}
    if claim:
        metadata["claim"] = claim
    return DomainError(
        _ASSERTION_CODES.get(reason, grpc.StatusCode.UNAUTHENTICATED),
        ErrorReason.ERROR_REASON_INVALID_IDENTITY_ASSERTION,
        message,
        metadata,
    )


def guardian_consent_required() -> DomainError:
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_GUARDIAN_CONSENT_REQUIRED,
        "the citizen is under 20, a minor under the PDPA: set guardian_consent",
        {"field": "guardian_consent"},
    )


def participant_state_conflict(participant_id: str, state: str, why: str) -> DomainError:
    resource = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_PARTICIPANT_STATE_CONFLICT,
        f"{resource} is {state}: {why}",
        {"resource": resource, "state": state},
    )


def unsettled_position(
    participant_id: str, net_position_satang: int, unsettled_cycles: int
) -> DomainError:
    resource = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_PARTICIPANT_HAS_UNSETTLED_POSITION,
        f"{resource} has positions in {unsettled_cycles} settlement cycles not yet settled "
        f"({net_position_satang} satang in all); settle them first",
        {
            "resource": resource,
            "net_position_satang": str(net_position_satang),
            "unsettled_cycles": str(unsettled_cycles),
        },
    )


def positions_unknown() -> DomainError:
    """No settlement service is configured, so whether positions are settled is unknown."""
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_PARTICIPANT_HAS_UNSETTLED_POSITION,
        "settlement cannot be asked for positions (OPENLOOP_IDENTITY_SETTLEMENT_TARGET is "
        "not set), so no participant can close",
        {},
    )


def credential_already_exists(kind: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorReason.ERROR_REASON_CREDENTIAL_ALREADY_EXISTS,
        "this certificate (by fingerprint) or key id is already registered"
        if kind == "CLIENT_CERTIFICATE"
        else "this participant already has a key with this key id",
        {"kind": kind},
    )


def credential_not_found(participant_id: str, credential_id: str) -> DomainError:
    return not_found(
        ErrorReason.ERROR_REASON_CREDENTIAL_NOT_FOUND,
        format_name("participants", participant_id) + "/credentials/" + credential_id,
    )


def invalid_credential(reason: str, message: str, field: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_INVALID_CREDENTIAL,
        message,
        {"field": field, "credential_reason": reason},
    )


def citizen_data_erased(citizen_id: str) -> DomainError:
    resource = format_name("citizens", citizen_id)
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_CITIZEN_DATA_ERASED,
        f"{resource} had their personal data erased and can no longer pay",
        {"resource": resource},
    )


def payee_not_a_merchant() -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_INVALID_FIELD,
        "payee_alias names a citizen; a payment is made to a merchant",
        {"field": "payee_alias"},
    )


def qr_amount_mismatch(qr_satang: int, requested_satang: int) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_QR_AMOUNT_MISMATCH,
        f"the scanned QR asks for {qr_satang} satang; this payment is for {requested_satang}",
        {
            "field": "amount",
            "qr_amount_satang": str(qr_satang),
            "requested_amount_satang": str(requested_satang),
        },
    )


def wallet_move_in_progress(citizen_id: str, wallet_move_id: str) -> DomainError:
    resource = format_name("citizens", citizen_id)
    move = wallet_move_name(citizen_id, wallet_move_id)
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_WALLET_MOVE_IN_PROGRESS,
        f"{resource}'s wallet is moving to another participant ({move}); retry once it completes",
        {"resource": resource, "wallet_move": move},
    )


def wallet_already_hosted(citizen_id: str, participant_id: str) -> DomainError:
    resource = format_name("citizens", citizen_id)
    participant = format_name("participants", participant_id)
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_WALLET_ALREADY_HOSTED,
        f"{resource}'s wallet is already hosted by {participant}",
        {"resource": resource, "participant": participant},
    )


def wallet_move_not_found(name: str) -> DomainError:
    return not_found(ErrorReason.ERROR_REASON_WALLET_MOVE_NOT_FOUND, name)


def wallet_move_id_reused(name: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
        "wallet_move_id was already used for a different move of this wallet",
        {"field": "wallet_move_id", "resource": name},
    )
