"""One batch of transfer requests, applied in one database transaction.

The shape of every batch: read the recorded transfers the batch names, lock the
accounts it touches in id order, plan the whole batch in memory
(:mod:`openloop_ledger.planning`), reserve journal positions, then write
everything with COPY and one UPDATE. A request's results are released only after
the commit, so an acknowledged transfer is on disk (``synchronous_commit`` stays on).

Races with other replicas are settled by the database, not by hope: a transfer id
or a pending transfer's resolution another batch committed after we read is a
unique violation on insert, and the whole batch is planned again with that row
visible. Deadlock freedom comes from one global order: accounts (sorted), then
the journal row, and nothing else is locked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg
import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg
from openloop_ledger.model import AccountSpec, Transfer, TransferSpec, expiry_id
from openloop_ledger.planning import (
    LedgerView,
    TransferBatch,
    accounts_named,
    transfer_ids_named,
)
from openloop_ledger.validation import TransferResult, is_lookup_id
from openloop_runtime.errors import DomainError, ErrorReason

_log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Re-plans after losing a race for an id; each attempt sees the winner's rows."""


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """One client request: its transfers, applied in order."""

    specs: Sequence[TransferSpec]


@dataclass(frozen=True, slots=True)
class ExpiryRequest:
    """The expirer's request: void these pending transfers if their timeout has passed."""

    pending_ids: Sequence[str]


Request = TransferRequest | ExpiryRequest
Outcome = list[TransferResult] | int
"""Per request: the transfer results, or how many pending transfers expired."""


@dataclass(frozen=True, slots=True)
class Applied:
    outcomes: list[Outcome]
    """One per request, in order."""
    committed: int
    """Transfers the batch added to the journal."""


class BatchWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._specs: dict[str, AccountSpec] = {}
        """Account specs seen before: immutable, so only balances are read per batch."""

    async def apply(self, requests: Sequence[Request]) -> Applied:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with pg.connection(self._engine) as conn, conn.transaction():
                    return await _apply(conn, requests, self._specs)
            except asyncpg.UniqueViolationError as race:
                _log.info("batch lost a race (attempt %d): %s", attempt, race.constraint_name)
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as down:
                raise _database_unavailable() from down
        raise RuntimeError(f"batch kept losing id races after {MAX_ATTEMPTS} attempts")


def _database_unavailable() -> DomainError:
    return DomainError(
        grpc.StatusCode.UNAVAILABLE,
        ErrorReason.ERROR_REASON_DATABASE_UNAVAILABLE,
        "the ledger's database did not answer; retry with the same transfer ids",
    )


def _named(requests: Sequence[Request]) -> tuple[list[str], list[str]]:
    """Transfer ids the batch may find recorded, and account ids it names directly."""
    transfer_ids: set[str] = set()
    account_ids: set[str] = set()
    for request in requests:
        if isinstance(request, TransferRequest):
            transfer_ids.update(transfer_ids_named(request.specs))
            account_ids.update(accounts_named(request.specs))
        else:
            for pending_id in request.pending_ids:
                if is_lookup_id(pending_id):
                    transfer_ids.update((pending_id, expiry_id(pending_id)))
    return sorted(transfer_ids), sorted(account_ids)


async def _apply(
    conn: pg.Connection, requests: Sequence[Request], specs: dict[str, AccountSpec]
) -> Applied:
    transfer_ids, account_ids = _named(requests)
    transfers, resolutions = await pg.transfers_with_resolutions(conn, transfer_ids)
    for transfer in transfers.values():
        account_ids.extend((transfer.spec.debit_account_id, transfer.spec.credit_account_id))
    accounts = await pg.lock_accounts(conn, sorted(set(account_ids)), specs)
    now = datetime.now(UTC)
    batch = TransferBatch(LedgerView(accounts, transfers, resolutions), now)
    outcomes: list[Outcome] = []
    for request in requests:
        if isinstance(request, TransferRequest):
            outcomes.append(batch.apply(request.specs))
        else:
            outcomes.append(batch.expire(request.pending_ids))
    if batch.accepted:
        await _write(conn, batch, now)
    return Applied(outcomes, len(batch.accepted))


async def _write(conn: pg.Connection, batch: TransferBatch, now: datetime) -> None:
    start = await pg.advance_journal(conn, len(batch.accepted))
    positioned: list[Transfer] = [
        replace(transfer, position=start + offset) for offset, transfer in enumerate(batch.accepted)
    ]
    position_of = {t.spec.id: t.position for t in positioned}
    await pg.copy_transfers(conn, positioned)
    await pg.write_accounts(conn, batch.changed_accounts())
    await pg.copy_balances(
        conn,
        [
            (
                snapshot.account_id,
                position_of[snapshot.transfer_id],
                snapshot.transfer_id,
                snapshot.balances,
                now,
            )
            for snapshot in batch.history
        ],
    )
    await pg.add_timeouts(conn, batch.timeouts)
    await pg.remove_timeouts(conn, sorted(batch.resolved))
