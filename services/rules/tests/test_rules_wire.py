"""Deciding straight off the wire message (pure logic): on any message, well formed or not,
the fast path either declines or gives exactly the decision of the general path, and it
does take the common case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from openloop.common.v1 import money_pb2, party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_rules import encoding, facts
from openloop_rules.compiler import compile_text
from openloop_rules.decision import Decision
from openloop_rules.evaluator import CompiledRuleSet
from openloop_rules.program import add_months, add_months_micros
from openloop_rules.shipped import shipped_programs, shipped_rule_set
from openloop_rules.wire import Moment
from openloop_runtime.errors import DomainError
from services.rules.tests.rules_cases import DEFAULT_VERSION, NOW, merchant, payment

PROGRAMS = {key: shipped.program for key, shipped in shipped_programs().items()}
DEFAULT = compile_text(shipped_rule_set(DEFAULT_VERSION).document, PROGRAMS)

# Every kind of fact, read plain and encoded: timestamps compared and computed on, strings
# compared and searched, ints, flags and lists.
WIDE = compile_text(
    """
version: "wide-1"
program: digital-wallet
program_version: "2025.1"
phase: 3
rules:
"""
    + "".join(
        f"""  - id: W{index}
    title_en: Wide {index}
    title_th: กว้าง {index}
    scopes: [round1_payment, round2_payment, refund{"" if "payee." in condition else ", cash_out"}]
    condition: >-
      {condition}
    reason_code: WIDE_{index}
    explanation_en: Wide.
    explanation_th: กว้าง
"""
        for index, condition in enumerate(
            [
                "payee.district_code == payer.district_code",
                'payer.district_code.startsWith("1")',
                "!payer.has_first_use || clock.now < payer.spending_deadline",
                'payer.has_first_use && clock.now - payer.first_use_time > duration("24h")',
                "transaction.time <= clock.now",
                "clock.year >= 2025 && transaction.amount_satang <= 1000000",
                'transaction.currency_code == "THB"',
                'transaction.receipts_round == "ROUND2"',
                "payer.age_years >= 18 && payer.identity_verified",
                "2024 in payee.tax_years_filed && payee.tax_registered && payee.sells_in_person",
                'payee.category in ["groceries", "fresh_food"] && payer.authentication_level > "2"',
                'payer.kind == "CITIZEN" && payee.size_class != "LARGE_CHAIN"',
                'payer.party != payee.party && payer.hosting_participant.endsWith("-a")',
                "transaction.goods_category == payee.category",
            ]
        )
    ),
    PROGRAMS,
)
SCOPES = ("round1_payment", "round2_payment", "cash_out", "refund")


def general(rule_set: CompiledRuleSet, scope: str, message: resources_pb2.PaymentFacts) -> Any:
    """The general path's decision, or the error it reports."""
    try:
        values = facts.payment_facts(
            message, NOW, rule_set.spending_deadline_months, "facts", rule_set.variables(scope)
        )
    except DomainError as error:
        return error.reason
    return rule_set.evaluate(scope, values)


def fast(rule_set: CompiledRuleSet, scope: str, message: resources_pb2.PaymentFacts) -> Any:
    return rule_set.evaluate_wire(scope, message, Moment.of(NOW))


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


SECONDS_VALUES = [
    int(NOW.timestamp()) + offset
    for offset in (-400 * 86_400, -190 * 86_400, -86_400, -3600, -1, 0, 1, 86_400)
] + [
    int(add_months(NOW, -6).timestamp()),  # a first use whose deadline is exactly now
    facts.SECONDS_MIN,
    facts.SECONDS_MAX,
    facts.SECONDS_MAX + 1,
    253_399_000_000,
]
NANOS_VALUES = [0, 999, 1000, 999_999_999, 1_000_000_000]
STAMPS = st.builds(stamp, st.sampled_from(SECONDS_VALUES), st.sampled_from(NANOS_VALUES))
TEXT = ["", "x", "BAD", "a" * 70]
PARTIES = st.builds(
    party_pb2.PartyFacts,
    party=st.sampled_from(["citizens/c1", "merchants/m1", "merchants/m2", "Citizens/1", *TEXT]),
    kind=st.sampled_from([0, 1, 2, 42]),
    hosting_participant=st.sampled_from(["participants/bank-a", "participants/bank-b", *TEXT]),
    district_code=st.sampled_from(["1001", "1002", "5001", "10O1", "10011", *TEXT]),
    size_class=st.sampled_from([0, 1, 2, 42]),
    age_years=st.sampled_from([0, 17, 18, 60, -1]),
    identity_verified=st.booleans(),
    authentication_level=st.sampled_from(["2.1", "1.1", "3", "2.x", ""]),
    category=st.sampled_from(["groceries", "fresh_food", "tobacco", "Groceries", ""]),
    sells_in_person=st.booleans(),
    tax_registered=st.booleans(),
    tax_years_filed=st.lists(st.sampled_from([2022, 2023, 2024]), max_size=3),
)
MESSAGES = st.builds(
    resources_pb2.PaymentFacts,
    payer=st.none() | PARTIES,
    payee=st.none() | PARTIES,
    amount=st.none()
    | st.builds(
        money_pb2.Money,
        currency_code=st.sampled_from(["THB", "USD", ""]),
        amount_satang=st.sampled_from([-1, 0, 5_000, 1_000_001, 2**62]),
    ),
    channel=st.sampled_from([0, 1, 2, 42]),
    payment_time=st.none() | STAMPS,
    goods_category=st.sampled_from(
        ["groceries", "electronics", "tobacco", "Tobacco", "", "x" * 70]
    ),
    receipts_round=st.sampled_from([0, 1, 2, 42]),
    payer_first_use_time=st.none() | STAMPS,
)


