"""The 13-digit check digit shared by citizen IDs and juristic tax IDs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openloop_identity.domain.thai_id import (
    check_digit,
    is_valid_citizen_id,
    is_valid_juristic_tax_id,
)

twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("1345951597671", True),  # the domain document's worked example (sum 406)
        ("6000000000000", True),  # edge case: sum 66, check digit (11 - 0) mod 10 = 1 -> 0
        ("1101700230705", False),  # its check digit should be 8
        ("1101700230708", True),
        ("0105536000313", False),  # a juristic ID is not a citizen ID
        ("134595159767", False),  # twelve digits
        ("13459515976710", False),  # fourteen digits
        ("1-3459-51597-67-1", False),
        ("134595159767a", False),
        ("๑๓๔๕๙๕๑๕๙๗๖๗๑", False),  # Thai digits are not accepted
        ("", False),
    ],
)
def test_citizen_id_vectors(number: str, valid: bool) -> None:
    assert is_valid_citizen_id(number) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("0105536000313", True),
        ("0105536000314", False),
        ("1345951597671", False),  # a citizen ID is not a juristic ID
        ("010553600031", False),
    ],
)
def test_juristic_tax_id_vectors(number: str, valid: bool) -> None:
    assert is_valid_juristic_tax_id(number) is valid


def test_check_digit_of_the_documented_example() -> None:
    assert check_digit("134595159767") == 1
    assert check_digit("110170023070") == 8


def test_check_digit_rejects_malformed_prefixes() -> None:
    with pytest.raises(ValueError, match="twelve"):
        check_digit("12345")
    with pytest.raises(ValueError, match="twelve"):
        check_digit("๑๓๔๕๙๕๑๕๙๗๖๗")


@given(twelve_digits)
def test_every_prefix_with_its_check_digit_validates(prefix: str) -> None:
    number = prefix + str(check_digit(prefix))
    if prefix.startswith("0"):
        assert is_valid_juristic_tax_id(number)
        assert not is_valid_citizen_id(number)
    else:
        assert is_valid_citizen_id(number)
        assert not is_valid_juristic_tax_id(number)


@given(twelve_digits, st.integers(min_value=1, max_value=9))
def test_any_other_last_digit_fails(prefix: str, offset: int) -> None:
    wrong = (check_digit(prefix) + offset) % 10
    number = prefix + str(wrong)
    assert not is_valid_citizen_id(number)
    assert not is_valid_juristic_tax_id(number)
