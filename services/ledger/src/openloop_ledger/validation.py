"""The ledger's per-event rules as pure functions returning TigerBeetle-style result codes.

The result enums of ``resources.proto`` list their codes in order of precedence: an event
that breaks several rules gets the first one listed. Each function here covers one stretch
of that order, checks its codes in enum order and returns the first that applies (``None``
when the event passes the stretch). :mod:`openloop_ledger.planning` calls the stretches one
after the other, so the code an event ends with is always the earliest that applies.

Nothing here reads a database or keeps state: the planner hands in the accounts and
transfers it holds, which keeps every rule testable on its own.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Protocol, TypeAlias

from openloop.ledger.v1 import resources_pb2
from openloop_ledger.model import (
    EXPIRY_PREFIX,
    MAX_AMOUNT,
    AccountSpec,
    Resolution,
    Transfer,
    TransferFlags,
    TransferSpec,
)

AccountResult: TypeAlias = resources_pb2.CreateAccountResult.ValueType
TransferResult: TypeAlias = resources_pb2.CreateTransferResult.ValueType
A = resources_pb2.CreateAccountResult
T = resources_pb2.CreateTransferResult

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""Client-chosen account and transfer ids: printable, URL- and log-safe, bounded."""

_is_id = ID_PATTERN.fullmatch


def is_well_formed_id(value: str) -> bool:
    """Whether a client may choose ``value`` as an account or transfer id."""
    return _is_id(value) is not None


def is_lookup_id(value: str) -> bool:
    """Whether ``value`` can name a recorded transfer: a client id or an expiry id."""
    if value.startswith(EXPIRY_PREFIX):
        value = value[len(EXPIRY_PREFIX) :]
    return _is_id(value) is not None


# Accounts ---------------------------------------------------------------------------------


def check_account(spec: AccountSpec, existing: AccountSpec | None) -> AccountResult:
    """What creating ``spec`` gives, ``existing`` being the account already under its id.

    ``CREATE_ACCOUNT_RESULT_OK`` means the account may be created.
    """
    if not spec.id:
        return A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY
    if _is_id(spec.id) is None:
        return A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED
    if existing is not None:
        return compare_account(spec, existing)
    if spec.flags.debits_must_not_exceed_credits and spec.flags.credits_must_not_exceed_debits:
        return A.CREATE_ACCOUNT_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if spec.ledger == 0:
        return A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO
    if spec.code == 0:
        return A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO
    return A.CREATE_ACCOUNT_RESULT_OK


def compare_account(new: AccountSpec, existing: AccountSpec) -> AccountResult:
    """EXISTS, or the first field in which ``new`` differs from the account already created.

    ``linked`` is not compared: it describes the request, not the account.
    """
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


# Transfers: the event alone ---------------------------------------------------------------


def check_transfer_id(spec: TransferSpec) -> TransferResult | None:
    """ID_MUST_NOT_BE_EMPTY and ID_IS_MALFORMED: the checks before the idempotency check."""
    if not spec.id:
        return T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY
    if _is_id(spec.id) is None:
        return T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED
    return None


def resolves_pending(flags: TransferFlags) -> bool:
    """Whether the transfer posts or voids a pending transfer."""
    return flags.post_pending_transfer or flags.void_pending_transfer


def compare_transfer(
    new: TransferSpec, recorded: TransferSpec, pending: TransferSpec | None = None
) -> TransferResult:
    """EXISTS, or the first field in which ``new`` differs from the transfer recorded under its id.

    Fields in the order of the EXISTS_* codes; the flags are compared whole, ``linked``
    included, as TigerBeetle does. For a post or void, an empty account id, a zero ledger or
    code matches what was recorded; a zero amount means the full amount of ``pending`` (the
    transfer it resolved), so a post of part of it, retried as a post of all of it, has a
    different amount; and an empty user_data means the pending transfer's (a post recorded
    before posts inherited it, with an empty one, matches too). For a balancing transfer the
    amount matches when it is at least what moved.
    """
    if new.flags.bits() != recorded.flags.bits():
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FLAGS
    if new.pending_id != recorded.pending_id:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_PENDING_ID
    if new.timeout != recorded.timeout:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_TIMEOUT
    flags = new.flags
    resolving = resolves_pending(flags)
    if new.debit_account_id != recorded.debit_account_id and not (
        resolving and not new.debit_account_id
    ):
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if new.credit_account_id != recorded.credit_account_id and not (
        resolving and not new.credit_account_id
    ):
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    if resolving:
        wanted = new.amount or (None if pending is None else pending.amount)
        amount_differs = wanted is not None and wanted != recorded.amount
    elif flags.balancing_debit or flags.balancing_credit:
        amount_differs = new.amount < recorded.amount
    else:
        amount_differs = new.amount != recorded.amount
    if amount_differs:
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT
    if new.user_data != recorded.user_data and not (
        resolving
        and not new.user_data
        and (pending is None or recorded.user_data in ("", pending.user_data))
    ):
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA
    if new.ledger != recorded.ledger and not (resolving and new.ledger == 0):
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_LEDGER
    if new.code != recorded.code and not (resolving and new.code == 0):
        return T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CODE
    return T.CREATE_TRANSFER_RESULT_EXISTS


