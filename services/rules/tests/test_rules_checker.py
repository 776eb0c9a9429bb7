"""Publish-time checking of one condition: what is refused, and where."""

from __future__ import annotations

import grpc
import pytest

from openloop_rules import errors
from openloop_rules.compiler import compile_rule, compile_rule_set
from openloop_rules.program import ProgramError, parse_program
from openloop_rules.ruleset import Effect, Rule, RuleSetError, parse_rule_set
from openloop_rules.shipped import shipped_programs

PROGRAM_DOCUMENT = next(iter(shipped_programs().values())).program
PROGRAM = PROGRAM_DOCUMENT.constants(3)


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


def _document(condition: str, explanation: str = "p") -> str:
    return f"""version: "probe-1"
program: digital-wallet
program_version: "2025.1"
phase: 3
rules:
  - id: R0
    title_en: Fine
    title_th: ปกติ
    scopes: [round1_payment]
    condition: transaction.amount_satang > 0
    reason_code: FINE
    explanation_en: Fine.
    explanation_th: ปกติ
  - id: RX
    title_en: Test
    title_th: ทดสอบ
    scopes: [round1_payment]
    condition: '{condition}'
    reason_code: TEST
    explanation_en: "{explanation}"
    explanation_th: ทดสอบ
"""


def _districts(count: int) -> str:
    return " || ".join(f'payee.district_code == "{1000 + i}"' for i in range(count))


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("!" * 2000 + "true", "nested too deeply"),
        ("-" * 2000 + "1 < 0", "nested too deeply"),
        ("!" * 400 + "true", "nested too deeply"),  # parsed here, refused by CEL once rewritten
        (_districts(100), "nested too deeply"),  # the rewritten rule alone
        (_districts(95), "nested too deeply"),  # the rule alone compiles, its scope's list not
    ],
)
def test_pathological_conditions_are_refused_naming_the_rule(condition: str, message: str) -> None:
    """CEL itself accepts these sources: what fails is this service's parser (Python
    recursion) or CEL's nesting limit on the rewritten text; both are the document's fault."""
    document = parse_rule_set(_document(condition))
    with pytest.raises(RuleSetError) as caught:
        compile_rule_set(document, PROGRAM_DOCUMENT)
    error = caught.value
    assert message in str(error)
    assert (error.rule_id, error.field, error.line, error.column) == ("RX", "condition", 1, 1)


def test_the_smallest_int_is_a_literal_the_rewrite_keeps() -> None:
    """-9223372036854775808 is an int literal in CEL; rewritten as -(9223372036854775808)
    it would not be (9223372036854775808 overflows)."""
    compiled = compile_rule(rule("payer.age_years > -9223372036854775808"), PROGRAM)
    assert compiled.program.execute({"payer__age_years": -9223372036854775807}) is True
    assert compiled.program.execute({"payer__age_years": -9223372036854775808}) is False
    negated = compile_rule(rule("-(payer.age_years) < -5 && -1.5 < 0.0"), PROGRAM)
    assert negated.program.execute({"payer__age_years": 6}) is True


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("rules: " + "[" * 20000 + "]" * 20000, "document"),  # RecursionError in the YAML parser
        ('version: "x"\nrules: [{a: 2025-02-30}]', "document"),  # ValueError: no such day
        ("version: !!int '-'", "document"),  # IndexError
        ("version: !!bool 'x'", "document"),  # KeyError
        ("version: !!timestamp 'x'", "document"),  # AttributeError
        ('version: "\\U0011FFFF"', "document"),  # ValueError: no such code point
    ],
)
def test_documents_the_yaml_parser_chokes_on_are_refused(text: str, field: str) -> None:
    with pytest.raises(RuleSetError) as caught:
        parse_rule_set(text)
    assert caught.value.field == field
    assert "not valid YAML" in str(caught.value)


def test_a_lone_surrogate_in_a_rule_text_is_refused() -> None:
    """YAML's escape "\\ud800" makes a string that no protobuf message can carry: the
    rule's explanation would fail every decision it denies. (Pydantic's str refuses it.)"""
    with pytest.raises(RuleSetError) as caught:
        parse_rule_set(_document("transaction.amount_satang > 0", explanation="\\ud800"))
    error = caught.value
    assert (error.rule_id, error.field) == ("RX", "rules.1.explanation_en")
    assert "string_unicode" in str(error)


@pytest.mark.parametrize(
    "text", ["a: " + "[" * 20000 + "]" * 20000, "id: !!int '-'", "cutoff_date: 2025-02-30"]
)
def test_programs_the_yaml_parser_chokes_on_are_refused(text: str) -> None:
    with pytest.raises(ProgramError) as caught:
        parse_program(text)
    assert "not valid YAML" in str(caught.value)
    refusal = errors.program_invalid(caught.value)
    assert (refusal.code, refusal.reason, refusal.metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "PROGRAM_INVALID",
        {"field": "program_document"},
    )
