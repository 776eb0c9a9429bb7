"""One batch of transfer requests, applied in one database transaction.

The shape of every batch: read the recorded transfers and the accounts the batch
names, plan the whole batch in memory (:mod:`openloop_ledger.planning`), then, holding
the journal row's lock, insert its transfers, write the new balances and move the
journal's size (one statement for a small batch, COPY for a large one:
:func:`openloop_ledger.pg.write_batch`). A request's results are released only
after the commit, so an acknowledged transfer is on disk (``synchronous_commit``
stays on).

The journal row is the one lock balance writers take, for the end of every batch:
batches commit one after the other across all replicas, as TigerBeetle's
single-threaded state machine applies them. That is deadlock-free by construction
(no balance is written before it), gives journal positions in commit order with no
gaps, and costs no throughput: the journal has to be serialised at commit anyway, and
a batch holds thousands of transfers. Locking each account row instead would add a
WAL record and a tuple write per account per batch for nothing. ``CreateAccounts``
only inserts rows, so it never waits.

**Pipelining.** A batch need not wait for the one before it to commit before it
plans: this process remembers what its last batch planned (:class:`Speculation`: the
balances it leaves, the transfers it records, and the journal's size and random batch
token once it commits), so the next batch plans on that and reads only what it lacks
while the one before commits. Then, once the batch it planned on holds the journal
lock (batches lock in the order they planned), it takes the lock (which waits for that
commit) and checks that the journal holds exactly the size, token and time it planned
on. Any other value means the batch before it failed, or another replica wrote in
between, and the batch is rolled back and planned again from the database, under the
lock, as a cold process plans every batch. So the check under the lock, not the order
of events in this process, is what makes a plan valid, and nothing is ever written
from a plan the database does not bear out. No batch writes a
row before it holds the lock: one that did would make the lock's holder (another
replica, or this process's batch planned again) wait for it while it waits for the
lock, a deadlock PostgreSQL breaks only after ``deadlock_timeout``, or never when one
of the waits is this process's wait for the batch before.

Should a row appear that the batch could not see (only a defect or a hand-made insert
could do that), the unique constraints refuse the insert and the batch is planned
again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg
from openloop_ledger.model import (
    AccountSpec,
    AccountState,
    Balances,
    Resolution,
    Transfer,
    TransferSpec,
)
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
"""Plans per batch: a batch whose plan the journal does not bear out, or that met a row
it could not see, is planned again under the lock, each time from what is committed."""


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


@dataclass(frozen=True, slots=True)
class Base:
    """What a batch may plan on before it holds the journal lock."""

    journal: tuple[int, int]
    """The journal's (size, batch token) the plan needs."""
    last_time: datetime | None
    """The time of the journal's last batch at that size: the batch checks all three under
    the lock."""
    accounts: Mapping[str, AccountState]
    """Balances at that size of every account this process has planned on lately."""
    transfers: Mapping[str, Transfer]
    """Transfers the last planned batch records, which may not be committed yet."""
    resolutions: Mapping[str, Resolution]
    """Pending transfers the last planned batch resolves, likewise."""


