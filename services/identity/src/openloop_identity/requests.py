"""Validation of incoming requests into domain values, before any database work.

Every client mistake becomes INVALID_ARGUMENT naming the offending field (as a
path from the request, for example ``merchant.tax_id``). A bad citizen ID is
reported without echoing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone

import grpc

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity import errors
from openloop_identity.convert import (
    capability_from_proto,
    channel_from_proto,
    credential_kind_from_proto,
    role_from_proto,
    size_class_from_proto,
)
from openloop_identity.domain.credentials import (
    CredentialError,
    parse_assertion_key,
    parse_client_certificate,
)
from openloop_identity.domain.districts import DistrictTable
from openloop_identity.domain.model import (
    ALL_CAPABILITIES,
    WALLET_HOSTING_ROLES,
    Capability,
    CredentialKind,
    CredentialMaterial,
    Eligibility,
    GuardianConsent,
    MerchantProfile,
    NewCitizen,
    NewCredential,
    NewMerchant,
    NewParticipant,
    NewWalletMove,
    ParticipantRole,
    PersonalData,
    TaxStatus,
)
from openloop_identity.domain.phone import is_valid_mobile_number
from openloop_identity.domain.thai_id import is_valid_citizen_id, is_valid_juristic_tax_id
from openloop_identity.payment_binding import Amount
from openloop_identity.pii import CitizenIdTokenizer
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.money import positive_satang
from openloop_runtime.names import is_valid_id, parse_name
from openloop_runtime.text import bounded_text

_DISTRICT_CODE = re.compile(r"[0-9]{4}")
MAX_REQUEST_ID_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 200
MAX_SETTLEMENT_ACCOUNT_LENGTH = 64
MIN_TAX_YEAR = 1990
MAX_TAX_YEAR = 2700
"""Tax years as filed: Common Era (2023) or Buddhist Era (2566) both fall in this range."""
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
AGE_OF_MAJORITY = 20
"""The PDPA (and the Civil and Commercial Code) count everyone under 20 as a minor."""
THAILAND = timezone(timedelta(hours=7), "ICT")
"""Ages are counted on the calendar of Thailand, which keeps UTC+7 all year."""
CLOCK_SKEW = timedelta(minutes=5)
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 500
MAX_REFERENCE_LENGTH = 128


def request_id(value: str) -> str:
    if not value or len(value) > MAX_REQUEST_ID_LENGTH or not value.isprintable():
        raise invalid_field(
            "request_id", f"request_id must be 1 to {MAX_REQUEST_ID_LENGTH} printable characters"
        )
    return value


def district_code(value: str, *, field: str, districts: DistrictTable) -> str:
    """A 4-digit DOPA code that is in the shipped district table."""
    if _DISTRICT_CODE.fullmatch(value) is None:
        raise invalid_field(field, f"{field} must be a 4-digit DOPA district code")
    if districts.get(value) is None:
        raise errors.unknown_district(field)
    return value


def citizen_id(value: str, *, field: str = "citizen_id") -> str:
    """The validated 13-digit citizen ID. The message never repeats the value."""
    if not is_valid_citizen_id(value):
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_INVALID_CITIZEN_ID,
            f"{field} must be 13 digits, not starting with 0, with a valid check digit",
            {"field": field},
        )
    return value


def tax_id(value: str, *, field: str) -> str:
    """A validated juristic tax ID."""
    if not is_valid_juristic_tax_id(value):
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_INVALID_TAX_ID,
            f"{field} must be 13 digits starting with 0, with a valid check digit",
            {"field": field},
        )
    return value


def hosting_participant(value: str, *, field: str) -> str:
    return parse_name(value, "participants", field=field)


def create_participant(request: service_pb2.CreateParticipantRequest) -> NewParticipant:
    key = request_id(request.request_id)
    if not is_valid_id(request.participant_id):
        raise invalid_field(
            "participant_id",
            "participant_id must be 1 to 63 lower-case letters, digits or '-', "
            "starting with a letter or digit",
        )
    participant = request.participant
    bounded_text(
        participant.display_name,
        field="participant.display_name",
        max_length=MAX_DISPLAY_NAME_LENGTH,
    )
    role = role_from_proto(participant.role)
    if role is None:
        raise invalid_field("participant.role", "participant.role must be set")
    return NewParticipant(
        request_id=key,
        participant_id=request.participant_id,
        display_name=participant.display_name,
        role=role,
        capabilities=_capabilities(participant, role),
    )


def _capabilities(
    participant: resources_pb2.Participant, role: ParticipantRole
) -> frozenset[Capability]:
    """A bank or e-wallet does what it names, both when it names nothing; others do neither."""
    field = "participant.capabilities"
    found = [capability_from_proto(value) for value in participant.capabilities]
    if any(capability is None for capability in found):
        raise invalid_field(field, "participant.capabilities holds an unknown capability")
    chosen = frozenset(capability for capability in found if capability is not None)
    if role not in WALLET_HOSTING_ROLES:
        if chosen:
            raise invalid_field(field, f"a {role.value} participant hosts no wallets")
        return frozenset()
    return chosen or ALL_CAPABILITIES


def birth_date(value: str, *, today: date) -> date:
    """An ISO 8601 calendar date, not in the future and not before 1900. The message never
    repeats the value."""
    parsed = None
    if _ISO_DATE.fullmatch(value) is not None:
        with contextlib.suppress(ValueError):
            parsed = date.fromisoformat(value)
    if parsed is None or not EARLIEST_BIRTH_DATE <= parsed <= today:
        raise invalid_field(
            "birth_date",
            f"birth_date must be a date YYYY-MM-DD between {EARLIEST_BIRTH_DATE} and today",
        )
    return parsed


def age_on(born: date, day: date) -> int:
    """Completed years of age on ``day`` (someone born on 29 February turns a year older on
    1 March in common years)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def guardian_consent(
    consent: resources_pb2.GuardianConsent | None, *, minor: bool, now: datetime
) -> GuardianConsent | None:
    """The guardian's consent (``None`` when the request has none), required for a minor:
    one rule for EnrollCitizen and the registry import."""
    if consent is None:
        if minor:
            raise errors.guardian_consent_required()
        return None
    reference = bounded_text(
        consent.consent_reference,
        field="guardian_consent.consent_reference",
        max_length=MAX_REFERENCE_LENGTH,
        required=True,
    )
    if not consent.HasField("consent_time"):
        raise invalid_field(
            "guardian_consent.consent_time", "guardian_consent.consent_time must be set"
        )
    given = consent.consent_time.ToDatetime(tzinfo=UTC)
    if given > now + CLOCK_SKEW:
        raise invalid_field(
            "guardian_consent.consent_time", "guardian_consent.consent_time is in the future"
        )
    return GuardianConsent(reference, given)


