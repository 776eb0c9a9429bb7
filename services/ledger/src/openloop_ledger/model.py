"""The ledger's values, free of protobuf and SQL so the rules can be tested alone.

Amounts are Python ints of satang; they never pass through a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AccountFlags:
    debits_must_not_exceed_credits: bool = False
    """A wallet: it may never be overdrawn."""
    credits_must_not_exceed_debits: bool = False


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What a client chooses when it opens an account: the immutable part of an account."""

    id: str
    ledger: int
    code: int
    flags: AccountFlags
    user_data: str
    participant_id: str
    """The id of the hosting participant; the wire carries it as ``participants/{id}``."""


@dataclass(frozen=True, slots=True)
class Balance:
    """The part of an account a posting reads and changes."""

    ledger: int
    flags: AccountFlags
    debits_posted: int
    credits_posted: int


@dataclass(frozen=True, slots=True)
class Account:
    spec: AccountSpec
    debits_posted: int
    credits_posted: int
    create_time: datetime


@dataclass(frozen=True, slots=True)
class TransferSpec:
    """What a client submits; ``id`` is its idempotency key."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    ledger: int
    code: int
    user_data: str


@dataclass(frozen=True, slots=True)
class Transfer:
    spec: TransferSpec
    create_time: datetime