class Speculation:
    """The ledger as this process's last planned batch leaves it, once that batch commits.

    Every balance change goes through a batch that checks, under the journal lock, the
    journal's size and the random token the batch before it left. So a batch planned on
    this speculation commits only if the database holds exactly the state it describes
    (not another replica's write, not a failed batch's, and not a database restored to an
    earlier point). Any failure drops it, and the next batch plans under the lock.

    A batch under the lock that finds a journal this process did not leave (another
    replica writes too) makes the batches after it plan under the lock as well, until one
    finds the journal as this process left it: a plan made ahead would only be thrown away
    while another writer moves the journal. Such a batch still uses the remembered
    balances whenever the journal shows no one else wrote since.
    """

    def __init__(self, max_accounts: int = 1_000_000) -> None:
        self._accounts: dict[str, AccountState] = {}
        self._journal: tuple[int, int] | None = None
        self._last_time: datetime | None = None
        self._transfers: dict[str, Transfer] = {}
        self._resolutions: dict[str, Resolution] = {}
        self._max_accounts = max_accounts
        self._contended = True
        """The last batch under the lock found a journal this process did not leave."""

    def base(self) -> Base | None:
        """What the next batch may plan on, or None: plan under the lock."""
        if self._journal is None or self._contended:
            return None
        return Base(
            self._journal, self._last_time, self._accounts, self._transfers, self._resolutions
        )

    def valid_at(self, journal: tuple[int, int]) -> Mapping[str, AccountState]:
        """The remembered balances if ``journal`` (size, batch token), read under the lock,
        is the one they describe; else nothing, and the next batch plans under the lock."""
        self._contended = journal != self._journal
        if self._contended:
            self.forget()
        return self._accounts

    def planned(
        self,
        base: Base,
        *,
        journal: tuple[int, int],
        last_time: datetime | None,
        changed: Iterable[AccountState],
        transfers: dict[str, Transfer],
        resolutions: dict[str, Resolution],
    ) -> None:
        """A batch planned on ``base`` was planned: once it commits, the journal holds
        ``journal`` and these.

        Only if ``base`` is still what this process remembers: a batch planned on a plan
        that has since been forgotten (the batch before it failed, and may be planning again
        under the lock, reading the remembered balances as committed) rests on balances that
        never were, and must not write them into what the others read.
        """
        if base.accounts is not self._accounts:
            return
        if len(self._accounts) > self._max_accounts:
            self._accounts = {}
        accounts = self._accounts
        for state in changed:
            accounts[state.spec.id] = state
        self._journal = journal
        self._last_time = last_time
        self._transfers = transfers
        self._resolutions = resolutions

    def forget(self) -> None:
        # New objects, not cleared ones: a batch holding the old ones reads them unchanged
        # (and fails its check under the lock).
        self._accounts = {}
        self._journal = None
        self._last_time = None
        self._transfers = {}
        self._resolutions = {}


def _done() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


class _StalePlanError(Exception):
    """The journal is not what the batch planned on."""


class BatchWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._specs: dict[str, AccountSpec] = {}
        """Account specs seen before: immutable, so only balances are read per batch."""
        self._speculation = Speculation()
        self._lock_turn = _done()
        """Set once the batch planned last holds the journal lock, or has ended."""

    async def apply(
        self, requests: Sequence[Request], *, planned: asyncio.Event | None = None
    ) -> Applied:
        """Plan, write and commit one batch.

        ``planned`` is set once the batch's plan is remembered, so that the next batch may
        plan on it while this one commits (or once this one has ended without a plan).
        """
        try:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                base = self._speculation.base()
                try:
                    async with pg.connection(self._engine) as conn, conn.transaction():
                        return await self._apply(conn, requests, base, planned)
                except _StalePlanError:
                    self._speculation.forget()
                    _log.info("the journal moved past a batch's plan; planning it again")
                except asyncpg.UniqueViolationError as race:
                    self._speculation.forget()
                    _log.warning("batch met a row it could not see (attempt %d): %s", attempt, race)
                except BaseException:
                    # Committed or not, the speculation can no longer be trusted. A database
                    # that cannot be reached reaches the caller as UNAVAILABLE (the interceptor).
                    self._speculation.forget()
                    raise
            raise RuntimeError(f"batch kept losing id races after {MAX_ATTEMPTS} attempts")
        finally:
            if planned is not None:
                planned.set()

    async def _apply(
        self,
        conn: pg.Connection,
        requests: Sequence[Request],
        base: Base | None,
        planned: asyncio.Event | None,
    ) -> Applied:
        if base is None:
            size, token, last_time = await pg.lock_journal(conn)
            base = Base((size, token), last_time, self._speculation.valid_at((size, token)), {}, {})
            checked = True
        else:
            (size, token), last_time = base.journal, base.last_time
            checked = False
        accounts, transfers, resolutions = await self._view(conn, requests, base)
        now = batch_time(datetime.now(UTC), last_time)
        batch = TransferBatch(LedgerView(accounts, transfers, resolutions), now)
        outcomes: list[Outcome] = []
        for request in requests:
            if isinstance(request, TransferRequest):
                outcomes.append(batch.apply(request.specs))
            else:
                outcomes.append(batch.expire(request.pending_ids))
        accepted = batch.accepted
        changed = batch.changed_totals() if accepted else []
        end, new_token = (size + len(accepted), secrets.randbits(63)) if accepted else (size, token)
        self._speculation.planned(
            base,
            journal=(end, new_token),
            last_time=now if accepted else last_time,
            changed=[
                AccountState(accounts[i].spec, Balances(dp, dq, cp, cq), closed)
                for i, dp, dq, cp, cq, closed in changed
            ],
            transfers={t.spec.id: t for t in accepted},
            resolutions=batch.resolved,
        )
        # Batches take the journal lock in the order they planned: one planned on this one
        # must not reach the lock first, or it finds the journal short of this batch.
        previous_turn, turn = self._lock_turn, asyncio.Event()
        self._lock_turn = turn
        if checked:
            turn.set()
        try:
            if planned is not None:
                planned.set()
            if not checked:
                # The lock waits for the batch before this one to commit; then the journal
                # must be what that batch left.
                await previous_turn.wait()
                locked = await pg.lock_journal(conn)
                turn.set()
                if locked != (size, token, last_time):
                    raise _StalePlanError
        finally:
            turn.set()
        # Rows only under the journal lock (see the module's docstring).
        if accepted:
            await pg.write_batch(conn, accepted, size, (end, new_token, now), changed)
            await _write_history(conn, batch, start=size, now=now)
            await pg.add_timeouts(conn, batch.timeouts)
            await pg.remove_timeouts(conn, sorted(batch.resolved))
        return Applied(outcomes, len(accepted))

    async def _view(
        self, conn: pg.Connection, requests: Sequence[Request], base: Base
    ) -> tuple[dict[str, AccountState], dict[str, Transfer], dict[str, Resolution]]:
        """The accounts and recorded transfers the batch may touch, as ``base`` describes
        them: what it remembers, then what is committed."""
        recent_transfers, recent_resolutions = base.transfers, base.resolutions
        transfer_ids, account_ids = _named(requests)
        transfers, resolutions = await pg.transfers_with_resolutions(
            conn, [i for i in transfer_ids if i not in recent_transfers]
        )
        for transfer_id in transfer_ids:
            if transfer_id in recent_transfers:
                transfers[transfer_id] = recent_transfers[transfer_id]
            if transfer_id in recent_resolutions:
                resolutions[transfer_id] = recent_resolutions[transfer_id]
        known = base.accounts
        wanted = {*account_ids, *accounts_of(transfers.values())}
        accounts = {i: known[i] for i in wanted if i in known}
        unknown = sorted(wanted - accounts.keys())
        accounts.update(await pg.read_accounts(conn, unknown, self._specs))
        return accounts, transfers, resolutions


CLOCK_BEHIND_WARNING = timedelta(seconds=1)
"""A clock this far behind the journal's last batch is worth an operator's look."""


def batch_time(clock: datetime, last_time: datetime | None) -> datetime:
    """A batch's time: its replica's clock, but never before the journal's last batch.

    Every accepted transfer's create_time, and the moment expiry is judged at. Checked
    under the journal's lock, it never decreases along the journal whatever the replicas'
    clocks do, so time order is journal order (TigerBeetle's timestamps do not decrease
    either). A clock behind by more than :data:`CLOCK_BEHIND_WARNING` is logged: another
    replica's clock runs ahead, or this one stepped back.
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


async def _write_history(
    conn: pg.Connection, batch: TransferBatch, *, start: int, now: datetime
) -> None:
    """The balance history of the accounts that keep one, at the positions the batch's
    transfers (from journal position ``start``) were written at."""
    if not batch.history:
        return
    position_of = {t.spec.id: start + offset for offset, t in enumerate(batch.accepted)}
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