def enroll_citizen(
    request: service_pb2.EnrollCitizenRequest,
    tokenizer: CitizenIdTokenizer,
    districts: DistrictTable,
    *,
    now: datetime,
) -> NewCitizen:
    key = request_id(request.request_id)
    token = tokenizer.token(citizen_id(request.citizen_id))
    assertion = identity_assertion(request.identity_assertion)
    today = now.astimezone(THAILAND).date()
    born = birth_date(request.birth_date, today=today)
    personal = PersonalData(
        full_name=bounded_text(
            request.full_name, field="full_name", max_length=MAX_NAME_LENGTH, required=True
        ),
        birth_date=born,
        address=bounded_text(request.address, field="address", max_length=MAX_ADDRESS_LENGTH),
    )
    eligibility = request.eligibility
    return NewCitizen(
        request_id=key,
        citizen_token=token,
        home_district_code=district_code(
            request.home_district_code, field="home_district_code", districts=districts
        ),
        hosting_participant_id=hosting_participant(
            request.hosting_participant, field="hosting_participant"
        ),
        identity_assertion=assertion,
        assertion_digest=hashlib.sha256(assertion.encode()).hexdigest(),
        personal_data=personal,
        eligibility=Eligibility(
            income_within_limit=eligibility.income_within_limit,
            deposits_within_limit=eligibility.deposits_within_limit,
            excluded=eligibility.excluded,
            earlier_phase_recipient=eligibility.earlier_phase_recipient,
        ),
        guardian_consent=guardian_consent(
            request.guardian_consent if request.HasField("guardian_consent") else None,
            minor=age_on(born, today) < AGE_OF_MAJORITY,
            now=now,
        ),
    )


