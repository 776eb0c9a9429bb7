"""Facts from the wire: absent when not supplied, never empty strings that compare equal."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from openloop.common.v1 import money_pb2, party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_rules.facts import payment_facts


def test_complete_facts_become_plain_values() -> None:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime(2024, 12, 1, 9, 30, tzinfo=UTC))
    facts = payment_facts(
        resources_pb2.PaymentFacts(
            payer=party_pb2.PartyFacts(
                party="citizens/c1",
                kind=party_pb2.PARTY_KIND_CITIZEN,
                hosting_participant="participants/bank-a",
                district_code="1001",
            ),
            payee=party_pb2.PartyFacts(
                party="merchants/m1",
                kind=party_pb2.PARTY_KIND_MERCHANT,
                hosting_participant="participants/bank-b",
                district_code="1002",
                size_class=party_pb2.MERCHANT_SIZE_CLASS_LARGE_CHAIN,
            ),
            amount=money_pb2.Money(currency_code="THB", amount_satang=12_345),
            channel=resources_pb2.CHANNEL_IN_PERSON,
            payment_time=stamp,
        )
    )
    assert facts.missing == ()
    assert facts.values == {
        "payer": {
            "party": "citizens/c1",
            "kind": "CITIZEN",
            "hosting_participant": "participants/bank-a",
            "district_code": "1001",
        },
        "payee": {
            "party": "merchants/m1",
            "kind": "MERCHANT",
            "hosting_participant": "participants/bank-b",
            "district_code": "1002",
            "size_class": "LARGE_CHAIN",
        },
        "amount_satang": 12_345,
        "currency_code": "THB",
        "channel": "IN_PERSON",
        "payment_time": datetime(2024, 12, 1, 9, 30, tzinfo=UTC),
    }


def test_unsupplied_facts_are_absent_and_reported() -> None:
    facts = payment_facts(
        resources_pb2.PaymentFacts(
            payer=party_pb2.PartyFacts(party="citizens/c1", kind=99),  # type: ignore[arg-type]
            payee=party_pb2.PartyFacts(
                party="merchants/m1",
                kind=party_pb2.PARTY_KIND_MERCHANT,
                hosting_participant="participants/bank-b",
                district_code="1002",
            ),
        )
    )
    assert facts.values == {
        "payer": {"party": "citizens/c1"},
        "payee": {
            "party": "merchants/m1",
            "kind": "MERCHANT",
            "hosting_participant": "participants/bank-b",
            "district_code": "1002",
        },
    }
    assert facts.missing == (
        "payer.kind",
        "payer.hosting_participant",
        "payer.district_code",
        "payee.size_class",
    )
