"""Publish-time checking of one condition: what is refused, and where."""

from __future__ import annotations

import pytest

from openloop_rules.compiler import compile_rule
from openloop_rules.ruleset import Effect, Rule, RuleSetError
from openloop_rules.shipped import shipped_programs

PROGRAM = next(iter(shipped_programs().values())).program.constants(3)


def rule(condition: str, scopes: tuple[str, ...] = ("round1_payment",)) -> Rule:
    return Rule(
        id="RX",
        title_en="Test",
        title_th="ทดสอบ",
        scopes=scopes,
        effect=Effect.REQUIRE,
        condition=condition,
        reason_code="TEST",
        explanation_en="Test.",
        explanation_th="ทดสอบ",
    )


@pytest.mark.parametrize(
    ("condition", "scopes", "message", "line", "column"),
    [
        ("payee.district_code ==", ("round1_payment",), "syntax error", 1, 23),
        ("payee.distrct_code == payer.district_code", ("round1_payment",),
         "unknown fact 'payee.distrct_code'", 1, 7),
        ("payer.age_years >\n  \"16\"", ("round1_payment",), "'>' cannot apply to int and string",
         1, 17),
        ("transaction.amount_satang > 1.5", ("round1_payment",), "int and double", 1, 27),
        ("applicant.prisoner", ("round1_payment",), "not supplied in scope round1_payment", 1, 1),
        ("payee.district_code", ("round1_payment",), "must be a bool", 1, 7),
        ("no_such_function(payee.kind)", ("round1_payment",), "no function no_such_function", 1, 1),
        ("has(payer.first_use_time)", ("round1_payment",), "has() is not available", 1, 1),
        ("payer == payee", ("round1_payment",), "group of facts", 1, 1),
        ("salary > 0", ("round1_payment",), "unknown fact 'salary'", 1, 1),
        ("program.negative_list.exists(e, e.categry == \"x\")", ("round1_payment",),
         "has no field 'categry'", 1, 35),
        ("payer.kind == \"CITIZEN\" ? true : 1", ("round1_payment",), "branches", 1, 12),
        ("payer.tax_years_filed.exists(y, y == \"2024\")", ("cash_out",), "int and string", 1, 35),
    ],
)  # fmt: skip
def test_refused_with_position(
    condition: str, scopes: tuple[str, ...], message: str, line: int, column: int
) -> None:
    with pytest.raises(RuleSetError) as caught:
        compile_rule(rule(condition, scopes), PROGRAM)
    error = caught.value
    assert message in str(error)
    assert (error.rule_id, error.line, error.column) == ("RX", line, column)


@pytest.mark.parametrize(
    "condition",
    [
        "int(payee.district_code) > 0",
        'payee.category.startsWith("groc") && size(payer.tax_years_filed) >= 0',
        'clock.now - payer.first_use_time < duration("4380h") || !payer.has_first_use',
        "transaction.amount_satang <= program.entitlement_satang",
        "(clock.year - 1) in payer.tax_years_filed",
        "program.negative_list.all(e, e.category != transaction.goods_category)",
        "[1, 2].map(x, x * 2).exists(y, y == payer.age_years)",
        "{'a': 1}['a'] == 1 && clock.now.getFullYear() > 2000",
    ],
)
def test_accepted(condition: str) -> None:
    compiled = compile_rule(rule(condition), PROGRAM)
    assert compiled.variables <= {
        "payee__district_code", "payee__category", "payer__tax_years_filed", "clock__now",
        "payer__first_use_time", "payer__has_first_use", "transaction__amount_satang",
        "clock__year", "transaction__goods_category", "payer__age_years",
    }  # fmt: skip


def test_program_facts_need_a_program_version() -> None:
    with pytest.raises(RuleSetError, match="program version"):
        compile_rule(rule("transaction.amount_satang <= program.entitlement_satang"), None)
