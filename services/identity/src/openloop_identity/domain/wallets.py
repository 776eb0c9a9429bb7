"""Which ledger account holds a party's wallet.

A wallet account is hosted by exactly one participant for its whole life (the ledger's
accounts, like TigerBeetle's, never change hands), so moving a citizen's wallet opens a new
account at the new participant and closes the old one with its history intact. The citizen's
*wallet generation* counts those accounts: the first is ``citizens:{id}``, the account opened by
the first move ``citizens:{id}:2``, and so on. Any service and any auditor can therefore name
every account a citizen ever had from the citizen's id and generation alone.
"""

from __future__ import annotations

FIRST_GENERATION = 1


def citizen_wallet_account(citizen_id: str, generation: int = FIRST_GENERATION) -> str:
    """``citizens:{id}`` for the first wallet, ``citizens:{id}:{generation}`` after moves."""
    if generation < FIRST_GENERATION:
        raise ValueError(f"wallet generations start at {FIRST_GENERATION}, got {generation}")
    base = f"citizens:{citizen_id}"
    return base if generation == FIRST_GENERATION else f"{base}:{generation}"


def merchant_wallet_account(merchant_id: str) -> str:
    """``merchants:{id}``: merchants' wallets do not move."""
    return f"merchants:{merchant_id}"


def wallet_move_name(citizen_id: str, wallet_move_id: str) -> str:
    """``citizens/{citizen}/walletMoves/{wallet_move}``."""
    return f"citizens/{citizen_id}/walletMoves/{wallet_move_id}"