def check_transfer_fields(spec: TransferSpec) -> TransferResult | None:
    """The event's own mistakes, FLAGS_ARE_MUTUALLY_EXCLUSIVE to CODE_MUST_NOT_BE_ZERO.

    A post or void may leave its accounts, ledger, code and amount empty (they come from the
    pending transfer); an account id it does give must still be well formed.
    """
    flags = spec.flags
    resolving = resolves_pending(flags)
    if flags.pending + flags.post_pending_transfer + flags.void_pending_transfer > 1 or (
        resolving
        and (
            flags.balancing_debit
            or flags.balancing_credit
            or flags.closing_debit
            or flags.closing_credit
        )
    ):
        return T.CREATE_TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE
    result = _check_account_ids(spec, resolving)
    if result is None:
        result = _check_resolving_fields(spec) if resolving else _check_new_fields(spec)
    return result


def _check_account_ids(spec: TransferSpec, resolving: bool) -> TransferResult | None:
    debit = spec.debit_account_id
    if not debit:
        if not resolving:
            return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY
    elif _is_id(debit) is None:
        return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_IS_MALFORMED
    credit = spec.credit_account_id
    if not credit:
        if not resolving:
            return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY
    elif _is_id(credit) is None:
        return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_IS_MALFORMED
    return None


def _check_resolving_fields(spec: TransferSpec) -> TransferResult | None:
    pending_id = spec.pending_id
    if not pending_id:
        return T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_NOT_BE_EMPTY
    if _is_id(pending_id) is None:
        return T.CREATE_TRANSFER_RESULT_PENDING_ID_IS_MALFORMED
    if pending_id == spec.id:
        return T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_BE_DIFFERENT
    if spec.timeout:
        return T.CREATE_TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    return None


def _check_new_fields(spec: TransferSpec) -> TransferResult | None:
    flags = spec.flags
    if spec.debit_account_id == spec.credit_account_id:
        return T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT
    if spec.pending_id:
        return T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_BE_EMPTY
    if spec.timeout and not flags.pending:
        return T.CREATE_TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    if (flags.closing_debit or flags.closing_credit) and not flags.pending:
        return T.CREATE_TRANSFER_RESULT_CLOSING_TRANSFER_MUST_BE_PENDING
    if spec.amount == 0 and not (flags.closing_debit or flags.closing_credit):
        return T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO
    if spec.ledger == 0:
        return T.CREATE_TRANSFER_RESULT_LEDGER_MUST_NOT_BE_ZERO
    if spec.code == 0:
        return T.CREATE_TRANSFER_RESULT_CODE_MUST_NOT_BE_ZERO
    return None


# Transfers: against the accounts ----------------------------------------------------------


