"""An account's MAC: a keyed hash over everything about an account that never changes.

Transfers are Merkle leaves; account rows are not, yet they decide what a transfer
may do (the ledger, the limit flags) and whom it concerns (the participant hosting
the account, which settlement follows). So every account row carries, from the
moment it is created, a MAC: HMAC-SHA256 under the leaf key over the canonical
encoding below. The verifier recomputes each one and names an account whose
ledger, code, flags, hosting participant or user data was changed, or that was
inserted or had its MAC removed outside the ledger. Balances and ``closed`` change
with every transfer; the verifier checks those by replaying the journal instead.

``openloop.ledger.account.v1``, big-endian::

    domain        b"openloop.ledger.account.v1" + 0x00
    id            u16 length + UTF-8
    ledger        i64
    code          i64
    flags         u8   1 debits_must_not_exceed_credits, 2 credits_must_not_exceed_debits,
                       4 history, 8 created closed
    participant   u16 length + UTF-8
    user_data     u32 length + UTF-8

Like the leaves' keyed hashes, a MAC can be checked by whoever holds the leaf key
(the ledger and auditors) and made by no one else.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from typing import Any

from openloop_ledger.model import AccountSpec

DOMAIN = b"openloop.ledger.account.v1\x00"
_NUMBERS = struct.Struct(">qqB")


def account_mac(key: bytes, spec: AccountSpec) -> bytes:
    flags = spec.flags
    return _mac(
        key,
        spec.id,
        spec.ledger,
        spec.code,
        _bits(
            flags.debits_must_not_exceed_credits,
            flags.credits_must_not_exceed_debits,
            flags.history,
            flags.closed,
        ),
        spec.participant_id,
        spec.user_data,
    )


def mac_of_row(key: bytes, row: Mapping[str, Any]) -> bytes:
    """The MAC an ``accounts`` row should carry, from its columns (the verifier calls this
    for every account, so it reads them directly rather than building an AccountSpec)."""
    return _mac(
        key,
        row["id"],
        row["ledger"],
        row["code"],
        _bits(
            row["debits_must_not_exceed_credits"],
            row["credits_must_not_exceed_debits"],
            row["history"],
            row["created_closed"],
        ),
        row["participant_id"],
        row["user_data"],
    )


def _bits(
    debits_must_not_exceed_credits: bool,
    credits_must_not_exceed_debits: bool,
    history: bool,
    created_closed: bool,
) -> int:
    return (
        debits_must_not_exceed_credits
        | credits_must_not_exceed_debits << 1
        | history << 2
        | created_closed << 3
    )


def _mac(  # noqa: PLR0917 - the canonical fields, in their order
    key: bytes, account_id: str, ledger: int, code: int, flags: int, participant_id: str, data: str
) -> bytes:
    identifier, participant, user_data = (
        account_id.encode(),
        participant_id.encode(),
        data.encode(),
    )
    encoded = b"".join(
        (
            DOMAIN,
            len(identifier).to_bytes(2, "big"),
            identifier,
            _NUMBERS.pack(ledger, code, flags),
            len(participant).to_bytes(2, "big"),
            participant,
            len(user_data).to_bytes(4, "big"),
            user_data,
        )
    )
    return hmac.digest(key, encoded, hashlib.sha256)
