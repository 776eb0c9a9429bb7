"""The combined program's int encodings (pure logic): which facts are encoded, and that the
fast form gives every rule the same answer as the plain form, on any facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openloop_rules import encoding
from openloop_rules.compiler import compile_rule
from openloop_rules.decision import Decision
from openloop_rules.evaluator import CompiledRule, CompiledRuleSet, CompiledScope
from openloop_rules.ruleset import Effect, Rule
from openloop_rules.shipped import shipped_programs

PROGRAM = next(iter(shipped_programs().values())).program.constants(3)
SCOPE = "round1_payment"


def rule(condition: str, rule_id: str = "RX") -> Rule:
    return Rule(
        id=rule_id,
        title_en="Test",
        title_th="ทดสอบ",
        scopes=(SCOPE,),
        effect=Effect.REQUIRE,
        condition=condition,
        reason_code="TEST",
        explanation_en="Test.",
        explanation_th="ทดสอบ",
    )


def inputs(compiled: CompiledRule) -> dict[str, int]:
    return {item.fact: item.encoding for item in compiled.fast_inputs}


def test_compared_timestamps_and_strings_become_ints() -> None:
    codes: dict[str, int] = {}
    compiled = compile_rule(
        rule(
            '(!payer.has_first_use || clock.now < payer.spending_deadline) && payer.kind == "X"'
            " && payee.district_code == payer.district_code"
        ),
        PROGRAM,
        codes,
    )
    assert inputs(compiled) == {
        "payer__has_first_use": encoding.PLAIN,
        "clock__now": encoding.MICROS,
        "payer__spending_deadline": encoding.MICROS,
        "payer__kind": encoding.CODE,
        "payee__district_code": encoding.CODE,
        "payer__district_code": encoding.CODE,
    }
    assert "clock__now__us < payer__spending_deadline__us" in compiled.fast_source
    assert f"payer__kind__code == {codes['X']}" in compiled.fast_source
    assert compiled.program.source == (
        "(((!(payer__has_first_use) || (clock__now < payer__spending_deadline)) && "
        '(payer__kind == "X")) && (payee__district_code == payer__district_code))'
    )


def test_program_timestamps_become_int_literals() -> None:
    compiled = compile_rule(
        rule(
            "!program.negative_list.exists(e, e.category == transaction.goods_category"
            " && e.valid_from <= clock.now && clock.now < e.valid_until)"
        ),
        PROGRAM,
    )
    assert "timestamp(" not in compiled.fast_source
    assert "timestamp(" in compiled.program.source
    assert inputs(compiled) == {
        "transaction__goods_category": encoding.CODE,
        "clock__now": encoding.MICROS,
    }


@pytest.mark.parametrize(
    ("condition", "plain"),
    [
        # arithmetic or parts of a timestamp need the timestamp
        ('clock.now - payer.first_use_time < duration("4380h")', {"clock__now"}),
        ("clock.now < payer.spending_deadline && clock.now.getFullYear() > 2000",
         {"clock__now", "payer__spending_deadline"}),
        # a fact compared with one that cannot be encoded is not encoded either
        ('payee.district_code == payer.district_code && payer.district_code.startsWith("1")',
         {"payee__district_code", "payer__district_code"}),
        # ordering strings, 'in' a list, or a string computed at run time
        ('payer.kind < "M"', {"payer__kind"}),
        ('payer.kind in ["MERCHANT"]', {"payer__kind"}),
        ('payer.kind == "M" + "ERCHANT"', {"payer__kind"}),
        # a timestamp constant with nanoseconds has no exact microseconds
        ('clock.now < timestamp("2030-01-01T00:00:00.000000001Z")', {"clock__now"}),
    ],
)  # fmt: skip
def test_other_uses_stay_plain(condition: str, plain: set[str]) -> None:
    compiled = compile_rule(rule(condition), PROGRAM)
    kept = {fact for fact, how in inputs(compiled).items() if how == encoding.PLAIN}
    assert plain <= kept


def test_an_exact_timestamp_literal_is_encoded() -> None:
    compiled = compile_rule(rule('clock.now < timestamp("2030-01-01T07:00:00.5+07:00")'), PROGRAM)
    stamp = datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert compiled.fast_source == f"(clock__now__us < {encoding.micros(stamp)})"


CONDITIONS = [
    "payee.district_code == payer.district_code",
    'transaction.channel != "IN_PERSON"',
    'payee.size_class == "SMALL_SHOP" || payee.size_class == "LARGE_CHAIN"',
    "!payer.has_first_use || clock.now < payer.spending_deadline",
    "clock.now >= payer.spending_deadline || clock.now == payer.spending_deadline",
    'payee.kind == "MERCHANT" && payer.kind != payee.kind',
    "program.negative_list.exists(e, e.category == transaction.goods_category"
    " && e.valid_from <= clock.now && clock.now < e.valid_until)",
    'transaction.time <= timestamp("2025-06-01T10:00:00+07:00")',
    "transaction.time > clock.now",
]
MOMENT = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
TEXTS = ["1001", "1002", "MERCHANT", "CITIZEN", "SMALL_SHOP", "IN_PERSON", "ONLINE",
         "tobacco", "groceries", "electronics", ""]  # fmt: skip
MOMENTS = [MOMENT + timedelta(microseconds=step) for step in (-1, 0, 1)] + [
    datetime(2023, 12, 31, 17, 0, tzinfo=UTC),
    datetime(2024, 6, 30, 17, 0, tzinfo=UTC) - timedelta(microseconds=1),
    datetime(9999, 12, 30, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
]
FACTS = {
    "payee__district_code": st.sampled_from(TEXTS),
    "payer__district_code": st.sampled_from(TEXTS),
    "transaction__channel": st.sampled_from(TEXTS),
    "payee__size_class": st.sampled_from(TEXTS),
    "payer__has_first_use": st.booleans(),
    "clock__now": st.sampled_from(MOMENTS),
    "payer__spending_deadline": st.sampled_from(MOMENTS),
    "transaction__time": st.sampled_from(MOMENTS),
    "payee__kind": st.sampled_from(TEXTS),
    "payer__kind": st.sampled_from(TEXTS),
    "transaction__goods_category": st.sampled_from(TEXTS),
}


def _rules() -> tuple[list[CompiledRule], dict[str, int]]:
    codes: dict[str, int] = {}
    compiled = [
        compile_rule(rule(text, f"R{index}"), PROGRAM, codes)
        for index, text in enumerate(CONDITIONS)
    ]
    return compiled, codes


RULES, CODES = _rules()


def _outcome(run: Any) -> Any:
    try:
        return run()
    except Exception:
        return "error"


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional=FACTS))
def test_fast_and_plain_forms_agree(facts: dict[str, Any]) -> None:
    for compiled in RULES:
        assert compiled.fast_source != compiled.program.source
        plain = _outcome(
            lambda c=compiled: c.program.execute({n: facts[n] for n in c.variables if n in facts})
        )
        fast = _outcome(
            lambda c=compiled: cel.compile(c.fast_source).execute(
                encoding.context(c.fast_inputs, CODES, facts)
            )
        )
        assert fast == plain, compiled.rule.condition


def _rule_set() -> CompiledRuleSet:
    combined = cel.compile("[" + ", ".join(r.fast_source for r in RULES) + "]")
    items = {item.name: item for r in RULES for item in r.fast_inputs}
    scope = CompiledScope(tuple(RULES), combined, (), tuple(items.values()), CODES)
    return CompiledRuleSet(version="v", program_id="p", program=None, scopes={SCOPE: scope})


def _rule_by_rule(facts: dict[str, Any]) -> Decision:
    return CompiledRuleSet(
        version="v",
        program_id="p",
        program=None,
        scopes={SCOPE: CompiledScope(tuple(RULES), cel.compile("error"), ())},
    ).evaluate(SCOPE, facts)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional=FACTS))
def test_decisions_match_rule_by_rule(facts: dict[str, Any]) -> None:
    assert _rule_set().evaluate(SCOPE, facts) == _rule_by_rule(facts)


@pytest.mark.parametrize(
    "wrong",
    [
        {"payee__kind": 3},
        {"clock__now": "2025-06-01T03:00:00Z"},
        {"clock__now": datetime(2025, 6, 1, 3, 0)},  # naive: CEL reads it as local time
    ],
)
def test_a_value_of_the_wrong_type_decides_rule_by_rule(wrong: dict[str, Any]) -> None:
    facts = {
        "payee__district_code": "1001",
        "payer__district_code": "1001",
        "transaction__channel": "IN_PERSON",
        "payee__size_class": "SMALL_SHOP",
        "payer__has_first_use": True,
        "clock__now": MOMENT,
        "payer__spending_deadline": MOMENT,
        "transaction__time": MOMENT,
        "payee__kind": "MERCHANT",
        "payer__kind": "CITIZEN",
        "transaction__goods_category": "groceries",
    } | wrong
    with pytest.raises(TypeError):
        encoding.context(_rule_set()._scopes[SCOPE].inputs, CODES, facts)
    assert _rule_set().evaluate(SCOPE, facts) == _rule_by_rule(facts)
