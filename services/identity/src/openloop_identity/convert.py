"""Translation between the domain records and the wire messages."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from google.protobuf.descriptor import FileDescriptor

from openloop.common.v1 import party_pb2
from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.domain.model import (
    Capability,
    Citizen,
    CredentialKind,
    Merchant,
    MerchantChannel,
    MerchantSizeClass,
    Participant,
    ParticipantCredential,
    ParticipantRole,
    PartyFacts,
    PartyKind,
    ResolvedParty,
    TaxStatus,
    WalletMove,
)
from openloop_identity.domain.wallets import merchant_wallet_account, wallet_move_name
from openloop_runtime.money import thb
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp

_ROLE_PREFIX = "PARTICIPANT_ROLE_"
_STATE_PREFIX = "PARTICIPANT_STATE_"
_SIZE_PREFIX = "MERCHANT_SIZE_CLASS_"
_KIND_PREFIX = "PARTY_KIND_"
_CHANNEL_PREFIX = "MERCHANT_CHANNEL_"
_COLLECTIONS = {PartyKind.CITIZEN: "citizens", PartyKind.MERCHANT: "merchants"}
_E = TypeVar("_E", bound=Enum)
_RESOURCES: FileDescriptor = resources_pb2.DESCRIPTOR
_PARTY: FileDescriptor = party_pb2.DESCRIPTOR


def _from_proto(
    file: FileDescriptor, enum: str, value: int, prefix: str, domain: type[_E]
) -> _E | None:
    """The domain enumeration member named like the wire value without its prefix; None for
    UNSPECIFIED and for values this build does not know."""
    found = file.enum_types_by_name[enum].values_by_number.get(value)
    return None if found is None else domain.__members__.get(found.name.removeprefix(prefix))


def role_from_proto(value: int) -> ParticipantRole | None:
    return _from_proto(_RESOURCES, "ParticipantRole", value, _ROLE_PREFIX, ParticipantRole)


def size_class_from_proto(value: int) -> MerchantSizeClass | None:
    return _from_proto(_PARTY, "MerchantSizeClass", value, _SIZE_PREFIX, MerchantSizeClass)


def capability_from_proto(value: int) -> Capability | None:
    return _from_proto(
        _RESOURCES, "ParticipantCapability", value, "PARTICIPANT_CAPABILITY_", Capability
    )


def channel_from_proto(value: int) -> MerchantChannel | None:
    return _from_proto(_RESOURCES, "MerchantChannel", value, _CHANNEL_PREFIX, MerchantChannel)


def credential_kind_from_proto(value: int) -> CredentialKind | None:
    return _from_proto(_RESOURCES, "CredentialKind", value, "CREDENTIAL_KIND_", CredentialKind)


def credential_to_proto(credential: ParticipantCredential) -> resources_pb2.ParticipantCredential:
    material = credential.material
    message = resources_pb2.ParticipantCredential(
        name=format_name("participants", credential.participant_id)
        + "/credentials/"
        + credential.credential_id,
        kind=resources_pb2.CredentialKind.Value("CREDENTIAL_KIND_" + material.kind.value),
        certificate_sha256=material.certificate_sha256,
        certificate_subject=material.certificate_subject,
        certificate_san_uri=material.certificate_san_uri,
        public_jwk=material.public_jwk,
        key_id=material.key_id,
        not_before=to_timestamp(credential.not_before),
        not_after=to_timestamp(credential.not_after),
        create_time=to_timestamp(credential.create_time),
    )
    if credential.revoke_time is not None:
        message.revoke_time.CopyFrom(to_timestamp(credential.revoke_time))
    return message


def participant_to_proto(participant: Participant) -> resources_pb2.Participant:
    return resources_pb2.Participant(
        name=format_name("participants", participant.participant_id),
        display_name=participant.display_name,
        role=resources_pb2.ParticipantRole.Value(_ROLE_PREFIX + participant.role.value),
        state=resources_pb2.ParticipantState.Value(_STATE_PREFIX + participant.state.value),
        create_time=to_timestamp(participant.create_time),
        capabilities=[
            resources_pb2.ParticipantCapability.Value("PARTICIPANT_CAPABILITY_" + c.value)
            for c in sorted(participant.capabilities)
        ],
    )


def citizen_to_proto(citizen: Citizen) -> resources_pb2.Citizen:
    """The citizen as returned: no citizen ID, name, birth date or address."""
    eligibility = citizen.eligibility
    message = resources_pb2.Citizen(
        name=format_name("citizens", citizen.citizen_id),
        home_district_code=citizen.home_district_code,
        hosting_participant=format_name("participants", citizen.hosting_participant_id),
        create_time=to_timestamp(citizen.create_time),
        identity_assurance_level=citizen.identity_assurance_level or "",
        eligibility=resources_pb2.EligibilityAttestations(
            income_within_limit=eligibility.income_within_limit,
            deposits_within_limit=eligibility.deposits_within_limit,
            excluded=eligibility.excluded,
            earlier_phase_recipient=eligibility.earlier_phase_recipient,
        ),
    )
    message.wallet_account = citizen.wallet_account
    if citizen.wallet_move_id is not None:
        message.wallet_move = wallet_move_name(citizen.citizen_id, citizen.wallet_move_id)
    if citizen.erase_time is not None:
        message.erase_time.CopyFrom(to_timestamp(citizen.erase_time))
    consent = citizen.guardian_consent
    if consent is not None:
        message.guardian_consent.consent_reference = consent.reference
        message.guardian_consent.consent_time.CopyFrom(to_timestamp(consent.time))
    return message


def _size_class_to_proto(
    size_class: MerchantSizeClass | None,
) -> party_pb2.MerchantSizeClass.ValueType:
    if size_class is None:
        return party_pb2.MERCHANT_SIZE_CLASS_UNSPECIFIED
    return party_pb2.MerchantSizeClass.Value(_SIZE_PREFIX + size_class.value)


def _tax_status_to_proto(status: TaxStatus) -> resources_pb2.TaxStatus:
    return resources_pb2.TaxStatus(
        vat_registered=status.vat_registered,
        corporate_income_tax=status.corporate_income_tax,
        personal_income_tax_s40=status.personal_income_tax_s40,
        years_filed=status.years_filed,
    )


def merchant_to_proto(merchant: Merchant) -> resources_pb2.Merchant:
    """The merchant as returned: the phone number is input only and never comes back."""
    profile = merchant.profile
    return resources_pb2.Merchant(
        name=format_name("merchants", merchant.merchant_id),
        tax_id=profile.tax_id,
        display_name=profile.display_name,
        district_code=profile.district_code,
        size_class=_size_class_to_proto(profile.size_class),
        hosting_participant=format_name("participants", profile.hosting_participant_id),
        create_time=to_timestamp(merchant.create_time),
        category=profile.category,
        channel=resources_pb2.MerchantChannel.Value(_CHANNEL_PREFIX + profile.channel.value),
        tax_status=_tax_status_to_proto(profile.tax_status),
        settlement_account=profile.settlement_account,
        wallet_account=merchant_wallet_account(merchant.merchant_id),
    )


def party_kind_to_proto(kind: PartyKind) -> party_pb2.PartyKind.ValueType:
    return party_pb2.PartyKind.Value(_KIND_PREFIX + kind.value)


def party_name(kind: PartyKind, party_id: str) -> str:
    return format_name(_COLLECTIONS[kind], party_id)


def resolved_alias_to_proto(
    party: ResolvedParty, qr_amount_satang: int | None
) -> service_pb2.ResolveAliasResponse:
    response = service_pb2.ResolveAliasResponse(
        party=party_name(party.kind, party.party_id),
        kind=party_kind_to_proto(party.kind),
        hosting_participant=format_name("participants", party.hosting_participant_id),
    )
    if qr_amount_satang is not None:
        response.qr_amount.CopyFrom(thb(qr_amount_satang))
    return response


def party_facts_to_proto(facts: PartyFacts) -> party_pb2.PartyFacts:
    return party_pb2.PartyFacts(
        party=party_name(facts.kind, facts.party_id),
        kind=party_kind_to_proto(facts.kind),
        hosting_participant=format_name("participants", facts.hosting_participant_id),
        district_code=facts.district_code,
        size_class=_size_class_to_proto(facts.size_class),
        age_years=facts.age_years,
        identity_verified=facts.identity_verified,
        authentication_level=facts.authentication_level,
        category=facts.category,
        sells_in_person=facts.sells_in_person,
        tax_registered=facts.tax_registered,
        tax_years_filed=facts.tax_years_filed,
    )


def wallet_move_to_proto(move: WalletMove) -> resources_pb2.WalletMove:
    message = resources_pb2.WalletMove(
        name=wallet_move_name(move.citizen_id, move.wallet_move_id),
        from_participant=format_name("participants", move.from_participant_id),
        to_participant=format_name("participants", move.to_participant_id),
        from_account=move.from_account,
        to_account=move.to_account,
        state=resources_pb2.WalletMove.State.Value("STATE_" + move.state.value),
        create_time=to_timestamp(move.create_time),
    )
    if move.complete_time is not None:
        message.complete_time.CopyFrom(to_timestamp(move.complete_time))
    return message