def _tax_status(status: resources_pb2.TaxStatus) -> TaxStatus:
    years = sorted(set(status.years_filed))
    if len(years) != len(status.years_filed):
        raise invalid_field(
            "merchant.tax_status.years_filed", "merchant.tax_status.years_filed has duplicates"
        )
    if any(not MIN_TAX_YEAR <= year <= MAX_TAX_YEAR for year in years):
        raise invalid_field(
            "merchant.tax_status.years_filed",
            f"tax years must be between {MIN_TAX_YEAR} and {MAX_TAX_YEAR}",
        )
    return TaxStatus(
        vat_registered=status.vat_registered,
        corporate_income_tax=status.corporate_income_tax,
        personal_income_tax_s40=status.personal_income_tax_s40,
        years_filed=tuple(years),
    )


def phone_number(value: str, *, field: str) -> str:
    if not is_valid_mobile_number(value):
        raise errors.invalid_phone_number(field)
    return value


def create_merchant(
    request: service_pb2.CreateMerchantRequest,
    tokenizer: CitizenIdTokenizer,
    districts: DistrictTable,
) -> NewMerchant:
    key = request_id(request.request_id)
    if not request.HasField("merchant"):
        raise invalid_field("merchant", "merchant must be set")
    merchant = request.merchant
    tax_id(merchant.tax_id, field="merchant.tax_id")
    display_name = bounded_text(
        merchant.display_name,
        field="merchant.display_name",
        max_length=MAX_DISPLAY_NAME_LENGTH,
        required=True,
    )
    size_class = size_class_from_proto(merchant.size_class)
    if size_class is None:
        raise invalid_field("merchant.size_class", "merchant.size_class must be set")
    if _CATEGORY.fullmatch(merchant.category) is None:
        raise invalid_field(
            "merchant.category",
            "merchant.category must be a lower-case code such as 'groceries' "
            "(letters, digits and '_', at most 40)",
        )
    channel = channel_from_proto(merchant.channel)
    if channel is None:
        raise invalid_field("merchant.channel", "merchant.channel must be set")
    settlement_account = bounded_text(
        merchant.settlement_account,
        field="merchant.settlement_account",
        max_length=MAX_SETTLEMENT_ACCOUNT_LENGTH,
    )
    phone = (
        tokenizer.phone_token(phone_number(merchant.phone_number, field="merchant.phone_number"))
        if merchant.phone_number
        else None
    )
    return NewMerchant(
        request_id=key,
        profile=MerchantProfile(
            tax_id=merchant.tax_id,
            display_name=display_name,
            district_code=district_code(
                merchant.district_code, field="merchant.district_code", districts=districts
            ),
            size_class=size_class,
            hosting_participant_id=hosting_participant(
                merchant.hosting_participant, field="merchant.hosting_participant"
            ),
            category=merchant.category,
            channel=channel,
            tax_status=_tax_status(merchant.tax_status),
            settlement_account=settlement_account,
            phone_token=phone,
        ),
    )


def create_credential(
    request: service_pb2.CreateParticipantCredentialRequest,
    *,
    now: datetime,
    participant_uri_prefix: str,
) -> NewCredential:
    """A validated certificate or assertion key. A certificate's URI SAN must be exactly
    ``{participant_uri_prefix}{id}``, the identity the edge reads from it, so a participant
    can never register a certificate that speaks for another."""
    key = request_id(request.request_id)
    participant_id = parse_name(request.parent, "participants", field="parent")
    credential = request.credential
    kind = credential_kind_from_proto(credential.kind)
    try:
        if kind is CredentialKind.CLIENT_CERTIFICATE:
            facts = parse_client_certificate(credential.certificate_pem, now=now)
            expected = participant_uri_prefix + participant_id
            if facts.san_uri != expected:
                raise errors.invalid_credential(
                    "CERTIFICATE_NAMES_ANOTHER_PARTICIPANT",
                    f"the certificate's URI SAN must be {expected}",
                    "credential.certificate_pem",
                )
            return NewCredential(
                request_id=key,
                participant_id=participant_id,
                material=CredentialMaterial(
                    kind=kind,
                    certificate_sha256=facts.sha256,
                    certificate_subject=facts.subject,
                    certificate_san_uri=facts.san_uri,
                ),
                not_before=facts.not_before,
                not_after=facts.not_after,
            )
        if kind is CredentialKind.ASSERTION_KEY:
            jwk = parse_assertion_key(credential.public_jwk)
            not_before, not_after = _validity(credential, now=now)
            return NewCredential(
                request_id=key,
                participant_id=participant_id,
                material=CredentialMaterial(kind=kind, key_id=jwk.key_id, public_jwk=jwk.jwk_json),
                not_before=not_before,
                not_after=not_after,
            )
    except CredentialError as error:
        raise errors.invalid_credential(error.reason, str(error), error.field) from None
    raise invalid_field("credential.kind", "credential.kind must be set")


