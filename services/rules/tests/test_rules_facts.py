"""Facts from the wire: absent when not supplied, checked when malformed, the spending
deadline in calendar months, and personal data kept out of recorded decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_rules import facts as facts_module
from openloop_rules.decision import Decision, Outcome
from openloop_rules.facts import enrolment_facts, payment_facts, timestamp_fact
from openloop_rules.program import add_months
from openloop_rules.recorder import DecisionRecorder
from openloop_runtime.errors import DomainError
from services.rules.tests.rules_cases import NOW, enrolment, merchant, payment, stamp


def test_unsupplied_facts_are_absent() -> None:
    facts = payment_facts(
        resources_pb2.PaymentFacts(
            payer=party_pb2.PartyFacts(party="citizens/c1"),
            payee=party_pb2.PartyFacts(kind=party_pb2.PARTY_KIND_MERCHANT),
        ),
        NOW,
        6,
    )
    assert facts["payer__party"] == "citizens/c1"
    assert facts["payee__kind"] == "MERCHANT"
    for absent in (
        "payer__kind",
        "payer__district_code",
        "payee__size_class",
        "transaction__channel",
        "transaction__goods_category",
        "payer__age_years",
    ):
        assert absent not in facts  # fmt: skip
    assert facts["payer__has_first_use"] is False
    assert "payer__spending_deadline" not in facts
    assert facts["clock__now"] == NOW
    assert facts["clock__year"] == 2025


def test_only_wanted_party_facts_are_built() -> None:
    facts = payment_facts(payment(), NOW, 6, wanted={"payee__district_code"})
    assert {name for name in facts if name.startswith(("payer__", "payee__"))} == {
        "payee__district_code",
        "payer__has_first_use",
    }


def test_first_use_gives_a_deadline_in_calendar_months() -> None:
    first_use = datetime(2025, 1, 31, 5, 0, tzinfo=UTC)
    facts = payment_facts(payment(payer_first_use_time=stamp(first_use)), NOW, 1)
    assert facts["payer__has_first_use"] is True
    assert facts["payer__spending_deadline"] == datetime(2025, 2, 28, 5, 0, tzinfo=UTC)
    assert add_months(datetime(2024, 8, 31, 17, 0, tzinfo=UTC), 6) == datetime(
        2025, 2, 28, 17, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        (payment(goods_category="Tobacco!"), "facts.goods_category"),
        (payment(channel=9), "facts.channel"),
        (payment(payer=party_pb2.PartyFacts(party="people/p1")), "facts.payer.party"),
    ],
)
def test_malformed_facts_are_the_callers_mistake(
    facts: resources_pb2.PaymentFacts, field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        payment_facts(facts, NOW, 6)
    assert caught.value.reason == "INVALID_FIELD"
    assert caught.value.metadata["field"] == field


def test_a_bad_birth_date_is_refused_without_echoing_it() -> None:
    with pytest.raises(DomainError) as caught:
        enrolment_facts(enrolment(birth_date="2006-13-01"), NOW)
    assert caught.value.metadata["field"] == "enrolment_facts.birth_date"
    assert "2006-13-01" not in caught.value.message


def test_enrolments_are_never_recorded() -> None:
    recorder = DecisionRecorder(capacity=10)
    allowed = Decision(Outcome.ALLOW, (), "v", ())
    recorder.offer(NOW, "digital-wallet", "enrolment", allowed, None)
    recorder.offer(NOW, "digital-wallet", "round1_payment", allowed, payment())
    assert [item.scope for item in recorder._pending] == ["round1_payment"]


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, 0), (1_717_210_800, 999_999_999), (-62135596800, 0), (253402300799, 1_500)],
)
def test_timestamps_convert_as_protobuf_does(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert timestamp_fact(stamp, "t") == stamp.ToDatetime(tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(-62135596801, 0), (253402300800, 0), (0, -1), (0, 1_000_000_000)]
)
def test_invalid_timestamps_are_refused_even_when_not_wanted(seconds: int, nanos: int) -> None:
    bad = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(DomainError):
        timestamp_fact(bad, "t")
    for field in ("payment_time", "payer_first_use_time"):
        message = payment()
        getattr(message, field).CopyFrom(bad)
        with pytest.raises(DomainError) as caught:
            payment_facts(message, NOW, 6, wanted=frozenset({"payer__party"}))
        assert field in str(caught.value)


def test_a_value_seen_valid_does_not_let_a_malformed_one_through() -> None:
    wanted = frozenset({"payee__district_code"})
    for _ in range(2):
        assert payment_facts(payment(), NOW, 6, wanted=wanted)["payee__district_code"] == "1001"
    with pytest.raises(DomainError, match="district_code"):
        payment_facts(payment(payee=merchant(district_code="10O1")), NOW, 6, wanted=wanted)
    for index in range(5000):  # the cache of valid values stays bounded
        payment_facts(payment(payee=merchant(district_code=f"{index:04d}")), NOW, 6)
    assert all(len(values) <= 4096 for values in facts_module._VALID.values())
