"""The ledger's values, free of protobuf and SQL so the rules can be tested alone.

Amounts are Python ints of satang; they never pass through a float. Every total
fits PostgreSQL's BIGINT (``MAX_AMOUNT``); the planner refuses what would not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum

MAX_AMOUNT = 2**63 - 1
"""Amounts and totals live in PostgreSQL BIGINT columns."""

EXPIRY_PREFIX = "@expiry:"
"""Ids of the void transfers the ledger records when a pending transfer times out.

``@`` is outside the client id alphabet, so no client can take such an id.
"""


def expiry_id(pending_id: str) -> str:
    return EXPIRY_PREFIX + pending_id


@dataclass(frozen=True, slots=True)
class AccountFlags:
    debits_must_not_exceed_credits: bool = False
    """A wallet: it may never be overdrawn (pending debits count)."""
    credits_must_not_exceed_debits: bool = False
    history: bool = False
    """Keep a balance snapshot after every transfer that touches the account."""
    closed: bool = False
    """Created closed. (A closing transfer closes an open account; see ``AccountState.closed``.)"""


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
    linked: bool = False
    """Request structure, not account data: succeeds or fails with the next account."""


@dataclass(frozen=True, slots=True)
class Balances:
    """An account's four totals, in satang."""

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as a batch reads and changes it."""

    spec: AccountSpec
    balances: Balances
    closed: bool
    """Currently closed: created closed, or closed by a pending closing transfer."""


@dataclass(frozen=True, slots=True)
class Account:
    state: AccountState
    create_time: datetime

    @property
    def spec(self) -> AccountSpec:
        return self.state.spec


@dataclass(frozen=True, slots=True)
class TransferFlags:
    linked: bool = False
    pending: bool = False
    post_pending_transfer: bool = False
    void_pending_transfer: bool = False
    balancing_debit: bool = False
    balancing_credit: bool = False
    closing_debit: bool = False
    closing_credit: bool = False

    def bits(self) -> int:
        """The flags as TigerBeetle's bit field (linked = bit 0, ..., closing_credit = bit 7)."""
        return (
            self.linked
            | self.pending << 1
            | self.post_pending_transfer << 2
            | self.void_pending_transfer << 3
            | self.balancing_debit << 4
            | self.balancing_credit << 5
            | self.closing_debit << 6
            | self.closing_credit << 7
        )

    @classmethod
    def from_bits(cls, bits: int) -> TransferFlags:
        return cls(*(bool(bits >> i & 1) for i in range(8)))


NO_FLAGS = TransferFlags()
TRANSFER_FLAG_NAMES = tuple(field.name for field in fields(TransferFlags))
"""The flags in bit order; the wire's ``TransferFlags`` fields have the same names."""


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
    flags: TransferFlags = NO_FLAGS
    pending_id: str = ""
    timeout: int = 0
    """Seconds; only for pending transfers."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as recorded: accounts, ledger and code resolved (a post or void takes its
    pending transfer's), ``amount`` what actually moved or was reserved."""

    spec: TransferSpec
    create_time: datetime
    position: int
    """Journal position and Merkle leaf index; -1 until the store assigns it."""


class Resolution(Enum):
    """What became of a pending transfer."""

    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class BalanceSnapshot:
    """An account's balances right after one transfer (accounts with ``history``)."""

    account_id: str
    transfer_id: str
    balances: Balances
