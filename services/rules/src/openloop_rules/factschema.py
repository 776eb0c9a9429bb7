"""Every fact a rule's condition may read, with its CEL type and the scopes that supply it.

This is the one declaration the publish-time checker, the fact builders and the
documentation agree on. Conditions read facts as ``group.field``:

=============  ===================================================================================
``payer``      the paying party (round 1: a citizen; round 2 and cash-out: a merchant; refund:
               the merchant giving money back): ``party``, ``kind`` ("CITIZEN"/"MERCHANT"),
               ``hosting_participant``, ``district_code``, ``size_class`` ("SMALL_SHOP"/
               "LARGE_CHAIN"), ``age_years``, ``identity_verified``, ``authentication_level``,
               ``category``, ``sells_in_person``, ``tax_registered``, ``tax_years_filed``;
               and the wallet's use: ``has_first_use`` (always present), ``first_use_time`` and
               ``spending_deadline`` (first use plus the program's months; present only when
               ``has_first_use``)
``payee``      the party paid, with the same party fields (absent for cash-out)
``transaction`` ``amount_satang``, ``currency_code``, ``channel`` ("IN_PERSON"/"ONLINE"),
               ``time`` (as the caller stated it), ``goods_category``, ``receipts_round``
               ("ROUND1"/"ROUND2": which receipts a cash-out draws on)
``applicant``  enrolment only: ``birth_date`` (personal data: used for the age window, never
               logged or recorded), ``thai_national``, ``district_code``,
               ``assessable_income_satang``, ``deposits_satang``, ``prisoner``,
               ``welfare_institution_resident``, ``earlier_phase_recipient``,
               ``entitlement_already_granted``, ``identity_verified``
``clock``      ``now`` (when the decision is made), ``year`` (its calendar year in Bangkok)
``program``    the governed program's parameters (see :mod:`openloop_rules.program`); constant
               for a rule set, so they are compiled into the conditions as literals
=============  ===================================================================================

A fact the caller did not supply is *absent*, never a zero or an empty string, so that
``payee.district_code == payer.district_code`` cannot hold for two unknown districts. A
condition that reaches an absent fact denies with MISSING_FACT.

At run time facts travel to CEL as flat variables (``payer__district_code``): converting
a handful of scalars is several times cheaper than converting nested maps.
"""

from __future__ import annotations

from collections.abc import Mapping

from openloop_rules.cel_types import (
    BOOL,
    INT,
    STRING,
    TIMESTAMP,
    CelType,
    list_of,
    record,
)

ENROLMENT = "enrolment"
ROUND1 = "round1_payment"
ROUND2 = "round2_payment"
CASH_OUT = "cash_out"
REFUND = "refund"
PAYMENT_SCOPES = frozenset({ROUND1, ROUND2, REFUND})

_PARTY_FIELDS: dict[str, CelType] = {
    "party": STRING,
    "kind": STRING,
    "hosting_participant": STRING,
    "district_code": STRING,
    "size_class": STRING,
    "age_years": INT,
    "identity_verified": BOOL,
    "authentication_level": STRING,
    "category": STRING,
    "sells_in_person": BOOL,
    "tax_registered": BOOL,
    "tax_years_filed": list_of(INT),
}

PAYER = record(
    "payer",
    {
        **_PARTY_FIELDS,
        "has_first_use": BOOL,
        "first_use_time": TIMESTAMP,
        "spending_deadline": TIMESTAMP,
    },
)
PAYEE = record("payee", _PARTY_FIELDS)
TRANSACTION = record(
    "transaction",
    {
        "amount_satang": INT,
        "currency_code": STRING,
        "channel": STRING,
        "time": TIMESTAMP,
        "goods_category": STRING,
        "receipts_round": STRING,
    },
)
APPLICANT = record(
    "applicant",
    {
        "birth_date": TIMESTAMP,
        "thai_national": BOOL,
        "district_code": STRING,
        "assessable_income_satang": INT,
        "deposits_satang": INT,
        "prisoner": BOOL,
        "welfare_institution_resident": BOOL,
        "earlier_phase_recipient": BOOL,
        "entitlement_already_granted": BOOL,
        "identity_verified": BOOL,
    },
)
CLOCK = record("clock", {"now": TIMESTAMP, "year": INT})

NEGATIVE_LIST_ENTRY = record(
    "negative_list_entry",
    {"category": STRING, "valid_from": TIMESTAMP, "valid_until": TIMESTAMP},
)
PHASE = record(
    "phase",
    {
        "number": INT,
        "born_from": TIMESTAMP,
        "born_until": TIMESTAMP,
        "min_age": INT,
        "max_age": INT,
    },
)
PROGRAM = record(
    "program",
    {
        "id": STRING,
        "version": STRING,
        "budget_satang": INT,
        "entitlement_satang": INT,
        "cutoff": TIMESTAMP,
        "max_income_satang": INT,
        "max_deposits_satang": INT,
        "spending_deadline_months": INT,
        "phase": PHASE,
        "negative_list": list_of(NEGATIVE_LIST_ENTRY),
    },
)

_ALL_SCOPES = frozenset({ENROLMENT, ROUND1, ROUND2, CASH_OUT, REFUND})

GROUPS: Mapping[str, CelType] = {
    "payer": PAYER,
    "payee": PAYEE,
    "transaction": TRANSACTION,
    "applicant": APPLICANT,
    "clock": CLOCK,
    "program": PROGRAM,
}
"""Top-level names a condition may use."""

SUPPLIED_IN: Mapping[str, frozenset[str]] = {
    "payer": frozenset({ROUND1, ROUND2, CASH_OUT, REFUND}),
    "payee": frozenset({ROUND1, ROUND2, REFUND}),
    "transaction": frozenset({ROUND1, ROUND2, CASH_OUT, REFUND}),
    "applicant": frozenset({ENROLMENT}),
    "clock": _ALL_SCOPES,
    "program": _ALL_SCOPES,
}
"""The scopes whose requests carry each group: a round-1 rule reading ``applicant`` is refused."""

CONSTANT_GROUPS = frozenset({"program"})
"""Groups fixed by the rule set, compiled into conditions as literals."""

REQUIRED: Mapping[str, tuple[str, ...]] = {
    ROUND1: (
        "payer.party", "payer.kind", "payer.hosting_participant", "payer.district_code",
        "payee.party", "payee.kind", "payee.hosting_participant", "payee.district_code",
    ),
    ROUND2: (
        "payer.party", "payer.kind", "payer.hosting_participant",
        "payee.party", "payee.kind", "payee.hosting_participant",
    ),
    REFUND: (
        "payer.party", "payer.kind", "payer.hosting_participant",
        "payee.party", "payee.kind", "payee.hosting_participant",
    ),
    CASH_OUT: ("payer.party", "payer.kind", "payer.hosting_participant"),
    ENROLMENT: (),
}  # fmt: skip
"""Facts every decision of a scope needs, read by a rule or not: without them the parties are
not even known, so the decision denies with MISSING_FACT whatever the rules say."""

PERSONAL_FACTS = frozenset({"applicant__birth_date"})
"""Flat facts that are personal data: never logged, traced or recorded with a decision."""


def flat_name(group: str, field: str) -> str:
    """The CEL variable a fact travels as: ``payer.district_code`` is ``payer__district_code``."""
    return f"{group}__{field}"


def dotted_name(flat: str) -> str:
    """``payer__district_code`` back to ``payer.district_code``, for explanations."""
    return flat.replace("__", ".", 1)
