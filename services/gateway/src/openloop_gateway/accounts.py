"""The chart of accounts: which ledger account holds which party's money.

Every party has one wallet account in the THB ledger, named after its resource
name so any service (and an auditor) can derive it without a lookup.
"""

from __future__ import annotations

from enum import IntEnum


class AccountCode(IntEnum):
    CITIZEN_WALLET = 100
    MERCHANT_WALLET = 200
    TREASURY_FUNDING = 900


class TransferCode(IntEnum):
    ENTITLEMENT_FUNDING = 1
    ROUND1_PAYMENT = 2


TREASURY_FUNDING_ACCOUNT = "treasury:funding"


def wallet_account_id(party: str) -> str:
    """``citizens/abc`` -> ``citizens:abc`` (ledger ids may not contain '/')."""
    return party.replace("/", ":")
