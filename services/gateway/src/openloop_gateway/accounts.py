"""The chart of accounts: which ledger account holds which party's money.

Every party's wallet is an account in the THB ledger named after its resource name. A
citizen's wallet that moved to another participant lives in a new account named after its
generation (``citizens:{id}:2``; see identity's ``domain/wallets.py``), so the gateway takes the
current account from identity; the derivation here names first accounts only.
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
    WALLET_MOVE = 3
    """A citizen's whole balance from the wallet's old account to its new one."""


TREASURY_FUNDING_ACCOUNT = "treasury:funding"


def wallet_account_id(party: str) -> str:
    """``citizens/abc`` -> ``citizens:abc`` (ledger ids may not contain '/')."""
    return party.replace("/", ":")
