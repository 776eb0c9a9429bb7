"""One batch of transfer requests, applied in one database transaction.

The shape of every batch: lock the journal row, read the recorded transfers and
the accounts the batch names, plan the whole batch in memory
(:mod:`openloop_ledger.planning`), then write everything with COPY and one UPDATE
and move the journal's size. A request's results are released only after the
commit, so an acknowledged transfer is on disk (``synchronous_commit`` stays on).

The journal row is the one lock balance writers take, first, for the whole batch:
batches are applied one after the other across all replicas, as TigerBeetle's
single-threaded state machine applies them. That is deadlock-free by construction
(there is no second lock to take in another order), gives journal positions in
commit order with no gaps, and costs no throughput: the journal has to be
serialised at commit anyway, and a batch holds thousands of transfers. Locking
each account row instead would add a WAL record and a tuple write per account
per batch for nothing. ``CreateAccounts`` only inserts rows, so it never waits.

Should a row appear that the batch could not see (only a defect or a hand-made
insert could do that), the unique constraints refuse the insert and the batch is
planned again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg
from openloop_ledger.model import AccountSpec, AccountState, Balances, TransferSpec
from openloop_ledger.planning import (
    LedgerView,
    TransferBatch,
    accounts_named,
    accounts_of,
    transfer_ids_named,
)
from openloop_ledger.validation import TransferResult

_log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Re-plans after a unique violation; each attempt sees the rows it collided with."""


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


class AccountCache:
    """The balances this process wrote last, valid while no one else has written since.

    Every balance change goes through a batch holding the journal lock, and writes the
    journal's size and a random batch token. So if a batch finds under the lock the size
    and token this process left after its own last commit, no one wrote in between (not
    another replica, and not a database restored to an earlier point) and the cached
    accounts are exactly what the database holds: the batch reads only the accounts it has
    not seen. Anything else, or any failure, drops the cache.
    """

    def __init__(self, max_accounts: int = 1_000_000) -> None:
        self._accounts: dict[str, AccountState] = {}
        self._journal: tuple[int, int] | None = None
        self._max_accounts = max_accounts

    def valid_at(self, journal: tuple[int, int]) -> dict[str, AccountState]:
        """The cached accounts if ``journal`` (size, batch token) is what this process left."""
        if journal != self._journal:
            self._accounts.clear()
        return self._accounts

    def committed(self, journal: tuple[int, int], changed: Iterable[AccountState]) -> None:
        if len(self._accounts) > self._max_accounts:
            self._accounts.clear()
        for state in changed:
            self._accounts[state.spec.id] = state
        self._journal = journal

    def forget(self) -> None:
        self._accounts.clear()
        self._journal = None


class BatchWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._specs: dict[str, AccountSpec] = {}
        """Account specs seen before: immutable, so only balances are read per batch."""
        self._cache = AccountCache()

    async def apply(self, requests: Sequence[Request]) -> Applied:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with pg.connection(self._engine) as conn:
                    async with conn.transaction():
                        applied, after = await _apply(conn, requests, self._specs, self._cache)
                    self._cache.committed(*after)
                    return applied
            except asyncpg.UniqueViolationError as race:
                self._cache.forget()
                _log.warning("batch met a row it could not see (attempt %d): %s", attempt, race)
            except BaseException:
                # Committed or not, the cache can no longer be trusted. A database that
                # cannot be reached reaches the caller as UNAVAILABLE (the interceptor).
                self._cache.forget()
                raise
        raise RuntimeError(f"batch kept losing id races after {MAX_ATTEMPTS} attempts")


CLOCK_BEHIND_WARNING = timedelta(seconds=1)
"""A clock this far behind the journal's last batch is worth an operator's look."""


def batch_time(clock: datetime, last_time: datetime | None) -> datetime:
    """A batch's time: its replica's clock, but never before the journal's last batch.

    Every accepted transfer's create_time, and the moment expiry is judged at. Taken under
    the journal's lock, it never decreases along the journal whatever the replicas' clocks
    do, so time order is journal order (TigerBeetle's timestamps do not decrease either).
    A clock behind by more than :data:`CLOCK_BEHIND_WARNING` is logged: another replica's
    clock runs ahead, or this one stepped back.
    """
    if last_time is None or clock >= last_time:
        return clock
    if last_time - clock > CLOCK_BEHIND_WARNING:
        _log.warning(
            "clock behind the journal's last batch; using the journal's time",
            extra={"behind_seconds": round((last_time - clock).total_seconds(), 3)},
        )
    return last_time


def _named(requests: Sequence[Request]) -> tuple[list[str], list[str]]:
    """Transfer ids the batch may find recorded, and account ids it names directly."""
    transfer_ids: set[str] = set()
    account_ids: set[str] = set()
    for request in requests:
        if isinstance(request, TransferRequest):
            transfer_ids.update(transfer_ids_named(request.specs))
            account_ids.update(accounts_named(request.specs))
        else:
            transfer_ids.update(transfer_ids_named((), expiring=request.pending_ids))
    return sorted(transfer_ids), sorted(account_ids)


async def _apply(
    conn: pg.Connection,
    requests: Sequence[Request],
    specs: dict[str, AccountSpec],
    cache: AccountCache,
) -> tuple[Applied, tuple[tuple[int, int], list[AccountState]]]:
    """Plan and write one batch; also returns what the cache learns once it commits."""
    size, token, last_time = await pg.lock_journal(conn)
    known = cache.valid_at((size, token))
    transfer_ids, account_ids = _named(requests)
    transfers, resolutions = await pg.transfers_with_resolutions(conn, transfer_ids)
    wanted = {*account_ids, *accounts_of(transfers.values())}
    accounts = {i: known[i] for i in wanted if i in known}
    unknown = sorted(wanted - accounts.keys())
    accounts.update(await pg.read_accounts(conn, unknown, specs))
    now = batch_time(datetime.now(UTC), last_time)
    batch = TransferBatch(LedgerView(accounts, transfers, resolutions), now)
    outcomes: list[Outcome] = []
    for request in requests:
        if isinstance(request, TransferRequest):
            outcomes.append(batch.apply(request.specs))
        else:
            outcomes.append(batch.expire(request.pending_ids))
    if not batch.accepted:
        return Applied(outcomes, 0), ((size, token), [])
    changed = batch.changed_totals()
    new_token = secrets.randbits(63)
    await _write(conn, batch, changed=changed, now=now, start=size, batch_token=new_token)
    states = [
        AccountState(accounts[i].spec, Balances(dp, dq, cp, cq), closed)
        for i, dp, dq, cp, cq, closed in changed
    ]
    return Applied(outcomes, len(batch.accepted)), ((size + len(batch.accepted), new_token), states)


async def _write(
    conn: pg.Connection,
    batch: TransferBatch,
    *,
    changed: list[tuple[str, int, int, int, int, bool]],
    now: datetime,
    start: int,
    batch_token: int,
) -> None:
    accepted = batch.accepted
    await pg.set_journal(conn, start + len(accepted), batch_token, now)
    await pg.copy_transfers(conn, accepted, start)
    await pg.write_accounts(conn, changed)
    if batch.history:
        position_of = {t.spec.id: start + offset for offset, t in enumerate(accepted)}
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
