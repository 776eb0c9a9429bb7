"""An account's MAC covers exactly its immutable columns, under the leaf key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from openloop_ledger.account_mac import account_mac, mac_of_row
from openloop_ledger.model import AccountFlags, AccountSpec

KEY = b"k" * 32
SPEC = AccountSpec(
    id="wallet-1",
    ledger=764,
    code=1,
    flags=AccountFlags(debits_must_not_exceed_credits=True),
    user_data="citizens/abc",
    participant_id="bank-a",
)
ROW: dict[str, Any] = {
    "id": "wallet-1",
    "ledger": 764,
    "code": 1,
    "debits_must_not_exceed_credits": True,
    "credits_must_not_exceed_debits": False,
    "history": False,
    "created_closed": False,
    "user_data": "citizens/abc",
    "participant_id": "bank-a",
    "closed": False,
    "debits_pending": 0,
    "debits_posted": 0,
    "credits_pending": 0,
    "credits_posted": 0,
}


def test_the_row_the_ledger_writes_carries_the_mac_of_its_spec() -> None:
    assert mac_of_row(KEY, ROW) == account_mac(KEY, SPEC)
    assert len(account_mac(KEY, SPEC)) == 32


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("id", "wallet-2"),
        ("ledger", 840),
        ("code", 2),
        ("debits_must_not_exceed_credits", False),
        ("credits_must_not_exceed_debits", True),
        ("history", True),
        ("created_closed", True),
        ("user_data", "citizens/abd"),
        ("participant_id", "bank-b"),
    ],
)
def test_every_immutable_column_changes_the_mac(column: str, value: object) -> None:
    assert mac_of_row(KEY, {**ROW, column: value}) != mac_of_row(KEY, ROW)


@pytest.mark.parametrize(
    ("column", "value"),
    [("closed", True), ("debits_posted", 5), ("credits_pending", 7)],
)
def test_what_transfers_change_is_left_to_the_replay(column: str, value: object) -> None:
    assert mac_of_row(KEY, {**ROW, column: value}) == mac_of_row(KEY, ROW)


def test_fields_cannot_be_shifted_into_each_other() -> None:
    """Length prefixes: moving characters between two texts gives another MAC."""
    shifted = replace(SPEC, participant_id="bank-ac", user_data="itizens/abc")
    assert account_mac(KEY, shifted) != account_mac(KEY, SPEC)


def test_only_the_key_holder_makes_the_mac() -> None:
    assert account_mac(b"x" * 32, SPEC) != account_mac(KEY, SPEC)
