"""Programs as data: a government program's parameters, versioned like rule sets.

A program document (YAML, shipped in ``programs/`` or given with a rule set at publish)
holds what officials decide and later change: the entitlement, the budget, the phases and
their cohorts, the eligibility limits, the spending deadline and dated lists such as the
negative list of goods categories. Rules read them as ``program.*`` facts; a rule set
names the program id and version it was written for, so a decision is always explained
by one rule-set version and one program version. Money is integer satang; dates are
calendar days in Thailand (midnight, UTC+7).
"""

from __future__ import annotations

import calendar
import hashlib
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""Stand-ins for an open end of a window, so conditions compare timestamps, never nulls."""
_DOCUMENT = ConfigDict(extra="forbid", frozen=True)
_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
PROGRAM_VERSION = r"^[0-9a-z][0-9a-z.-]{0,31}$"


class ProgramError(ValueError):
    """A program document that cannot be used; ``field`` names where, when known."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in Thailand."""
    return datetime.combine(day, time(), BANGKOK)


class Phase(BaseModel):
    model_config = _DOCUMENT

    number: StrictInt = Field(ge=1)
    name_en: StrictStr = Field(min_length=1)
    name_th: StrictStr = Field(min_length=1)
    cohort_en: StrictStr = Field(min_length=1)
    cohort_th: StrictStr = Field(min_length=1)
    payout: StrictStr = Field(pattern=r"^(wallet|promptpay_cash)$")
    """How the entitlement reaches people: spent from the wallet, or paid in cash."""
    starts_on: date
    born_from: date | None = None
    """Eligible if born on or after this day (the oldest of the cohort); None: no bound."""
    born_until: date | None = None
    """Eligible if born on or before this day (the youngest); None: no bound."""
    min_age: StrictInt | None = Field(default=None, ge=0)
    max_age: StrictInt | None = Field(default=None, ge=0)


class NegativeListEntry(BaseModel):
    model_config = _DOCUMENT

    category: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    valid_from: date
    """The first day the category may not be bought with the entitlement."""
    valid_until: date | None = None
    """The first day it may be bought again; None while the entry stands."""
    note: StrictStr = ""


class EligibilityLimits(BaseModel):
    model_config = _DOCUMENT

    income_tax_year: StrictInt = Field(ge=2000, le=2200)
    max_assessable_income_satang: StrictInt = Field(ge=0)
    max_deposits_satang: StrictInt = Field(ge=0)


class SpendingDeadline(BaseModel):
    model_config = _DOCUMENT

    months_after_first_use: StrictInt = Field(ge=1, le=120)


