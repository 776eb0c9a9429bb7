"""Facts from the wire: the proto a caller sends, as the flat CEL variables rules read.

See :mod:`openloop_rules.factschema` for every fact. A fact the caller did not supply is
left out, never given as an empty string or zero, so two unknown districts never compare
equal. A value of the wrong shape (an enum value this build does not know, a district code
that is not four digits, a malformed date) is the caller's mistake: INVALID_ARGUMENT naming
the field, never a decision.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Container, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_rules.program import BANGKOK, add_months, day_start
from openloop_runtime.errors import DomainError, invalid_field

Facts = dict[str, Any]

KINDS = {party_pb2.PARTY_KIND_CITIZEN: "CITIZEN", party_pb2.PARTY_KIND_MERCHANT: "MERCHANT"}
SIZES = {
    party_pb2.MERCHANT_SIZE_CLASS_SMALL_SHOP: "SMALL_SHOP",
    party_pb2.MERCHANT_SIZE_CLASS_LARGE_CHAIN: "LARGE_CHAIN",
}
CHANNELS = {resources_pb2.CHANNEL_IN_PERSON: "IN_PERSON", resources_pb2.CHANNEL_ONLINE: "ONLINE"}
ROUNDS = {
    resources_pb2.RECEIPTS_ROUND_ROUND1: "ROUND1",
    resources_pb2.RECEIPTS_ROUND_ROUND2: "ROUND2",
}
DISTRICT = re.compile(r"\d{4}")
PARTY_NAME = re.compile(r"(citizens|merchants)/[a-z0-9][a-z0-9-]{0,62}")
PARTICIPANT_NAME = re.compile(r"participants/[a-z0-9][a-z0-9-]{0,62}")
CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LEVEL = re.compile(r"[0-9.]{1,8}")
MAX_TEXT = 64


def clock_facts(facts: Facts, now: datetime) -> None:
    facts["clock__now"] = now
    facts["clock__year"] = bangkok_year(now)


@functools.lru_cache(maxsize=16)
def bangkok_year(now: datetime) -> int:
    """Every decision of a batch shares ``now``."""
    return now.astimezone(BANGKOK).year


def _enum(value: int, names: Mapping[Any, str], field: str) -> str | None:
    if value == 0:
        return None
    name = names.get(value)
    if name is None:
        raise invalid_field(field, f"{field} has a value this service does not know")
    return name


_VALID: dict[re.Pattern[str], set[str]] = {}
"""Per pattern, values already found well formed: districts, participants, merchants and
categories repeat from one decision to the next, and a set lookup is cheaper than a match."""
_VALID_MAX = 4096
"""Bound on each set; a full set is emptied and fills up again."""


def seen_well_formed(pattern: re.Pattern[str]) -> set[str]:
    """The values already found to match ``pattern``: a value in it needs no match. The set
    is this module's own and changes as values are checked; read it, never add to it."""
    valid = _VALID.get(pattern)
    if valid is None:
        valid = _VALID[pattern] = set()
    return valid


def matches(value: str, pattern: re.Pattern[str]) -> bool:
    """Whether a text fact is well formed: not too long, and all of it matches ``pattern``."""
    return len(value) <= MAX_TEXT and pattern.fullmatch(value) is not None


def _text(value: str, pattern: re.Pattern[str], field: str) -> str | None:
    if not value:
        return None
    valid = seen_well_formed(pattern)
    if value in valid:
        return value
    if not matches(value, pattern):
        raise invalid_field(field, f"{field} is malformed")
    if len(valid) >= _VALID_MAX:
        valid.clear()
    valid.add(value)
    return value


TEXT, ENUM, AGE, FLAG, YEARS = range(5)
PARTY_FIELDS: tuple[tuple[str, int, Any], ...] = (
    ("party", TEXT, PARTY_NAME),
    ("kind", ENUM, KINDS),
    ("hosting_participant", TEXT, PARTICIPANT_NAME),
    ("district_code", TEXT, DISTRICT),
    ("size_class", ENUM, SIZES),
    ("category", TEXT, CATEGORY),
    ("authentication_level", TEXT, _LEVEL),
    ("age_years", AGE, None),
    ("identity_verified", FLAG, None),
    ("sells_in_person", FLAG, None),
    ("tax_registered", FLAG, None),
    ("tax_years_filed", YEARS, None),
)
"""A party's facts in the order they are checked (the first malformed one is reported): the
field, how it is read and what checks it (a pattern for text, the names for an enum)."""

_Plan = tuple[tuple[str, str, int, Any], ...]


class _Everything:
    """``wanted`` when every fact is to be built (simulation, tests)."""

    def __contains__(self, name: object) -> bool:
        return True


