"""Cases that obey every rule of the default rule set, changed one fact at a time.

Shared by the rules service's tests (imported as a plain module: test files have unique
basenames and no packages).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from openloop.common.v1 import money_pb2, party_pb2
from openloop.rules.v1 import resources_pb2

DEFAULT_VERSION = "digital-wallet-2025.2"
NOW = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
"""10:00 in Bangkok, 1 June 2025: phase 3 is running, electronics are on the negative list."""


def citizen(**fields: Any) -> party_pb2.PartyFacts:
    values: dict[str, Any] = {
        "party": "citizens/c1",
        "kind": party_pb2.PARTY_KIND_CITIZEN,
        "hosting_participant": "participants/bank-a",
        "district_code": "1001",
        "age_years": 18,
        "identity_verified": True,
        "authentication_level": "2.1",
    }
    values.update(fields)
    return party_pb2.PartyFacts(**values)


def merchant(**fields: Any) -> party_pb2.PartyFacts:
    values: dict[str, Any] = {
        "party": "merchants/m1",
        "kind": party_pb2.PARTY_KIND_MERCHANT,
        "hosting_participant": "participants/bank-b",
        "district_code": "1001",
        "size_class": party_pb2.MERCHANT_SIZE_CLASS_SMALL_SHOP,
        "category": "groceries",
        "sells_in_person": True,
        "tax_registered": True,
        "tax_years_filed": [2023, 2024],
    }
    values.update(fields)
    return party_pb2.PartyFacts(**values)


def payment(scope: str = "round1_payment", **fields: Any) -> resources_pb2.PaymentFacts:
    """A compliant case of ``scope`` with ``fields`` of PaymentFacts replaced."""
    values: dict[str, Any] = {
        "amount": money_pb2.Money(currency_code="THB", amount_satang=5_000),
        "channel": resources_pb2.CHANNEL_IN_PERSON,
        "goods_category": "groceries",
    }
    if scope == "round1_payment":
        values.update(payer=citizen(), payee=merchant())
    elif scope == "round2_payment":
        values.update(payer=merchant(), payee=merchant(party="merchants/m2", district_code="5001"))
    elif scope == "cash_out":
        values.update(payer=merchant(), receipts_round=resources_pb2.RECEIPTS_ROUND_ROUND2)
    elif scope == "refund":
        values.update(payer=merchant(), payee=citizen())
    values.update(fields)
    return resources_pb2.PaymentFacts(**values)


def enrolment(**fields: Any) -> resources_pb2.EnrolmentFacts:
    values: dict[str, Any] = {
        "birth_date": "2006-05-01",
        "thai_national": True,
        "district_code": "1001",
        "assessable_income_satang": 0,
        "deposits_satang": 1_500_000,
        "prisoner": False,
        "welfare_institution_resident": False,
        "earlier_phase_recipient": False,
        "entitlement_already_granted": False,
        "identity_verified": True,
    }
    values.update(fields)
    return resources_pb2.EnrolmentFacts(**values)


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(moment)
    return value