class ProgramDocument(BaseModel):
    model_config = _DOCUMENT

    id: StrictStr = Field(pattern=_ID)
    version: StrictStr = Field(pattern=PROGRAM_VERSION)
    name_en: StrictStr = Field(min_length=1)
    name_th: StrictStr = Field(min_length=1)
    budget_satang: StrictInt = Field(ge=0)
    entitlement_satang: StrictInt = Field(gt=0)
    cutoff_date: date
    """The registration cut-off: age, income and deposits are judged on this day."""
    eligibility: EligibilityLimits
    spending_deadline: SpendingDeadline
    phases: tuple[Phase, ...] = Field(min_length=1)
    negative_list: tuple[NegativeListEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ProgramDocument:
        numbers = [phase.number for phase in self.phases]
        if len(set(numbers)) != len(numbers):
            raise ValueError("phase numbers must be unique")
        for entry in self.negative_list:
            if entry.valid_until is not None and entry.valid_until <= entry.valid_from:
                raise ValueError(f"negative list {entry.category}: valid_until before valid_from")
        return self

    @property
    def key(self) -> tuple[str, str]:
        return self.id, self.version

    def phase(self, number: int) -> Phase:
        for phase in self.phases:
            if phase.number == number:
                return phase
        raise ProgramError(f"program {self.id} {self.version} has no phase {number}", "phase")

    def constants(self, phase_number: int | None) -> dict[str, Any]:
        """The ``program`` facts of a rule set governing ``phase_number`` of this program."""
        phase = self.phase(phase_number) if phase_number is not None else None
        return {
            "id": self.id,
            "version": self.version,
            "budget_satang": self.budget_satang,
            "entitlement_satang": self.entitlement_satang,
            "cutoff": day_start(self.cutoff_date),
            "max_income_satang": self.eligibility.max_assessable_income_satang,
            "max_deposits_satang": self.eligibility.max_deposits_satang,
            "spending_deadline_months": self.spending_deadline.months_after_first_use,
            "phase": {
                "number": phase.number if phase else 0,
                "born_from": _start_or(phase.born_from if phase else None, _EARLIEST),
                "born_until": _start_or(phase.born_until if phase else None, _LATEST),
                "min_age": phase.min_age if phase and phase.min_age is not None else 0,
                "max_age": phase.max_age if phase and phase.max_age is not None else 200,
            },
            "negative_list": [
                {
                    "category": entry.category,
                    "valid_from": day_start(entry.valid_from),
                    "valid_until": _start_or(entry.valid_until, _LATEST),
                }
                for entry in self.negative_list
            ],
        }


def _start_or(day: date | None, default: datetime) -> datetime:
    return day_start(day) if day is not None else default


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


YAML_FAILURES: tuple[type[BaseException], ...] = (
    yaml.YAMLError,
    ValueError,  # !!int '0x', a date 2025-02-30, "\U0011FFFF", an int of 5000 digits
    LookupError,  # !!int '-' (IndexError), !!bool 'x' (KeyError)
    AttributeError,  # !!timestamp 'x'
    TypeError,
    OverflowError,
    RecursionError,  # nesting deeper than Python's recursion limit
)
"""What ``yaml.safe_load`` raises for a document it cannot read: besides its own errors,
its constructors let the conversion's exceptions through."""


def yaml_problem(error: BaseException) -> str:
    """What is wrong with a document ``yaml.safe_load`` raised ``error`` for."""
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return str(error) or type(error).__name__


def parse_program(document: str) -> ProgramDocument:
    """The checked program, or :class:`ProgramError` saying what is wrong and where."""
    try:
        data = yaml.safe_load(document)
    except YAML_FAILURES as error:
        raise ProgramError(f"program is not valid YAML: {yaml_problem(error)}") from error
    if not isinstance(data, dict):
        raise ProgramError("program must be a YAML mapping")
    try:
        return ProgramDocument.model_validate(data)
    except ValueError as error:
        errors = getattr(error, "errors", None)
        field = ""
        if callable(errors):
            first = errors()[0]
            field = ".".join(str(part) for part in first.get("loc", ()))
        raise ProgramError(f"program is malformed: {error}", field) from error


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months in Thailand (31 Jan + 1 month is 28/29 Feb)."""
    local = moment.astimezone(BANGKOK)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    days = calendar.monthrange(year, month)[1]
    return local.replace(year=year, month=month, day=min(local.day, days)).astimezone(UTC)


_MICROS_PER_DAY = 86_400_000_000
_BANGKOK_MICROS = 7 * 3_600_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def add_months_micros(micros: int, months: int) -> int:
    """:func:`add_months` on microseconds since the epoch, without building datetimes: the
    same calendar arithmetic on the Bangkok day (UTC+7 all year), the time of day kept.
    ValueError or OverflowError where :func:`add_months` fails (beyond year 9999)."""
    days, time_of_day = divmod(micros + _BANGKOK_MICROS, _MICROS_PER_DAY)
    day = date.fromordinal(_EPOCH_ORDINAL + days)
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    moved = date(year, month, min(day.day, last)).toordinal() - _EPOCH_ORDINAL
    return moved * _MICROS_PER_DAY + time_of_day - _BANGKOK_MICROS
