"""The ledger's rules as pure functions returning TigerBeetle-style result codes.

Each function checks its codes in the order the result enums list them, and
returns the first that applies (``None`` when the event passes). No I/O: the
store feeds them the rows it has locked, and a later slice (linked and pending
transfers) composes them differently without touching SQL.
"""

from __future__ import annotations

import re
from typing import TypeAlias

from openloop.ledger.v1 import resources_pb2
from openloop_ledger.model import AccountSpec, Balance, TransferSpec

AccountResult: TypeAlias = resources_pb2.CreateAccountResult.ValueType
TransferResult: TypeAlias = resources_pb2.CreateTransferResult.ValueType
A = resources_pb2.CreateAccountResult
T = resources_pb2.CreateTransferResult

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""Account and transfer ids: printable, URL- and log-safe, bounded."""
MAX_POSTED = 2**63 - 1
"""Posted totals and amounts live in PostgreSQL BIGINT columns."""


def is_well_formed_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def validate_account(spec: AccountSpec) -> AccountResult | None:
    """The account's own mistakes, before the ledger is consulted."""
    if not spec.id:
        return A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY
    if not is_well_formed_id(spec.id):
        return A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED
    if spec.flags.debits_must_not_exceed_credits and spec.flags.credits_must_not_exceed_debits:
        return A.CREATE_ACCOUNT_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if spec.ledger == 0:
        return A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO
    if spec.code == 0:
        return A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO
    return None


def compare_account(new: AccountSpec, existing: AccountSpec) -> AccountResult:
    """Why re-creating ``existing`` as ``new`` changes nothing: EXISTS or the first difference."""
    if new.flags != existing.flags:
        return A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FLAGS
    if new.user_data != existing.user_data:
        return A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA
    if new.participant_id != existing.participant_id:
        return A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_PARTICIPANT
    if new.ledger != existing.ledger:
        return A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_LEDGER
    if new.code != existing.code:
        return A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE
    return A.CREATE_ACCOUNT_RESULT_EXISTS


def validate_transfer(spec: TransferSpec) -> TransferResult | None:
    """The transfer's own mistakes, before idempotency or accounts are consulted."""
    if not spec.id:
        return T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY
    if not is_well_formed_id(spec.id):
        return T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED
    if not spec.debit_account_id:
        return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY
    if not spec.credit_account_id:
        return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY
    if spec.debit_account_id == spec.credit_account_id:
        return T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT
    if spec.ledger == 0:
        return T.CREATE_TRANSFER_RESULT_LEDGER_MUST_NOT_BE_ZERO
    if spec.code == 0:
        return T.CREATE_TRANSFER_RESULT_CODE_MUST_NOT_BE_ZERO
    if spec.amount == 0:
        return T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO
    if spec.amount > MAX_POSTED:
        return T.CREATE_TRANSFER_RESULT_AMOUNT_TOO_LARGE
    return None


def compare_transfer(new: TransferSpec, existing: TransferSpec) -> TransferResult:
    """Why resubmitting ``existing`` as ``new`` moves nothing: EXISTS or the first difference."""
    if new.debit_account_id != existing.debit_account_id:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if new.credit_account_id != existing.credit_account_id:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    if new.amount != existing.amount:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT
    if new.user_data != existing.user_data:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA
    if new.ledger != existing.ledger:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_LEDGER
    if new.code != existing.code:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CODE
    return T.CREATE_TRANSFER_RESULT_EXISTS


def check_posting(
    spec: TransferSpec, debit: Balance | None, credit: Balance | None
) -> TransferResult | None:
    """Whether a well-formed, new transfer may post against the accounts' current balances."""
    if debit is None:
        return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND
    if credit is None:
        return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND
    if debit.ledger != credit.ledger:
        return T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
    if spec.ledger != debit.ledger:
        return T.CREATE_TRANSFER_RESULT_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
    if debit.debits_posted + spec.amount > MAX_POSTED:
        return T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED
    if credit.credits_posted + spec.amount > MAX_POSTED:
        return T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_POSTED
    if (
        debit.flags.debits_must_not_exceed_credits
        and debit.debits_posted + spec.amount > debit.credits_posted
    ):
        return T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
    if (
        credit.flags.credits_must_not_exceed_debits
        and credit.credits_posted + spec.amount > credit.debits_posted
    ):
        return T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS
    return None