def _validity(
    credential: resources_pb2.ParticipantCredential, *, now: datetime
) -> tuple[datetime, datetime]:
    for field in ("not_before", "not_after"):
        if not credential.HasField(field):
            raise invalid_field(f"credential.{field}", f"credential.{field} must be set")
    not_before = credential.not_before.ToDatetime(tzinfo=UTC)
    not_after = credential.not_after.ToDatetime(tzinfo=UTC)
    if not_after <= not_before or not_after <= now:
        raise invalid_field(
            "credential.not_after",
            "credential.not_after must be after not_before and in the future",
        )
    return not_before, not_after


_CREDENTIAL_NAME = re.compile(r"participants/([a-z0-9][a-z0-9-]{0,62})/credentials/(k[0-9a-f]{20})")


def credential_name(name: str) -> tuple[str, str]:
    """(participant id, credential id) of ``participants/{p}/credentials/{c}``."""
    match = _CREDENTIAL_NAME.fullmatch(name)
    if match is None:
        raise invalid_field("name", "name must be participants/{participant}/credentials/{id}")
    return match[1], match[2]


def identity_assertion(value: str) -> str:
    if not value or len(value) > MAX_ASSERTION_LENGTH:
        raise invalid_field(
            "identity_assertion",
            f"identity_assertion must be an ID token of 1 to {MAX_ASSERTION_LENGTH} characters",
        )
    return value


def request_binding(value: str) -> str:
    """The caller's name for its request (opaque to identity): printable, at most 128."""
    if len(value) > MAX_REFERENCE_LENGTH or not value.isprintable():
        raise invalid_field(
            "request_binding",
            f"request_binding must be at most {MAX_REFERENCE_LENGTH} printable characters",
        )
    return value


def payment_amount(request: service_pb2.VerifyPaymentPartiesRequest) -> Amount | None:
    """The payment's amount, a positive THB amount, or None when the caller sent none."""
    if not request.HasField("amount"):
        return None
    return Amount(request.amount.currency_code, positive_satang(request.amount))


def begin_wallet_move(request: service_pb2.BeginWalletMoveRequest) -> NewWalletMove:
    citizen = parse_name(request.parent, "citizens", field="parent")
    if not is_valid_id(request.wallet_move_id):
        raise invalid_field(
            "wallet_move_id",
            "wallet_move_id must be 1 to 63 characters of [a-z0-9-], not starting with a hyphen",
        )
    assertion = identity_assertion(request.identity_assertion)
    return NewWalletMove(
        citizen_id=citizen,
        wallet_move_id=request.wallet_move_id,
        to_participant_id=hosting_participant(request.to_participant, field="to_participant"),
        identity_assertion=assertion,
        assertion_digest=hashlib.sha256(assertion.encode()).hexdigest(),
    )


def wallet_move_name(name: str) -> tuple[str, str]:
    """``(citizen_id, wallet_move_id)`` of ``citizens/{citizen}/walletMoves/{wallet_move}``."""
    citizen_part, separator, move_id = name.partition("/walletMoves/")
    if separator and is_valid_id(move_id):
        return parse_name(citizen_part, "citizens"), move_id
    raise invalid_field(
        "name", "name must look like 'citizens/{citizen}/walletMoves/{wallet_move}'"
    )
