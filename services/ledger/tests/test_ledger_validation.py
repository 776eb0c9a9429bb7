"""The ledger's per-event rules, without a database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from openloop_ledger.model import AccountFlags, AccountSpec, Balance, TransferSpec
from openloop_ledger.validation import (
    MAX_POSTED,
    A,
    AccountResult,
    T,
    TransferResult,
    check_posting,
    compare_account,
    compare_transfer,
    validate_account,
    validate_transfer,
)

WALLET = AccountFlags(debits_must_not_exceed_credits=True)
ACCOUNT = AccountSpec(
    id="wallet:bank-a.citizen-abc",
    ledger=764,
    code=10,
    flags=WALLET,
    user_data="citizens/abc",
    participant_id="bank-a",
)
TRANSFER = TransferSpec(
    id="payments.p-1",
    debit_account_id="wallet-a",
    credit_account_id="merchant-b",
    amount=500,
    ledger=764,
    code=1,
    user_data="payments/p-1",
)


def test_a_well_formed_account_passes() -> None:
    assert validate_account(ACCOUNT) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": ""}, A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY),
        ({"id": "has space"}, A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED),
        ({"id": "x" * 65}, A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED),
        ({"id": "ไทย"}, A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED),
        (
            {"flags": AccountFlags(True, True)},
            A.CREATE_ACCOUNT_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        ({"ledger": 0}, A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO),
        ({"code": 0}, A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO),
        # Several mistakes: the first in the enum's order wins.
        ({"id": "", "ledger": 0, "code": 0}, A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY),
        ({"ledger": 0, "code": 0}, A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO),
    ],
)
def test_account_mistakes_have_their_code(
    change: dict[str, object], expected: AccountResult
) -> None:
    assert validate_account(replace(ACCOUNT, **change)) == expected  # type: ignore[arg-type]


def test_account_ids_allow_the_documented_alphabet() -> None:
    assert validate_account(replace(ACCOUNT, id="Az09._:-" + "x" * 56)) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, A.CREATE_ACCOUNT_RESULT_EXISTS),
        ({"flags": AccountFlags()}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FLAGS),
        ({"user_data": "x"}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA),
        ({"participant_id": "x"}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_PARTICIPANT),
        ({"ledger": 1}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_LEDGER),
        ({"code": 1}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE),
        ({"user_data": "x", "code": 1}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA),
    ],
)
def test_an_existing_account_is_compared_field_by_field(
    change: dict[str, object], expected: AccountResult
) -> None:
    assert compare_account(replace(ACCOUNT, **change), ACCOUNT) == expected  # type: ignore[arg-type]


def test_a_well_formed_transfer_passes() -> None:
    assert validate_transfer(TRANSFER) is None
    assert validate_transfer(replace(TRANSFER, amount=MAX_POSTED)) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": ""}, T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY),
        ({"id": "a/b"}, T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED),
        ({"debit_account_id": ""}, T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY),
        ({"credit_account_id": ""}, T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY),
        ({"credit_account_id": "wallet-a"}, T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT),
        ({"ledger": 0}, T.CREATE_TRANSFER_RESULT_LEDGER_MUST_NOT_BE_ZERO),
        ({"code": 0}, T.CREATE_TRANSFER_RESULT_CODE_MUST_NOT_BE_ZERO),
        ({"amount": 0}, T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO),
        ({"amount": MAX_POSTED + 1}, T.CREATE_TRANSFER_RESULT_AMOUNT_TOO_LARGE),
        ({"amount": 2**64 - 1}, T.CREATE_TRANSFER_RESULT_AMOUNT_TOO_LARGE),
        ({"id": "", "amount": 0}, T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY),
        ({"code": 0, "amount": 0}, T.CREATE_TRANSFER_RESULT_CODE_MUST_NOT_BE_ZERO),
    ],
)
def test_transfer_mistakes_have_their_code(
    change: dict[str, object], expected: TransferResult
) -> None:
    assert validate_transfer(replace(TRANSFER, **change)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, T.CREATE_TRANSFER_RESULT_EXISTS),
        (
            {"debit_account_id": "x"},
            T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
        ),
        (
            {"credit_account_id": "x"},
            T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID,
        ),
        ({"amount": 1}, T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT),
        ({"user_data": ""}, T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA),
        ({"ledger": 1}, T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_LEDGER),
        ({"code": 2}, T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CODE),
        ({"amount": 1, "code": 2}, T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT),
    ],
)
def test_an_existing_transfer_is_compared_field_by_field(
    change: dict[str, object], expected: TransferResult
) -> None:
    assert compare_transfer(replace(TRANSFER, **change), TRANSFER) == expected  # type: ignore[arg-type]


def _balance(
    *, debits: int = 0, credits: int = 0, flags: AccountFlags | None = None, ledger: int = 764
) -> Balance:
    return Balance(
        ledger=ledger, flags=flags or AccountFlags(), debits_posted=debits, credits_posted=credits
    )


def test_a_transfer_within_the_balance_posts() -> None:
    assert check_posting(TRANSFER, _balance(credits=500, flags=WALLET), _balance()) is None


@pytest.mark.parametrize(
    ("debit", "credit", "expected"),
    [
        (None, _balance(), T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND),
        (None, None, T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND),
        (_balance(), None, T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND),
        (
            _balance(),
            _balance(ledger=1),
            T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER,
        ),
        (
            _balance(ledger=1),
            _balance(ledger=1),
            T.CREATE_TRANSFER_RESULT_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
        ),
        (
            _balance(debits=MAX_POSTED - 499),
            _balance(),
            T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED,
        ),
        (
            _balance(),
            _balance(credits=MAX_POSTED - 499),
            T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_POSTED,
        ),
        (_balance(credits=499, flags=WALLET), _balance(), T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS),
        (
            _balance(debits=1, credits=500, flags=WALLET),
            _balance(),
            T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
        ),
        (
            _balance(),
            _balance(debits=499, flags=AccountFlags(credits_must_not_exceed_debits=True)),
            T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS,
        ),
    ],
)
def test_posting_failures_have_their_code(
    debit: Balance | None, credit: Balance | None, expected: TransferResult
) -> None:
    assert check_posting(TRANSFER, debit, credit) == expected


def test_posting_to_exactly_the_limit_and_the_maximum_is_allowed() -> None:
    assert (
        check_posting(TRANSFER, _balance(debits=100, credits=600, flags=WALLET), _balance()) is None
    )
    assert (
        check_posting(
            TRANSFER, _balance(debits=MAX_POSTED - 500), _balance(credits=MAX_POSTED - 500)
        )
        is None
    )