PARTY_VALUES: dict[str, list[Any]] = {
    "party": ["citizens/c2", "merchants/m9", "Citizens/1", "", "a" * 70],
    "kind": [0, 1, 2, 42],
    "hosting_participant": ["participants/bank-b", "participants/X", ""],
    "district_code": ["1002", "5001", "10O1", ""],
    "size_class": [0, 1, 2, 42],
    "age_years": [0, 17, -1],
    "identity_verified": [False],
    "authentication_level": ["1.1", "2.x", ""],
    "category": ["tobacco", "Groceries", ""],
    "tax_years_filed": [[], [2022]],
}
MESSAGE_VALUES: dict[str, list[Any]] = {
    "channel": [0, 1, 2, 42],
    "goods_category": ["electronics", "tobacco", "Tobacco", ""],
    "receipts_round": [0, 1, 2, 42],
}


Change = tuple[str, str, Any]
"""One thing changed in a case: (``payer``, ``payee``, ``message``, ``amount``, ``stamp`` or
``clear``; the field; its new value)."""


def apply(message: resources_pb2.PaymentFacts, change: Change) -> None:
    where, name, value = change
    target: Any = getattr(message, where) if where in ("payer", "payee", "amount") else message
    if where == "clear":
        target.ClearField(name)
    elif where == "stamp":
        getattr(target, name).CopyFrom(value)
    elif isinstance(value, list):
        target.ClearField(name)
        getattr(target, name).extend(value)
    else:
        setattr(target, name, value)


CHANGES: list[Change] = [
    *(
        (group, name, value)
        for group in ("payer", "payee")
        for name, values in PARTY_VALUES.items()
        for value in values
    ),
    *(("message", name, value) for name, values in MESSAGE_VALUES.items() for value in values),
    *(("amount", "amount_satang", satang) for satang in (-1, 0, 1_000_001, 2**62)),
    *(("amount", "currency_code", currency) for currency in ("USD", "")),
    *(
        ("stamp", name, stamp(seconds, nanos))
        for name in ("payment_time", "payer_first_use_time")
        for seconds in SECONDS_VALUES
        for nanos in NANOS_VALUES
    ),
    *(("clear", name, None) for name in ("payer", "payee", "amount", "payer_first_use_time")),
]
"""Every one-thing change the value tables describe."""


def test_every_single_change_declines_or_agrees() -> None:
    taken = 0
    wrong = []
    for rule_set, base in ((DEFAULT, payment), (WIDE, everything)):
        for scope in SCOPES:
            for change in CHANGES:
                message = base(scope)
                apply(message, change)
                expected = general(rule_set, scope, message)
                got = fast(rule_set, scope, message)
                if got is not None:
                    taken += 1
                    if got != expected:
                        wrong.append((rule_set.version, scope, change))
    assert not wrong, wrong[:10]
    assert taken > 500  # most single changes keep the message well formed


@st.composite
def near_compliant(draw: st.DrawFn, scope: str) -> resources_pb2.PaymentFacts:
    """A compliant case of ``scope`` with up to four things changed: most such cases reach
    the end of the fast path, where a random message is usually declined early on."""
    message = payment(scope)
    for change in draw(st.lists(st.sampled_from(CHANGES), max_size=4)):
        apply(message, change)
    return message


@settings(max_examples=800, deadline=None)
@given(st.sampled_from([DEFAULT, WIDE]), st.sampled_from(SCOPES), st.data())
def test_the_fast_path_declines_or_agrees(
    rule_set: CompiledRuleSet, scope: str, data: st.DataObject
) -> None:
    message = data.draw(st.one_of(near_compliant(scope), MESSAGES))
    got = fast(rule_set, scope, message)  # before the general path has seen its texts
    expected = general(rule_set, scope, message)
    if got is not None:
        assert isinstance(expected, Decision), f"the general path reports {expected}"
        assert got == expected
    again = fast(rule_set, scope, message)
    if again is not None:
        assert again == expected


