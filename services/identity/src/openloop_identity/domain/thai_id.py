"""The 13-digit Thai identification numbers and their shared check digit.

Citizen IDs and juristic (company) tax IDs use the same mod-11 check digit but
differ in their first digit: juristic IDs start with 0 and citizen IDs never do.
They are separate validators so a merchant's tax ID is never accepted where a
person's ID is expected, or the other way round.
"""

from __future__ import annotations

import re

_THIRTEEN_DIGITS = re.compile(r"[0-9]{13}")
_WEIGHTS = tuple(range(13, 1, -1))
"""13, 12, ..., 2: one weight for each of the first twelve digits."""


def check_digit(first_twelve: str) -> int:
    """The check digit the thirteenth position must hold: ``(11 - sum mod 11) mod 10``."""
    if len(first_twelve) != 12 or not first_twelve.isascii() or not first_twelve.isdigit():
        raise ValueError("expected exactly twelve ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first_twelve, _WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def _has_valid_check_digit(number: str) -> bool:
    # ASCII only: str.isdigit() would also accept Thai digits such as "๑".
    if _THIRTEEN_DIGITS.fullmatch(number) is None:
        return False
    return check_digit(number[:12]) == int(number[12])


def is_valid_citizen_id(number: str) -> bool:
    """A natural person's 13-digit ID: never starts with 0, check digit correct."""
    return not number.startswith("0") and _has_valid_check_digit(number)


def is_valid_juristic_tax_id(number: str) -> bool:
    """A juristic person's 13-digit tax ID: starts with 0, check digit correct."""
    return number.startswith("0") and _has_valid_check_digit(number)
