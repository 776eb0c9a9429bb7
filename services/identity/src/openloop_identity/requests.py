"""Validation of incoming requests into domain values, before any database work.

Every client mistake becomes INVALID_ARGUMENT naming the offending field (as a
path from the request, for example ``merchant.tax_id``). A bad citizen ID is
reported without echoing it.
"""

from __future__ import annotations

import re

import grpc

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity import errors
from openloop_identity.convert import channel_from_proto, role_from_proto, size_class_from_proto
from openloop_identity.domain.districts import DistrictTable
from openloop_identity.domain.model import (
    MerchantProfile,
    NewCitizen,
    NewMerchant,
    NewParticipant,
    TaxStatus,
)
from openloop_identity.domain.phone import is_valid_mobile_number
from openloop_identity.domain.thai_id import is_valid_citizen_id, is_valid_juristic_tax_id
from openloop_identity.pii import CitizenIdTokenizer
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
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
    )


def enroll_citizen(
    request: service_pb2.EnrollCitizenRequest,
    tokenizer: CitizenIdTokenizer,
    districts: DistrictTable,
) -> NewCitizen:
    key = request_id(request.request_id)
    token = tokenizer.token(citizen_id(request.citizen_id))
    return NewCitizen(
        request_id=key,
        citizen_token=token,
        home_district_code=district_code(
            request.home_district_code, field="home_district_code", districts=districts
        ),
        hosting_participant_id=hosting_participant(
            request.hosting_participant, field="hosting_participant"
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
