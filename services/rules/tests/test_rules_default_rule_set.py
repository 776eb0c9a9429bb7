"""The program's real rules (the default, digital-wallet-2025.2): one passing and one failing
case per rule, each failing case asserting the rule's reason code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_rules.compiler import compile_text
from openloop_rules.decision import Decision, Outcome
from openloop_rules.evaluator import CompiledRuleSet
from openloop_rules.facts import enrolment_facts, payment_facts
from openloop_rules.shipped import shipped_programs, shipped_rule_set
from services.rules.tests.rules_cases import (
    DEFAULT_VERSION,
    NOW,
    citizen,
    enrolment,
    merchant,
    payment,
    stamp,
)

LARGE = party_pb2.MERCHANT_SIZE_CLASS_LARGE_CHAIN


@pytest.fixture(scope="module")
def rules() -> CompiledRuleSet:
    programs = {key: shipped.program for key, shipped in shipped_programs().items()}
    return compile_text(shipped_rule_set(DEFAULT_VERSION).document, programs)


def decide(rules: CompiledRuleSet, scope: str, facts: Any, now: datetime = NOW) -> Decision:
    if scope == "enrolment":
        return rules.evaluate(scope, enrolment_facts(facts, now))
    return rules.evaluate(scope, payment_facts(facts, now, rules.spending_deadline_months))


def months_ago(months: int) -> Any:
    return stamp(
        datetime(2025, 6 - months, 1, 3, 0, tzinfo=UTC)
        if months < 6
        else datetime(2024, 12 + 6 - months, 1, 3, 0, tzinfo=UTC)
    )


CASES = [
    # rule, scope, passing facts, failing facts, reason code
    ("E1", "enrolment", enrolment(birth_date="2004-09-16"), enrolment(birth_date="2004-09-15"),
     "AGE_OUTSIDE_COHORT"),
    ("E1", "enrolment", enrolment(birth_date="2008-09-16"), enrolment(birth_date="2008-09-17"),
     "AGE_OUTSIDE_COHORT"),
    ("E2", "enrolment", enrolment(thai_national=True), enrolment(thai_national=False),
     "NOT_A_THAI_NATIONAL"),
    ("E3", "enrolment", enrolment(assessable_income_satang=84_000_000),
     enrolment(assessable_income_satang=84_000_001), "INCOME_ABOVE_LIMIT"),
    ("E4", "enrolment", enrolment(deposits_satang=50_000_000),
     enrolment(deposits_satang=50_000_001), "DEPOSITS_ABOVE_LIMIT"),
    ("E5", "enrolment", enrolment(prisoner=False), enrolment(prisoner=True), "EXCLUDED_PRISONER"),
    ("E6", "enrolment", enrolment(welfare_institution_resident=False),
     enrolment(welfare_institution_resident=True), "EXCLUDED_WELFARE_INSTITUTION_RESIDENT"),
    ("E7", "enrolment", enrolment(earlier_phase_recipient=False),
     enrolment(earlier_phase_recipient=True), "EARLIER_PHASE_RECIPIENT"),
    ("E8", "enrolment", enrolment(entitlement_already_granted=False),
     enrolment(entitlement_already_granted=True), "ENTITLEMENT_ALREADY_GRANTED"),
    ("E9", "enrolment", enrolment(identity_verified=True), enrolment(identity_verified=False),
     "IDENTITY_NOT_VERIFIED"),
    ("R1", "round1_payment", payment(), payment(payee=merchant(district_code="1002")),
     "DISTRICT_MISMATCH"),
    ("R2", "round1_payment", payment(channel=resources_pb2.CHANNEL_IN_PERSON),
     payment(channel=resources_pb2.CHANNEL_ONLINE), "NOT_IN_PERSON"),
    ("R3", "round1_payment", payment(), payment(payee=merchant(size_class=LARGE)),
     "NOT_A_SMALL_SHOP"),
    ("R5", "round2_payment",
     payment("round2_payment", payee=merchant(party="merchants/m9", district_code="9001",
                                              size_class=LARGE)),
     payment("round2_payment", payer=citizen()), "ROUND2_PAYER_NOT_A_MERCHANT"),
    ("R6", "cash_out", payment("cash_out", receipts_round=resources_pb2.RECEIPTS_ROUND_ROUND2),
     payment("cash_out", receipts_round=resources_pb2.RECEIPTS_ROUND_ROUND1),
     "ROUND1_RECEIPTS_NOT_CASHABLE"),
    # A merchant paying itself would turn round-1 receipts into cashable round-2 ones.
    ("R6-SELF", "round2_payment", payment("round2_payment"),
     payment("round2_payment", payee=merchant()), "PAYEE_IS_PAYER"),
    ("R7", "cash_out", payment("cash_out", payer=merchant(tax_years_filed=[2022, 2023, 2024])),
     payment("cash_out", payer=merchant(tax_years_filed=[2024])), "MERCHANT_NOT_IN_TAX_SYSTEM"),
    ("R7", "cash_out", payment("cash_out", payer=merchant(tax_registered=True)),
     payment("cash_out", payer=merchant(tax_registered=False)), "MERCHANT_NOT_IN_TAX_SYSTEM"),
    ("R8", "round1_payment", payment(), payment(payee=citizen(party="citizens/c2")),
     "PAYEE_NOT_A_MERCHANT"),
    ("R8", "round2_payment", payment("round2_payment"),
     payment("round2_payment", payee=citizen(party="citizens/c2")), "PAYEE_NOT_A_MERCHANT"),
    ("R8-CASH", "cash_out", payment("cash_out"), payment("cash_out", payer=citizen()),
     "CITIZEN_CASH_OUT_NOT_ALLOWED"),
    ("R10", "round1_payment", payment(payer_first_use_time=months_ago(5)),
     payment(payer_first_use_time=months_ago(7)), "SPENDING_DEADLINE_PASSED"),
    ("R11", "round1_payment", payment(goods_category="groceries"),
     payment(goods_category="tobacco"), "CATEGORY_ON_NEGATIVE_LIST"),
    ("R11", "round2_payment", payment("round2_payment", goods_category="rice"),
     payment("round2_payment", goods_category="electronics"), "CATEGORY_ON_NEGATIVE_LIST"),
    ("R11-ONLINE", "round2_payment", payment("round2_payment"),
     payment("round2_payment", channel=resources_pb2.CHANNEL_ONLINE), "ONLINE_PURCHASE_EXCLUDED"),
    ("RF1", "refund", payment("refund"), payment("refund", payee=merchant(party="merchants/m2")),
     "REFUND_NOT_MERCHANT_TO_CITIZEN"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule_id", "scope", "passing", "reason"),
    [(rule, scope, passing, reason) for rule, scope, passing, _, reason in CASES],
    ids=[f"{rule}-{reason}-{i}" for i, (rule, _, _, _, reason) in enumerate(CASES)],
)
def test_rule_passes(
    rules: CompiledRuleSet, rule_id: str, scope: str, passing: Any, reason: str
) -> None:
    decision = decide(rules, scope, passing)
    assert rule_id in decision.evaluated_rule_ids
    assert reason not in [v.reason_code for v in decision.violations]
    assert decision.outcome is Outcome.ALLOW, decision.violations
    assert decision.rule_set_version == DEFAULT_VERSION


@pytest.mark.parametrize(
    ("rule_id", "scope", "failing", "reason"),
    [(rule, scope, failing, reason) for rule, scope, _, failing, reason in CASES],
    ids=[f"{rule}-{reason}-{i}" for i, (rule, _, _, _, reason) in enumerate(CASES)],
)
def test_rule_fails_with_its_reason(
    rules: CompiledRuleSet, rule_id: str, scope: str, failing: Any, reason: str
) -> None:
    decision = decide(rules, scope, failing)
    assert decision.outcome is Outcome.DENY
    assert (rule_id, reason) in [(v.rule_id, v.reason_code) for v in decision.violations]
    violation = next(v for v in decision.violations if v.rule_id == rule_id)
    assert violation.explanation_en
    assert violation.explanation_th


def test_every_rule_has_a_passing_and_a_failing_case(rules: CompiledRuleSet) -> None:
    covered = {case[0] for case in CASES}
    every = {rule for scope in rules.scopes for rule in rules.rule_ids(scope)}
    assert covered == every


def test_the_default_differs_from_2025_1_only_by_three_rules(rules: CompiledRuleSet) -> None:
    """2025.1 stays as published (a version never changes); 2025.2 adds E9, R6-SELF and
    R11-ONLINE and is the default a fresh environment activates."""
    programs = {key: shipped.program for key, shipped in shipped_programs().items()}
    before = compile_text(shipped_rule_set("digital-wallet-2025.1").document, programs)
    added = {
        scope: set(rules.rule_ids(scope)) - set(before.rule_ids(scope)) for scope in rules.scopes
    }
    assert {scope: ids for scope, ids in added.items() if ids} == {
        "enrolment": {"E9"},
        "round2_payment": {"R6-SELF", "R11-ONLINE"},
    }
    assert all(set(before.rule_ids(s)) <= set(rules.rule_ids(s)) for s in before.scopes)
    self_payment = payment("round2_payment", payee=merchant())
    assert decide(before, "round2_payment", self_payment).outcome is Outcome.ALLOW
    assert decide(rules, "round2_payment", self_payment).outcome is Outcome.DENY


def test_the_negative_list_is_dated(rules: CompiledRuleSet) -> None:
    phone = payment(goods_category="electronics")
    before = decide(rules, "round1_payment", phone, datetime(2024, 6, 30, 10, tzinfo=UTC))
    after = decide(rules, "round1_payment", phone, datetime(2024, 6, 30, 17, tzinfo=UTC))
    assert before.outcome is Outcome.ALLOW
    assert [v.reason_code for v in after.violations] == ["CATEGORY_ON_NEGATIVE_LIST"]


def test_a_first_payment_has_no_deadline_yet(rules: CompiledRuleSet) -> None:
    decision = decide(rules, "round1_payment", payment())
    assert decision.outcome is Outcome.ALLOW


def test_the_deadline_is_six_calendar_months(rules: CompiledRuleSet) -> None:
    first_use = stamp(datetime(2024, 12, 1, 3, 0, tzinfo=UTC))
    case = payment(payer_first_use_time=first_use)
    last_minute = datetime(2025, 5, 31, 16, 59, tzinfo=UTC)
    assert decide(rules, "round1_payment", case, last_minute).outcome is Outcome.ALLOW
    deadline = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
    assert decide(rules, "round1_payment", case, deadline).outcome is Outcome.DENY


def test_an_enrolment_missing_a_fact_is_denied(rules: CompiledRuleSet) -> None:
    case = enrolment()
    case.ClearField("deposits_satang")
    decision = decide(rules, "enrolment", case)
    assert decision.outcome is Outcome.DENY
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [("E4", "MISSING_FACT")]
    assert "applicant.deposits_satang" in decision.violations[0].explanation_en