EVERYTHING = _Everything()

_PLANS: dict[tuple[str, Container[str]], _Plan] = {}


def _plan(group: str, wanted: Container[str]) -> _Plan:
    """The party fields of ``group`` that are wanted, with their fact names."""
    try:
        plan = _PLANS.get((group, wanted))
    except TypeError:  # an unhashable ``wanted`` (a set): not kept
        plan = None
    if plan is None:
        plan = tuple(
            (name, f"{group}__{name}", how, check)
            for name, how, check in PARTY_FIELDS
            if f"{group}__{name}" in wanted
        )
        with contextlib.suppress(TypeError):
            if len(_PLANS) >= 64:
                _PLANS.clear()
            _PLANS[(group, wanted)] = plan
    return plan


def _party(
    party: party_pb2.PartyFacts, group: str, facts: Facts, field: str, wanted: Container[str]
) -> None:
    """Adds the ``{group}__*`` facts of the party that are present and wanted."""
    for name, key, how, check in _plan(group, wanted):
        value = getattr(party, name)
        if how == TEXT:
            if value:
                valid = _VALID.get(check)
                if valid is None or value not in valid:
                    _text(value, check, f"{field}.{name}")
                facts[key] = value
        elif how == ENUM:
            if value:
                facts[key] = _enum(value, check, f"{field}.{name}")
        elif how == AGE:
            if value:
                if value < 0:
                    raise invalid_field(
                        f"{field}.age_years", f"{field}.age_years must not be negative"
                    )
                facts[key] = value
        elif how == FLAG:
            facts[key] = value
        else:
            facts[key] = list(value)


SECONDS_MIN = -62135596800
SECONDS_MAX = 253402300799
"""The range of a protobuf Timestamp (0001-01-01 to 9999-12-31), as ``ToDatetime`` checks."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def in_range(seconds: int, nanos: int) -> bool:
    """Whether a Timestamp's fields are a valid instant (``ToDatetime`` accepts them)."""
    return SECONDS_MIN <= seconds <= SECONDS_MAX and 0 <= nanos < 1_000_000_000


def _checked(stamp: timestamp_pb2.Timestamp, field: str) -> tuple[int, int]:
    seconds, nanos = stamp.seconds, stamp.nanos
    if not in_range(seconds, nanos):
        raise invalid_field(field, f"{field} is not a valid timestamp")
    return seconds, nanos


def timestamp_fact(stamp: timestamp_pb2.Timestamp, field: str) -> datetime:
    """``stamp.ToDatetime(tzinfo=UTC)``: the same checks and value, without its detours."""
    return timestamp_at(*_checked(stamp, field))


def timestamp_at(seconds: int, nanos: int) -> datetime:
    """The UTC instant of a Timestamp's fields already checked to be in range (microseconds:
    the nanoseconds below are cut, as ``ToDatetime`` cuts them)."""
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


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
    checked; timestamps are always checked, and added only when wanted.
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
    if message.channel:
        facts["transaction__channel"] = _enum(message.channel, CHANNELS, f"{field}.channel")
    if message.HasField("payment_time"):
        if "transaction__time" in wanted:
            facts["transaction__time"] = timestamp_fact(
                message.payment_time, f"{field}.payment_time"
            )
        else:
            _checked(message.payment_time, f"{field}.payment_time")
    category = message.goods_category
    if category:
        facts["transaction__goods_category"] = _text(category, CATEGORY, f"{field}.goods_category")
    if message.receipts_round:
        facts["transaction__receipts_round"] = _enum(
            message.receipts_round, ROUNDS, f"{field}.receipts_round"
        )
    _first_use(message, facts, field, deadline_months, wanted)
    return facts


def _first_use(
    message: resources_pb2.PaymentFacts,
    facts: Facts,
    field: str,
    deadline_months: int | None,
    wanted: Container[str],
) -> None:
    if message.HasField("payer_first_use_time"):
        first_use = timestamp_fact(message.payer_first_use_time, f"{field}.payer_first_use_time")
        facts["payer__has_first_use"] = True
        if "payer__first_use_time" in wanted:
            facts["payer__first_use_time"] = first_use
        if deadline_months is not None and "payer__spending_deadline" in wanted:
            try:
                facts["payer__spending_deadline"] = add_months(first_use, deadline_months)
            except (ValueError, OverflowError):  # the deadline would fall after 9999
                raise invalid_field(
                    f"{field}.payer_first_use_time",
                    f"{field}.payer_first_use_time is too late for the program's spending deadline",
                ) from None
    else:
        facts["payer__has_first_use"] = False


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
    district = _text(message.district_code, DISTRICT, f"{field}.district_code")
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
