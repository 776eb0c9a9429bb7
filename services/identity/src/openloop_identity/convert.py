"""Translation between the domain records and the wire messages."""

from __future__ import annotations

from openloop.common.v1 import party_pb2
from openloop.identity.v1 import resources_pb2
from openloop_identity.domain.model import (
    Citizen,
    Merchant,
    MerchantSizeClass,
    Participant,
    ParticipantRole,
    PartyFacts,
    PartyKind,
)
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp

_ROLE_PREFIX = "PARTICIPANT_ROLE_"
_STATE_PREFIX = "PARTICIPANT_STATE_"
_SIZE_PREFIX = "MERCHANT_SIZE_CLASS_"
_KIND_PREFIX = "PARTY_KIND_"
_COLLECTIONS = {PartyKind.CITIZEN: "citizens", PartyKind.MERCHANT: "merchants"}


def role_from_proto(value: resources_pb2.ParticipantRole.ValueType) -> ParticipantRole | None:
    """The role, or None for UNSPECIFIED and values this build does not know."""
    if value not in resources_pb2.ParticipantRole.values():
        return None
    name = resources_pb2.ParticipantRole.Name(value).removeprefix(_ROLE_PREFIX)
    return ParticipantRole.__members__.get(name)


def size_class_from_proto(
    value: party_pb2.MerchantSizeClass.ValueType,
) -> MerchantSizeClass | None:
    if value not in party_pb2.MerchantSizeClass.values():
        return None
    name = party_pb2.MerchantSizeClass.Name(value).removeprefix(_SIZE_PREFIX)
    return MerchantSizeClass.__members__.get(name)


def participant_to_proto(participant: Participant) -> resources_pb2.Participant:
    return resources_pb2.Participant(
        name=format_name("participants", participant.participant_id),
        display_name=participant.display_name,
        role=resources_pb2.ParticipantRole.Value(_ROLE_PREFIX + participant.role.value),
        state=resources_pb2.ParticipantState.Value(_STATE_PREFIX + participant.state.value),
        create_time=to_timestamp(participant.create_time),
    )


def citizen_to_proto(citizen: Citizen) -> resources_pb2.Citizen:
    return resources_pb2.Citizen(
        name=format_name("citizens", citizen.citizen_id),
        home_district_code=citizen.home_district_code,
        hosting_participant=format_name("participants", citizen.hosting_participant_id),
        create_time=to_timestamp(citizen.create_time),
    )


def _size_class_to_proto(
    size_class: MerchantSizeClass | None,
) -> party_pb2.MerchantSizeClass.ValueType:
    if size_class is None:
        return party_pb2.MERCHANT_SIZE_CLASS_UNSPECIFIED
    return party_pb2.MerchantSizeClass.Value(_SIZE_PREFIX + size_class.value)


def merchant_to_proto(merchant: Merchant) -> resources_pb2.Merchant:
    return resources_pb2.Merchant(
        name=format_name("merchants", merchant.merchant_id),
        tax_id=merchant.tax_id,
        display_name=merchant.display_name,
        district_code=merchant.district_code,
        size_class=_size_class_to_proto(merchant.size_class),
        hosting_participant=format_name("participants", merchant.hosting_participant_id),
        create_time=to_timestamp(merchant.create_time),
    )


def party_facts_to_proto(facts: PartyFacts) -> party_pb2.PartyFacts:
    return party_pb2.PartyFacts(
        party=format_name(_COLLECTIONS[facts.kind], facts.party_id),
        kind=party_pb2.PartyKind.Value(_KIND_PREFIX + facts.kind.value),
        hosting_participant=format_name("participants", facts.hosting_participant_id),
        district_code=facts.district_code,
        size_class=_size_class_to_proto(facts.size_class),
    )
