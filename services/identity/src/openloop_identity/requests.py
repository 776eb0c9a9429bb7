"""Validation of incoming requests into domain values, before any database work.

Every client mistake becomes INVALID_ARGUMENT naming the offending field (as a
path from the request, for example ``merchant.tax_id``). A bad citizen ID is
reported without echoing it.
"""

from __future__ import annotations

import re

import grpc

from openloop.identity.v1 import service_pb2
from openloop_identity.convert import role_from_proto, size_class_from_proto
from openloop_identity.domain.model import NewCitizen, NewMerchant, NewParticipant
from openloop_identity.domain.thai_id import is_valid_citizen_id, is_valid_juristic_tax_id
from openloop_identity.pii import CitizenIdTokenizer
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.names import is_valid_id, parse_name
from openloop_runtime.text import bounded_text

_DISTRICT_CODE = re.compile(r"[0-9]{4}")
MAX_REQUEST_ID_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 200


def request_id(value: str) -> str:
    if not value or len(value) > MAX_REQUEST_ID_LENGTH or not value.isprintable():
        raise invalid_field(
            "request_id", f"request_id must be 1 to {MAX_REQUEST_ID_LENGTH} printable characters"
        )
    return value


def district_code(value: str, *, field: str) -> str:
    if _DISTRICT_CODE.fullmatch(value) is None:
        raise invalid_field(field, f"{field} must be a 4-digit DOPA district code")
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
    request: service_pb2.EnrollCitizenRequest, tokenizer: CitizenIdTokenizer
) -> NewCitizen:
    key = request_id(request.request_id)
    token = tokenizer.token(citizen_id(request.citizen_id))
    return NewCitizen(
        request_id=key,
        citizen_token=token,
        home_district_code=district_code(request.home_district_code, field="home_district_code"),
        hosting_participant_id=hosting_participant(
            request.hosting_participant, field="hosting_participant"
        ),
    )


def create_merchant(request: service_pb2.CreateMerchantRequest) -> NewMerchant:
    key = request_id(request.request_id)
    if not request.HasField("merchant"):
        raise invalid_field("merchant", "merchant must be set")
    merchant = request.merchant
    if not is_valid_juristic_tax_id(merchant.tax_id):
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_INVALID_TAX_ID,
            "merchant.tax_id must be 13 digits starting with 0, with a valid check digit",
            {"field": "merchant.tax_id"},
        )
    display_name = bounded_text(
        merchant.display_name,
        field="merchant.display_name",
        max_length=MAX_DISPLAY_NAME_LENGTH,
        required=True,
    )
    size_class = size_class_from_proto(merchant.size_class)
    if size_class is None:
        raise invalid_field("merchant.size_class", "merchant.size_class must be set")
    return NewMerchant(
        request_id=key,
        tax_id=merchant.tax_id,
        display_name=display_name,
        district_code=district_code(merchant.district_code, field="merchant.district_code"),
        size_class=size_class,
        hosting_participant_id=hosting_participant(
            merchant.hosting_participant, field="merchant.hosting_participant"
        ),
    )