def everything(scope: str, **fields: Any) -> resources_pb2.PaymentFacts:
    """A case of ``scope`` with every fact the wide rule set reads present."""
    message = payment(
        scope,
        payment_time=stamp(int(NOW.timestamp()) - 5, 1500),
        payer_first_use_time=stamp(int((NOW - timedelta(days=30)).timestamp())),
        receipts_round=resources_pb2.RECEIPTS_ROUND_ROUND2,
        **fields,
    )
    for party in (message.payer, message.payee):
        party.age_years = party.age_years or 40
        party.authentication_level = party.authentication_level or "2.3"
        party.category = party.category or "groceries"
    return message


@pytest.mark.parametrize("scope", SCOPES)
def test_the_common_case_takes_the_fast_path(scope: str) -> None:
    for rule_set, message in (
        (DEFAULT, payment(scope)),
        (DEFAULT, payment(scope, payer_first_use_time=stamp(int(NOW.timestamp()) - 86_400))),
        (DEFAULT, payment(scope, goods_category="electronics")),
        (WIDE, everything(scope)),
        (WIDE, everything(scope, goods_category="electronics")),
    ):
        decided = fast(rule_set, scope, message)
        assert decided is not None
        assert decided == general(rule_set, scope, message)
    assert fast(WIDE, scope, everything(scope)) != fast(DEFAULT, scope, payment(scope))


def test_denials_are_the_rules_own() -> None:
    message = payment(payee=merchant(district_code="2002"), channel=resources_pb2.CHANNEL_ONLINE)
    decided = fast(DEFAULT, "round1_payment", message)
    assert decided is not None
    assert [(v.rule_id, v.reason_code) for v in decided.violations] == [
        ("R1", "DISTRICT_MISMATCH"),
        ("R2", "NOT_IN_PERSON"),
    ]


def test_a_party_name_never_seen_is_checked_not_declined() -> None:
    """Millions of citizens outgrow the cache of names seen: the fast path checks the
    pattern itself, and declines only what does not match."""
    message = payment()
    message.payer.party = "citizens/never-seen-before-4821"
    assert fast(DEFAULT, "round1_payment", message) is not None
    message.payer.party = "citizens/Never-Seen"
    assert fast(DEFAULT, "round1_payment", message) is None
    assert general(DEFAULT, "round1_payment", message) == "INVALID_FIELD"


@pytest.mark.parametrize(
    "broken",
    [
        {"amount": money_pb2.Money(currency_code="THB", amount_satang=-1)},
        {"channel": 42},
        {"receipts_round": 42},
        {"goods_category": "Tobacco"},
        {"payment_time": stamp(0, 1_000_000_000)},
        {"payer_first_use_time": stamp(facts.SECONDS_MAX + 1)},
        {"payer_first_use_time": stamp(253_399_000_000)},  # its deadline falls after 9999
    ],
)
def test_a_malformed_message_is_left_to_the_general_path(broken: dict[str, Any]) -> None:
    message = payment(**broken)
    assert fast(DEFAULT, "round1_payment", message) is None
    with pytest.raises(DomainError) as raised:
        facts.payment_facts(message, NOW, 6)
    assert raised.value.metadata["field"].startswith("facts.")


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    ),
    st.integers(min_value=0, max_value=120),
)
def test_months_on_microseconds_are_months_on_datetimes(moment: datetime, months: int) -> None:
    try:
        expected: object = encoding.micros(add_months(moment, months))
    except (ValueError, OverflowError):
        expected = "out of range"
    try:
        got: object = add_months_micros(encoding.micros(moment), months)
    except (ValueError, OverflowError):
        got = "out of range"
    assert got == expected


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        # 31 January in Bangkok, one month on: the last day of February, leap or not
        (datetime(2024, 1, 30, 17, 30, tzinfo=UTC), 1, datetime(2024, 2, 28, 17, 30, tzinfo=UTC)),
        (datetime(2025, 1, 30, 17, 30, tzinfo=UTC), 1, datetime(2025, 2, 27, 17, 30, tzinfo=UTC)),
        (datetime(2025, 8, 31, 5, 0, tzinfo=UTC), 6, datetime(2026, 2, 28, 5, 0, tzinfo=UTC)),
    ],
)
def test_months_end_on_the_last_day_of_a_shorter_month(
    start: datetime, months: int, end: datetime
) -> None:
    assert add_months_micros(encoding.micros(start), months) == encoding.micros(end)
