"""Applies a batch of ledger events in one database transaction.

The shape of every write: lock what the batch reads, plan the batch in memory
(:mod:`openloop_ledger.planning`), then insert the new rows under their unique
ids. If a racing request committed one of those ids after we looked, the insert
skips it (``ON CONFLICT DO NOTHING``); we then roll the insert back to a
savepoint and plan again with the racing row visible, so a racing duplicate
still gets EXISTS or EXISTS_WITH_DIFFERENT_* and is never applied twice.

This relies on PostgreSQL's default READ COMMITTED isolation: each statement
sees what committed before it, so the re-read finds the racing row. Deadlock
freedom comes from one global order: accounts are locked (sorted) before any
transfer row is inserted, and rows are inserted in id order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_ledger import queries
from openloop_ledger.model import Account, AccountSpec, Transfer, TransferSpec
from openloop_ledger.planning import (
    accounts_named,
    plan_accounts,
    plan_transfers,
    transfer_ids_named,
)
from openloop_ledger.validation import (
    AccountResult,
    TransferResult,
    is_well_formed_id,
    validate_account,
)

Row = TypeVar("Row", AccountSpec, TransferSpec)


class LedgerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_accounts(self, specs: Sequence[AccountSpec]) -> list[AccountResult]:
        ids = sorted({spec.id for spec in specs if validate_account(spec) is None})
        async with self._engine.begin() as conn:
            for _ in range(len(ids) + 1):
                existing = await queries.account_specs(conn, ids)
                plan = plan_accounts(specs, existing)
                if await _insert_all(conn, queries.insert_accounts, plan.created):
                    return plan.results
        raise RuntimeError("accounts kept conflicting after every id was seen")

    async def create_transfers(self, specs: Sequence[TransferSpec]) -> list[TransferResult]:
        ids = transfer_ids_named(specs)
        async with self._engine.begin() as conn:
            balances = await queries.lock_balances(conn, accounts_named(specs))
            for _ in range(len(ids) + 1):
                existing = await queries.transfer_specs(conn, ids)
                plan = plan_transfers(specs, balances, existing)
                if await _insert_all(conn, queries.insert_transfers, plan.accepted):
                    await queries.apply_postings(conn, plan.postings)
                    return plan.results
        raise RuntimeError("transfers kept conflicting after every id was seen")

    async def lookup_accounts(self, ids: Sequence[str]) -> list[Account]:
        """The accounts found, in the order asked for, each once."""
        async with self._engine.connect() as conn:
            found = await queries.find_accounts(conn, _well_formed(ids))
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def lookup_transfers(self, ids: Sequence[str]) -> list[Transfer]:
        """The transfers found, in the order asked for, each once."""
        async with self._engine.connect() as conn:
            found = await queries.find_transfers(conn, _well_formed(ids))
        return [found[i] for i in dict.fromkeys(ids) if i in found]


def _well_formed(ids: Sequence[str]) -> list[str]:
    """Ids worth asking the database about: a malformed id names nothing."""
    return sorted({i for i in ids if is_well_formed_id(i)})


async def _insert_all(
    conn: AsyncConnection,
    insert: Callable[[AsyncConnection, Sequence[Row]], Awaitable[int]],
    rows: Sequence[Row],
) -> bool:
    """Insert ``rows`` inside a savepoint; keep them only if none lost a race for its id."""
    if not rows:
        return True
    savepoint = await conn.begin_nested()
    if await insert(conn, rows) == len(rows):
        await savepoint.commit()
        return True
    await savepoint.rollback()
    return False
