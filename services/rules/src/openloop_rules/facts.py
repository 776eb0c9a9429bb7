"""Facts from the wire: the proto a caller sends, as the flat CEL variables rules read.

See :mod:`openloop_rules.factschema` for every fact. A fact the caller did not supply is
left out, never given as an empty string or zero, so two unknown districts never compare
equal. A value of the wrong shape (an enum value this build does not know, a district code
that is not four digits, a malformed date) is the caller's mistake: INVALID_ARGUMENT naming
the field, never a decision.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_rules.program import BANGKOK, add_months, day_start
from openloop_runtime.errors import DomainError, invalid_field

Facts = dict[str, Any]

_KINDS = {party_pb2.PARTY_KIND_CITIZEN: "CITIZEN", party_pb2.PARTY_KIND_MERCHANT: "MERCHANT"}
_SIZES = {
    party_pb2.MERCHANT_SIZE_CLASS_SMALL_SHOP: "SMALL_SHOP",
    party_pb2.MERCHANT_SIZE_CLASS_LARGE_CHAIN: "LARGE_CHAIN",
}
_CHANNELS = {resources_pb2.CHANNEL_IN_PERSON: "IN_PERSON", resources_pb2.CHANNEL_ONLINE: "ONLINE"}
_ROUNDS = {
    resources_pb2.RECEIPTS_ROUND_ROUND1: "ROUND1",
    resources_pb2.RECEIPTS_ROUND_ROUND2: "ROUND2",
}
_DISTRICT = re.compile(r"\d{4}")
_PARTY_NAME = re.compile(r"(citizens|merchants)/[a-z0-9][a-z0-9-]{0,62}")
_PARTICIPANT_NAME = re.compile(r"participants/[a-z0-9][a-z0-9-]{0,62}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LEVEL = re.compile(r"[0-9.]{1,8}")
_MAX_TEXT = 64


def clock_facts(facts: Facts, now: datetime) -> None:
    facts["clock__now"] = now
    facts["clock__year"] = now.astimezone(BANGKOK).year


def _enum(value: int, names: Mapping[Any, str], field: str) -> str | None:
    if value == 0:
        return None
    name = names.get(value)
    if name is None:
        raise invalid_field(field, f"{field} has a value this service does not know")
    return name


def _text(value: str, pattern: re.Pattern[str], field: str) -> str | None:
    if not value:
        return None
    if len(value) > _MAX_TEXT or pattern.fullmatch(value) is None:
        raise invalid_field(field, f"{field} is malformed")
    return value


_PARTY_FIELDS = (
    "party", "kind", "hosting_participant", "district_code", "size_class", "category",
    "authentication_level", "age_years", "identity_verified", "sells_in_person",
    "tax_registered", "tax_years_filed",
)  # fmt: skip
_NAMES = {
    group: {name: f"{group}__{name}" for name in _PARTY_FIELDS} for group in ("payer", "payee")
}


class _Everything:
    """``wanted`` when every fact is to be built (simulation, tests)."""

    def __contains__(self, name: object) -> bool:
        return True


EVERYTHING = _Everything()


def _party(
    party: party_pb2.PartyFacts, group: str, facts: Facts, field: str, wanted: Container[str]
) -> None:
    """Adds the ``{group}__*`` facts of the party that are present and wanted."""
    names = _NAMES[group]
    key = names["party"]
    if key in wanted and party.party:
        facts[key] = _text(party.party, _PARTY_NAME, f"{field}.party")
    key = names["kind"]
    if key in wanted and party.kind:
        facts[key] = _enum(party.kind, _KINDS, f"{field}.kind")
    key = names["hosting_participant"]
    if key in wanted and party.hosting_participant:
        facts[key] = _text(
            party.hosting_participant, _PARTICIPANT_NAME, f"{field}.hosting_participant"
        )
    key = names["district_code"]
    if key in wanted and party.district_code:
        facts[key] = _text(party.district_code, _DISTRICT, f"{field}.district_code")
    key = names["size_class"]
    if key in wanted and party.size_class:
        facts[key] = _enum(party.size_class, _SIZES, f"{field}.size_class")
    key = names["category"]
    if key in wanted and party.category:
        facts[key] = _text(party.category, _CATEGORY, f"{field}.category")
    key = names["authentication_level"]
    if key in wanted and party.authentication_level:
        facts[key] = _text(party.authentication_level, _LEVEL, f"{field}.authentication_level")
    key = names["age_years"]
    if key in wanted and party.age_years:
        if party.age_years < 0:
            raise invalid_field(f"{field}.age_years", f"{field}.age_years must not be negative")
        facts[key] = party.age_years
    for name in ("identity_verified", "sells_in_person", "tax_registered"):
        key = names[name]
        if key in wanted:
            facts[key] = getattr(party, name)
    key = names["tax_years_filed"]
    if key in wanted:
        facts[key] = list(party.tax_years_filed)


def timestamp_fact(stamp: timestamp_pb2.Timestamp, field: str) -> datetime:
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise invalid_field(field, f"{field} is not a valid timestamp") from error


def payment_facts(
    message: resources_pb2.PaymentFacts,
    now: datetime,
    deadline_months: int | None,
    field: str = "facts",
    wanted: Container[str] = EVERYTHING,
) -> Facts:
    """The flat facts of a payment, cash-out or refund, decided at ``now``.

    ``deadline_months`` is the governing program's spending deadline; with it and a first
    use, ``payer.spending_deadline`` is that many calendar months after the first use.
    Party facts not in ``wanted`` (those no rule of the scope reads) are neither built nor
    checked.
    """
    facts: Facts = {}
    clock_facts(facts, now)
    if message.HasField("payer"):
        _party(message.payer, "payer", facts, f"{field}.payer", wanted)
    if message.HasField("payee"):
        _party(message.payee, "payee", facts, f"{field}.payee", wanted)
    if message.HasField("amount"):
        amount = message.amount
        if amount.amount_satang < 0:
            raise invalid_field(f"{field}.amount", f"{field}.amount must not be negative")
        facts["transaction__amount_satang"] = amount.amount_satang
        if amount.currency_code:
            facts["transaction__currency_code"] = amount.currency_code
    channel = _enum(message.channel, _CHANNELS, f"{field}.channel")
    if channel is not None:
        facts["transaction__channel"] = channel
    if message.HasField("payment_time"):
        facts["transaction__time"] = timestamp_fact(message.payment_time, f"{field}.payment_time")
    category = _text(message.goods_category, _CATEGORY, f"{field}.goods_category")
    if category is not None:
        facts["transaction__goods_category"] = category
    receipts = _enum(message.receipts_round, _ROUNDS, f"{field}.receipts_round")
    if receipts is not None:
        facts["transaction__receipts_round"] = receipts
    if message.HasField("payer_first_use_time"):
        first_use = timestamp_fact(message.payer_first_use_time, f"{field}.payer_first_use_time")
        facts["payer__has_first_use"] = True
        facts["payer__first_use_time"] = first_use
        if deadline_months is not None:
            facts["payer__spending_deadline"] = add_months(first_use, deadline_months)
    else:
        facts["payer__has_first_use"] = False
    return facts


_OPTIONAL_ENROLMENT = frozenset(
    {
        "thai_national",
        "assessable_income_satang",
        "deposits_satang",
        "prisoner",
        "welfare_institution_resident",
        "earlier_phase_recipient",
        "entitlement_already_granted",
        "identity_verified",
    }
)


def enrolment_facts(
    message: resources_pb2.EnrolmentFacts, now: datetime, field: str = "enrolment_facts"
) -> Facts:
    """The flat facts of an application. Error messages never echo the birth date."""
    facts: Facts = {}
    clock_facts(facts, now)
    if message.birth_date:
        facts["applicant__birth_date"] = _birth_date(message.birth_date, f"{field}.birth_date")
    district = _text(message.district_code, _DISTRICT, f"{field}.district_code")
    if district is not None:
        facts["applicant__district_code"] = district
    for descriptor, value in message.ListFields():
        name = descriptor.name
        if name in _OPTIONAL_ENROLMENT:
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise invalid_field(f"{field}.{name}", f"{field}.{name} must not be negative")
            facts[f"applicant__{name}"] = value
    return facts


def _birth_date(text: str, field: str) -> datetime:
    error: DomainError = invalid_field(field, f"{field} must be a calendar date, YYYY-MM-DD")
    if _DATE.fullmatch(text) is None:
        raise error
    try:
        return day_start(date.fromisoformat(text)).astimezone(UTC)
    except ValueError:
        raise error from None
