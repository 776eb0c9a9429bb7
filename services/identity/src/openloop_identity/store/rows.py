"""Database rows to domain records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from openloop_identity.domain.model import (
    Capability,
    Citizen,
    Eligibility,
    GuardianConsent,
    Merchant,
    MerchantChannel,
    MerchantProfile,
    MerchantSizeClass,
    Participant,
    ParticipantRole,
    ParticipantState,
    TaxStatus,
)


def participant(row: Row[Any]) -> Participant:
    return Participant(
        participant_id=row.participant_id,
        display_name=row.display_name,
        role=ParticipantRole(row.role),
        state=ParticipantState(row.state),
        create_time=row.create_time,
        capabilities=frozenset(Capability(c) for c in row.capabilities),
    )


def citizen(row: Row[Any]) -> Citizen:
    consent = (
        None
        if row.guardian_consent_reference is None
        else GuardianConsent(row.guardian_consent_reference, row.guardian_consent_time)
    )
    return Citizen(
        citizen_id=row.citizen_id,
        home_district_code=row.home_district_code,
        hosting_participant_id=row.hosting_participant_id,
        create_time=row.create_time,
        identity_assurance_level=row.identity_assurance_level,
        eligibility=Eligibility(
            income_within_limit=row.income_within_limit,
            deposits_within_limit=row.deposits_within_limit,
            excluded=row.excluded,
            earlier_phase_recipient=row.earlier_phase_recipient,
        ),
        guardian_consent=consent,
        erase_time=row.erase_time,
        wallet_generation=row.wallet_generation,
        wallet_move_id=row.wallet_move_id,
    )


def merchant_profile(row: Row[Any]) -> MerchantProfile:
    return MerchantProfile(
        tax_id=row.tax_id,
        display_name=row.display_name,
        district_code=row.district_code,
        size_class=MerchantSizeClass(row.size_class),
        hosting_participant_id=row.hosting_participant_id,
        category=row.category,
        channel=MerchantChannel(row.channel),
        tax_status=TaxStatus(
            vat_registered=row.vat_registered,
            corporate_income_tax=row.corporate_income_tax,
            personal_income_tax_s40=row.personal_income_tax_s40,
            years_filed=tuple(row.tax_years_filed),
        ),
        settlement_account=row.settlement_account,
        phone_token=row.phone_token,
    )


def merchant(row: Row[Any]) -> Merchant:
    return Merchant(
        merchant_id=row.merchant_id, profile=merchant_profile(row), create_time=row.create_time
    )
