"""A payment's combined-program variables read straight off the wire message.

The general path builds every wanted fact from the proto (:func:`facts.payment_facts`) and
then encodes what the scope's combined program reads (:class:`encoding.Inputs`): two dicts,
two passes, and most of the time a decision takes. :class:`WireInputs` does both in one
pass, for the common case only: every text it reads is well formed (seen before, or
matching its pattern now), every enum value is known, every timestamp is in range and
every required fact is present. Anything else (a malformed value, a party or a required
fact missing) answers None, and the decision takes the general path, which checks,
reports and decides as it always has. The fast path therefore never decides differently
and never reports an error of its own: the general path is its specification, and
``test_rules_wire`` holds the two to the same decisions, on every single change to a
compliant payment and on random messages.

What it reads, it reads as :func:`facts.payment_facts` does: a party's fields only when
wanted, the transaction's fields always checked, a fact the caller did not supply absent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from openloop.rules.v1 import resources_pb2
from openloop_rules import encoding, facts
from openloop_rules.program import add_months_micros

_ONE_SECOND_US = 1_000_000
_Party = Literal["payer", "payee"]
_PARTIES: tuple[_Party, ...] = ("payer", "payee")


class Moment(NamedTuple):
    """When a batch is decided, in each form a variable may take."""

    now: datetime
    micros: int
    bangkok_year: int

    @classmethod
    def of(cls, now: datetime) -> Moment:
        return cls(now, encoding.micros(now), facts.bangkok_year(now))


_Outputs = tuple[tuple[str, int], ...]
"""Where one fact goes: each (variable, encoding) of the combined program that reads it."""
_Text = tuple[str, set[str], re.Pattern[str], bool, _Outputs]
"""A text field of a party: its name, the values seen well formed, its pattern, whether the
scope requires it, and where it goes."""
_Enum = tuple[str, Mapping[int, str], bool, _Outputs]
"""An enum field of a party: its name, its values' names, required, where it goes."""
_Other = tuple[str, int, bool, _Outputs]
"""An age, flag or list of years: its name, how it is read, required, where it goes."""


_TRANSACTION_ENUMS = (
    ("channel", facts.CHANNELS, "transaction__channel"),
    ("receipts_round", facts.ROUNDS, "transaction__receipts_round"),
)
"""The payment's enum fields: the field, its values' names and the fact it gives."""


