"""The evaluator on pure data: shipped rules, missing facts and broken rule sets."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from openloop_rules.decision import Outcome
from openloop_rules.evaluator import CompiledRuleSet
from openloop_rules.facts import PaymentFactSet
from openloop_rules.ruleset import RuleSetError
from openloop_rules.shipped import shipped_rule_set, shipped_versions

ROUND1 = "round1_payment"
ROUND2 = "round2_payment"


@pytest.fixture(scope="module")
def default() -> CompiledRuleSet:
    return CompiledRuleSet.from_text(shipped_rule_set("digital-wallet-2024.1").document)


def payment(**overrides: Any) -> PaymentFactSet:
    """A round-1 payment that obeys every shipped rule, with ``payer_x`` / ``payee_x`` changed."""
    payer: dict[str, Any] = {
        "party": "citizens/c1",
        "kind": "CITIZEN",
        "hosting_participant": "participants/bank-a",
        "district_code": "1001",
    }
    payee: dict[str, Any] = {
        "party": "merchants/m1",
        "kind": "MERCHANT",
        "hosting_participant": "participants/bank-b",
        "district_code": "1001",
        "size_class": "SMALL_SHOP",
    }
    for key, value in overrides.items():
        side, field = key.split("_", 1)
        target = payer if side == "payer" else payee
        if value is None:
            target.pop(field, None)
        else:
            target[field] = value
    return PaymentFactSet(
        values={"payer": payer, "payee": payee, "amount_satang": 5_000, "channel": "IN_PERSON"},
        missing=(),
    )


def reasons(decision: Any) -> list[tuple[str, str]]:
    return [(v.rule_id, v.reason_code) for v in decision.violations]


def test_a_compliant_payment_is_allowed(default: CompiledRuleSet) -> None:
    decision = default.evaluate(ROUND1, payment())
    assert decision.outcome is Outcome.ALLOW
    assert decision.violations == ()
    assert decision.rule_set_version == "digital-wallet-2024.1"
    assert decision.evaluated_rule_ids == ("R1", "R3", "R8")


def test_r1_district_mismatch(default: CompiledRuleSet) -> None:
    decision = default.evaluate(ROUND1, payment(payee_district_code="1002"))
    assert decision.outcome is Outcome.DENY
    assert reasons(decision) == [("R1", "DISTRICT_MISMATCH")]
    violation = decision.violations[0]
    assert "district" in violation.explanation_en
    assert "อำเภอ" in violation.explanation_th


def test_r3_not_a_small_shop(default: CompiledRuleSet) -> None:
    decision = default.evaluate(ROUND1, payment(payee_size_class="LARGE_CHAIN"))
    assert decision.outcome is Outcome.DENY
    assert reasons(decision) == [("R3", "NOT_A_SMALL_SHOP")]


def test_r8_payee_not_a_merchant(default: CompiledRuleSet) -> None:
    decision = default.evaluate(ROUND1, payment(payee_kind="CITIZEN", payee_size_class=None))
    assert decision.outcome is Outcome.DENY
    # R3 cannot be checked without a size class: that is a deny too, never an allow.
    assert reasons(decision) == [("R3", "MISSING_FACT"), ("R8", "PAYEE_NOT_A_MERCHANT")]


def test_every_violation_is_reported_in_rule_set_order(default: CompiledRuleSet) -> None:
    decision = default.evaluate(
        ROUND1, payment(payee_district_code="9999", payee_size_class="LARGE_CHAIN")
    )
    assert reasons(decision) == [("R1", "DISTRICT_MISMATCH"), ("R3", "NOT_A_SMALL_SHOP")]


def test_round2_has_no_district_or_size_limit(default: CompiledRuleSet) -> None:
    decision = default.evaluate(
        ROUND2,
        payment(payer_kind="MERCHANT", payee_district_code="9999", payee_size_class="LARGE_CHAIN"),
    )
    assert decision.outcome is Outcome.ALLOW
    assert decision.evaluated_rule_ids == ("R8",)


def test_absent_fact_read_by_a_rule_denies(default: CompiledRuleSet) -> None:
    decision = default.evaluate(ROUND1, payment(payer_district_code=None, payee_district_code=None))
    assert decision.outcome is Outcome.DENY
    assert reasons(decision) == [("R1", "MISSING_FACT")]
    assert "district_code" in decision.violations[0].explanation_en


def test_missing_required_facts_deny_even_when_no_rule_reads_them(
    default: CompiledRuleSet,
) -> None:
    facts = payment()
    incomplete = PaymentFactSet(values=facts.values, missing=("payer.kind",))
    decision = default.evaluate(ROUND1, incomplete)
    assert decision.outcome is Outcome.DENY
    assert reasons(decision) == [("", "MISSING_FACT")]
    assert "payer.kind" in decision.violations[0].explanation_en


def test_scope_without_rules_denies() -> None:
    rule_set = CompiledRuleSet.from_text(document(condition="true", scopes="[round2_payment]"))
    decision = rule_set.evaluate(ROUND1, payment())
    assert decision.outcome is Outcome.DENY
    assert reasons(decision) == [("", "NO_RULES_FOR_SCOPE")]
    assert decision.evaluated_rule_ids == ()


def test_condition_failing_at_evaluation_denies() -> None:
    rule_set = CompiledRuleSet.from_text(document(condition="int(payee.district_code) > 0"))
    assert rule_set.evaluate(ROUND1, payment()).outcome is Outcome.ALLOW
    decision = rule_set.evaluate(ROUND1, payment(payee_district_code="10x1"))
    assert reasons(decision) == [("RX", "RULE_EVALUATION_ERROR")]


def test_absent_top_level_fact_denies_as_missing() -> None:
    rule_set = CompiledRuleSet.from_text(document(condition="amount_satang <= 1000000"))
    facts = payment()
    del facts.values["amount_satang"]
    assert reasons(rule_set.evaluate(ROUND1, facts)) == [("RX", "MISSING_FACT")]


def test_unknown_function_reached_only_at_evaluation_is_an_error() -> None:
    rule_set = CompiledRuleSet.from_text(
        document(condition='payee.kind == "MERCHANT" || no_such_function(payee)')
    )
    decision = rule_set.evaluate(ROUND1, payment(payee_kind="CITIZEN"))
    assert reasons(decision) == [("RX", "RULE_EVALUATION_ERROR")]


def test_condition_giving_a_non_bool_at_evaluation_denies() -> None:
    rule_set = CompiledRuleSet.from_text(
        document(condition='payee.kind == "MERCHANT" ? true : "maybe"')
    )
    decision = rule_set.evaluate(ROUND1, payment(payee_kind="CITIZEN"))
    assert reasons(decision) == [("RX", "RULE_EVALUATION_ERROR")]


def document(
    condition: str = "true",
    scopes: str = "[round1_payment]",
    version: str = '"test-1"',
    rule_id: str = "RX",
    extra: str = "",
) -> str:
    return textwrap.dedent(
        f"""\
        version: {version}
        rules:
          - id: {rule_id}
            title_en: Test
            title_th: ทดสอบ
            scopes: {scopes}
            condition: '{condition}'
            reason_code: TEST_REASON
            explanation_en: Test.
            explanation_th: ทดสอบ
        {extra}"""
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (document(condition="payee.district_code =="), "does not compile"),
        (document(condition='payee.district_code + "x"'), "must give a bool"),
        (document(condition="payee.amount_satang > 0"), "fails on a complete set of facts"),
        (document(condition="payee.district_cod == payer.district_code"), "fails on a complete"),
        (document(condition="no_such_function(payee)"), "fails on a complete set of facts"),
        (document(scopes="[round9_payment]"), "unknown scopes"),
        (document(scopes="[]"), "scopes"),
        (document(version="2024.1"), "version"),
        (document(rule_id="r1"), "id"),
        (document(extra="unexpected: 1"), "unexpected"),
        ("- just a list", "mapping"),
        ("version: [", "not valid YAML"),
    ],
)
def test_broken_rule_sets_do_not_load(text: str, message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        CompiledRuleSet.from_text(text)


def test_duplicate_rule_ids_do_not_load() -> None:
    one = document()
    rules = one.split("rules:\n", 1)[1]
    with pytest.raises(RuleSetError, match="unique"):
        CompiledRuleSet.from_text(one + rules)


def test_every_shipped_rule_set_loads() -> None:
    versions = shipped_versions()
    assert "digital-wallet-2024.1" in versions
    for version in versions:
        shipped = shipped_rule_set(version)
        assert CompiledRuleSet.from_text(shipped.document).version == version


def test_unknown_shipped_version() -> None:
    with pytest.raises(RuleSetError, match="no shipped rule set"):
        shipped_rule_set("nope")
