"""Database rows to domain records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from openloop_identity.domain.model import (
    Citizen,
    Merchant,
    MerchantSizeClass,
    Participant,
    ParticipantRole,
    ParticipantState,
)


def participant(row: Row[Any]) -> Participant:
    return Participant(
        participant_id=row.participant_id,
        display_name=row.display_name,
        role=ParticipantRole(row.role),
        state=ParticipantState(row.state),
        create_time=row.create_time,
    )


def citizen(row: Row[Any]) -> Citizen:
    return Citizen(
        citizen_id=row.citizen_id,
        home_district_code=row.home_district_code,
        hosting_participant_id=row.hosting_participant_id,
        create_time=row.create_time,
    )


def merchant(row: Row[Any]) -> Merchant:
    return Merchant(
        merchant_id=row.merchant_id,
        tax_id=row.tax_id,
        display_name=row.display_name,
        district_code=row.district_code,
        size_class=MerchantSizeClass(row.size_class),
        hosting_participant_id=row.hosting_participant_id,
        create_time=row.create_time,
    )