class WireInputs:
    """The variables of one scope's combined program, from a ``PaymentFacts`` message.

    ``inputs`` are the program's variables, ``codes`` the rule set's string constants,
    ``wanted`` the flat facts the general path would build for the scope (the variables and
    the required facts) and ``required`` those without which it denies.
    """

    __slots__ = ("_categories", "_codes", "_deadline_months", "_party", "_required", "_transaction")

    def __init__(
        self,
        inputs: Collection[encoding.Input],
        codes: Mapping[str, int],
        wanted: Collection[str],
        required: Collection[str],
        deadline_months: int | None,
    ) -> None:
        outputs: dict[str, list[tuple[str, int]]] = {}
        for item in inputs:
            outputs.setdefault(item.fact, []).append((item.name, item.encoding))
        self._codes = codes
        self._deadline_months = deadline_months
        self._categories = facts.seen_well_formed(facts.CATEGORY)
        self._required = frozenset(required)
        party: list[tuple[_Party, tuple[_Text, ...], tuple[_Enum, ...], tuple[_Other, ...]]] = []
        for group in _PARTIES:
            texts: list[_Text] = []
            enums: list[_Enum] = []
            rest: list[_Other] = []
            for name, how, check in facts.PARTY_FIELDS:
                fact = f"{group}__{name}"
                if fact not in wanted:
                    continue
                needed, feeds = fact in self._required, tuple(outputs.get(fact, ()))
                if how == facts.TEXT:
                    texts.append((name, facts.seen_well_formed(check), check, needed, feeds))
                elif how == facts.ENUM:
                    enums.append((name, check, needed, feeds))
                else:
                    rest.append((name, how, needed, feeds))
            if texts or enums or rest:
                party.append((group, tuple(texts), tuple(enums), tuple(rest)))
        self._party = tuple(party)
        self._transaction = {
            fact: tuple(outputs.get(fact, ()))
            for fact in (
                "clock__now",
                "clock__year",
                "transaction__amount_satang",
                "transaction__currency_code",
                "transaction__channel",
                "transaction__time",
                "transaction__goods_category",
                "transaction__receipts_round",
                "payer__has_first_use",
                "payer__first_use_time",
                "payer__spending_deadline",
            )
        }
        """Facts outside the parties: the program's variables each feeds (maybe none)."""

    def context(self, message: resources_pb2.PaymentFacts, moment: Moment) -> dict[str, Any] | None:
        """The program's variables, the same (up to the numbering of unknown strings) as
        ``Inputs.context(payment_facts(...))``; None where the general path must decide."""
        variables: dict[str, Any] = {}
        others: dict[str, int] = {}
        if not self._parties(message, variables, others):
            return None
        wants = self._transaction
        for variable, how in wants["clock__now"]:
            variables[variable] = moment.micros if how == encoding.MICROS else moment.now
        for variable, _ in wants["clock__year"]:
            variables[variable] = moment.bangkok_year
        if not self._transaction_facts(message, variables, others):
            return None
        return variables if self._instants(message, variables) else None

    def _parties(  # noqa: PLR0912 - one inline pass over the party fields: a batch's hot loop
        self, message: resources_pb2.PaymentFacts, variables: dict[str, Any], others: dict[str, int]
    ) -> bool:
        """The parties' variables; False when a field is missing or not known well formed."""
        for group, texts, enums, rest in self._party:
            if not message.HasField(group):
                return False
            party = getattr(message, group)
            for name, seen, pattern, required, outputs in texts:
                value = getattr(party, name)
                if not value:
                    if required:
                        return False
                    continue
                if value not in seen and not facts.matches(value, pattern):
                    return False
                if outputs:
                    self._put(outputs, value, variables, others)
            for name, names, required, outputs in enums:
                number = getattr(party, name)
                if not number:
                    if required:
                        return False
                    continue
                value = names.get(number)
                if value is None:
                    return False
                if outputs:
                    self._put(outputs, value, variables, others)
            for name, how, required, outputs in rest:
                value = _read(how, getattr(party, name))
                if value is _ABSENT and required:
                    return False
                if value is _MALFORMED:
                    return False
                if value is not _ABSENT:
                    for variable, _ in outputs:  # ints, bools and lists are never encoded
                        variables[variable] = value
        return True

    def _transaction_facts(
        self, message: resources_pb2.PaymentFacts, variables: dict[str, Any], others: dict[str, int]
    ) -> bool:
        """The transaction's variables; False when one of its fields is not as expected."""
        wants = self._transaction
        if message.HasField("amount"):
            amount = message.amount
            satang = amount.amount_satang
            if satang < 0:
                return False
            for variable, _ in wants["transaction__amount_satang"]:
                variables[variable] = satang
            if amount.currency_code:
                self._put(
                    wants["transaction__currency_code"], amount.currency_code, variables, others
                )
        for field, names, fact in _TRANSACTION_ENUMS:
            number = getattr(message, field)
            if number:
                name = names.get(number)
                if name is None:
                    return False
                self._put(wants[fact], name, variables, others)
        category = message.goods_category
        if category:
            if category not in self._categories and not facts.matches(category, facts.CATEGORY):
                return False
            self._put(wants["transaction__goods_category"], category, variables, others)
        return True

    def _instants(self, message: resources_pb2.PaymentFacts, variables: dict[str, Any]) -> bool:
        """The payment's time, the wallet's first use and its deadline; False for a timestamp
        out of range."""
        wants = self._transaction
        if message.HasField("payment_time"):
            stamp = message.payment_time
            if not facts.in_range(stamp.seconds, stamp.nanos):
                return False
            for variable, how in wants["transaction__time"]:
                variables[variable] = _instant(stamp.seconds, stamp.nanos, how)
        first_use = message.HasField("payer_first_use_time")
        for variable, _ in wants["payer__has_first_use"]:
            variables[variable] = first_use
        if not first_use:
            return True
        stamp = message.payer_first_use_time
        seconds, nanos = stamp.seconds, stamp.nanos
        if not facts.in_range(seconds, nanos):
            return False
        for variable, how in wants["payer__first_use_time"]:
            variables[variable] = _instant(seconds, nanos, how)
        deadline = wants["payer__spending_deadline"]
        if deadline and self._deadline_months is not None:
            start = _instant(seconds, nanos, encoding.MICROS)
            try:
                end = add_months_micros(start, self._deadline_months)
            except (ValueError, OverflowError):
                return False
            for variable, how in deadline:
                variables[variable] = (
                    end if how == encoding.MICROS else facts.timestamp_at(*_seconds_and_nanos(end))
                )
        return True

    def _put(
        self, outputs: _Outputs, value: str, variables: dict[str, Any], others: dict[str, int]
    ) -> None:
        """``value`` (a string fact) into each variable that reads it."""
        for variable, how in outputs:
            if how == encoding.CODE:
                number = self._codes.get(value)
                if number is None:
                    number = others.setdefault(value, -1 - len(others))
                variables[variable] = number
            else:
                variables[variable] = value


def _instant(seconds: int, nanos: int, how: int) -> Any:
    """A Timestamp's fields (in range) as the variable takes them."""
    if how == encoding.MICROS:  # encoding.micros(facts.timestamp_at(...)) without the datetime
        return seconds * _ONE_SECOND_US + nanos // 1000
    return facts.timestamp_at(seconds, nanos)


_ABSENT = object()
"""Not supplied: the fact is left out."""
_MALFORMED = object()
"""Not known to be well formed: the general path checks it."""


def _read(how: int, value: Any) -> Any:
    """A party's age, flag or years as :func:`facts.payment_facts` builds them, :data:`_ABSENT`
    or :data:`_MALFORMED` (``how`` as in :data:`facts.PARTY_FIELDS`)."""
    if how == facts.AGE:
        if not value:
            return _ABSENT
        return value if value > 0 else _MALFORMED
    if how == facts.YEARS:
        return list(value)
    return value


def _seconds_and_nanos(micros: int) -> tuple[int, int]:
    seconds, rest = divmod(micros, _ONE_SECOND_US)
    return seconds, rest * 1000