class AccountTotals(Protocol):
    """What the balance rules read from an account (the planner's live copy, or a test's)."""

    @property
    def ledger(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def debits_must_not_exceed_credits(self) -> bool: ...
    @property
    def credits_must_not_exceed_debits(self) -> bool: ...
    @property
    def debits_pending(self) -> int: ...
    @property
    def debits_posted(self) -> int: ...
    @property
    def credits_pending(self) -> int: ...
    @property
    def credits_posted(self) -> int: ...


def check_transfer_accounts(
    spec: TransferSpec, debit: AccountTotals, credit: AccountTotals
) -> TransferResult | None:
    """Ledgers and closed accounts, for a transfer that neither posts nor voids.

    The *_NOT_FOUND codes come before these; the caller knows whether it found the accounts.
    """
    if debit.ledger != credit.ledger:
        return T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
    if spec.ledger != debit.ledger:
        return T.CREATE_TRANSFER_RESULT_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
    if debit.closed:
        return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED
    if credit.closed:
        return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED
    return None


def balancing_amount(spec: TransferSpec, debit: AccountTotals, credit: AccountTotals) -> int:
    """What a balancing transfer moves: ``amount`` at most, only as much as the accounts allow.

    balancing_debit stops where the debit account's debits (pending included) reach its
    posted credits; balancing_credit where the credit account's credits reach its posted
    debits; with both, the smaller. The result may be 0. Other transfers move ``amount``.
    """
    amount = spec.amount
    if spec.flags.balancing_debit:
        room = debit.credits_posted - debit.debits_posted - debit.debits_pending
        amount = min(amount, max(0, room))
    if spec.flags.balancing_credit:
        room = credit.debits_posted - credit.credits_posted - credit.credits_pending
        amount = min(amount, max(0, room))
    return amount


def check_totals(
    pending: bool, amount: int, debit: AccountTotals, credit: AccountTotals
) -> TransferResult | None:
    """OVERFLOWS_* and EXCEEDS_*: whether ``amount`` fits the accounts' totals and limits.

    A pending transfer is checked against the posted totals too, since posting it later
    must not overflow.
    """
    if pending:
        if debit.debits_pending + amount > MAX_AMOUNT:
            return T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_PENDING
        if credit.credits_pending + amount > MAX_AMOUNT:
            return T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_PENDING
    if debit.debits_posted + amount > MAX_AMOUNT:
        return T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED
    if credit.credits_posted + amount > MAX_AMOUNT:
        return T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_POSTED
    debits = debit.debits_pending + debit.debits_posted + amount
    if debits > MAX_AMOUNT:
        return T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS
    credits = credit.credits_pending + credit.credits_posted + amount
    if credits > MAX_AMOUNT:
        return T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS
    if debit.debits_must_not_exceed_credits and debits > debit.credits_posted:
        return T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
    if credit.credits_must_not_exceed_debits and credits > credit.debits_posted:
        return T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS
    return None


# Transfers: posting and voiding -----------------------------------------------------------


def check_pending_reference(spec: TransferSpec, pending: TransferSpec) -> TransferResult | None:
    """PENDING_TRANSFER_NOT_PENDING to PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT for a post or void.

    ``pending`` is the recorded transfer ``spec.pending_id`` names (the caller returns
    PENDING_TRANSFER_NOT_FOUND when there is none).
    """
    if not pending.flags.pending:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_NOT_PENDING
    if spec.debit_account_id and spec.debit_account_id != pending.debit_account_id:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
    if spec.credit_account_id and spec.credit_account_id != pending.credit_account_id:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
    if spec.ledger and spec.ledger != pending.ledger:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
    if spec.code and spec.code != pending.code:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_CODE
    if spec.amount > pending.amount:
        return T.CREATE_TRANSFER_RESULT_EXCEEDS_PENDING_TRANSFER_AMOUNT
    if spec.flags.void_pending_transfer and 0 < spec.amount < pending.amount:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
    return None


def is_expired(pending: Transfer, now: datetime) -> bool:
    """Whether a pending transfer's timeout has passed at ``now`` (resolved or not)."""
    timeout = pending.spec.timeout
    return timeout > 0 and now >= pending.create_time + timedelta(seconds=timeout)


def check_pending_state(resolution: Resolution | None, expired: bool) -> TransferResult | None:
    """ALREADY_POSTED, ALREADY_VOIDED or EXPIRED: whether the pending transfer is still open.

    ``expired`` says its timeout has passed; it counts as expired even before the
    expirer has recorded the expiry.
    """
    if resolution is Resolution.POSTED:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED
    if resolution is Resolution.VOIDED:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED
    if resolution is Resolution.EXPIRED or expired:
        return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED
    return None


def check_resolution_accounts(
    flags: TransferFlags, pending: TransferFlags, debit: AccountTotals, credit: AccountTotals
) -> TransferResult | None:
    """*_ACCOUNT_ALREADY_CLOSED for a post or void of a pending transfer with these accounts.

    A void always passes: it only releases a reservation (TigerBeetle: a closed account
    rejects every transfer "except for voiding two-phase transfers that are still
    pending"). A post passes on an account its own pending transfer closed.
    """
    if flags.void_pending_transfer:
        return None
    if debit.closed and not pending.closing_debit:
        return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED
    if credit.closed and not pending.closing_credit:
        return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED
    return None
