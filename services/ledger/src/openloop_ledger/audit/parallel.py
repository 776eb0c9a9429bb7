"""Verifying a large ledger database with every core: workers hash ranges of the journal.

Recomputing a leaf is the verifier's dominant cost and each leaf depends only on
its own row, so worker processes each read a range of positions straight from
PostgreSQL and return a :class:`RangeDigest`: the leaf hashes, the plain
transfers' totals per account, and the two-phase rows whose effect depends on
order. The main process stitches the digests in position order into the tree,
the checkpoint checks and the balance replay, exactly as the serial path does: it
reads the rows at negative positions itself, and the sealed leaf hashes (level-0
tiles) of each range as it stitches it, fetches the rows that differ from
their sealed leaves range by range, and checks the balance history as the replay
reaches it, so that its memory stays bounded by a few ranges. The ``pending_timeouts``
table is checked at the end against the pending transfers the replay left unresolved.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import re
from collections.abc import Collection, Sequence
from concurrent.futures import ProcessPoolExecutor

import asyncpg

from openloop_ledger.audit.history import StoredHistory
from openloop_ledger.audit.sources import (
    DatabaseSource,
    check_timeouts,
    dsn,
    feed_digest,
    verifier_for,
)
from openloop_ledger.audit.verifier import (
    RangeDigest,
    Report,
    collection_paused,
    digest_rows,
)
from openloop_ledger.leaf import LeafEncoder, epoch_micros_codec
from openloop_ledger.pg import TRANSFER_COLUMNS

_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
RANGE = 50_000
"""Positions per worker task: small enough that both workers stay busy to the end, large
enough that a task's connection and snapshot import are a small part of it."""


def _start_method() -> str:
    """Fork where the platform has it: a worker needs only the leaf encoder, and a spawned
    worker re-imports the whole service first (about 2 s on a 2-core machine, longer than
    hashing a few hundred thousand leaves). The forked child starts its own event loop and
    connection and leaves with ``os._exit``, never touching the parent's connection."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


_history_accounts: frozenset[str] = frozenset()
"""The main verifier's history accounts, set once in each worker (see :func:`_start`)."""


def _start(history_accounts: Collection[str]) -> None:
    """A worker's initializer: the history accounts every range digest needs, and no
    garbage collection (see :func:`verify_database`)."""
    global _history_accounts  # noqa: PLW0603 - one worker process, one verification
    _history_accounts = frozenset(history_accounts)
    gc.disable()


def _digest_range(
    database_url: str, snapshot: str, leaf_key: bytes, start: int, end: int
) -> RangeDigest:
    return asyncio.run(_digest(database_url, snapshot, leaf_key, start, end))


async def _digest(
    database_url: str, snapshot: str, leaf_key: bytes, start: int, end: int
) -> RangeDigest:
    encoder = LeafEncoder(leaf_key)
    columns = ", ".join(TRANSFER_COLUMNS)
    conn = await asyncpg.connect(dsn(database_url))
    try:
        await epoch_micros_codec(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # The main process's snapshot: every worker sees the same journal it does.
            if not _SNAPSHOT_ID.fullmatch(snapshot):
                raise ValueError(f"{snapshot!r} is not a PostgreSQL snapshot id")
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            rows = await conn.fetch(
                f"SELECT {columns} FROM transfers WHERE position >= $1 AND position < $2"
                " ORDER BY position",
                start,
                end,
            )
    finally:
        await conn.close()
    digest = digest_rows(encoder, rows, _history_accounts)
    # Records do not pickle: the rows the main process replays in order go back as tuples.
    digest.ordered[:] = [tuple(row) for row in digest.ordered]
    return digest


async def verify_database(
    database_url: str,
    verifier_keys: str | Sequence[str],
    leaf_key: str,
    *,
    jobs: int,
    range_size: int = RANGE,
    trusted: Sequence[str] = (),
) -> Report:
    source = await DatabaseSource.connect(database_url)
    try:
        with collection_paused():  # as in the workers (see gc.collect below)
            return await _verify(
                source, database_url, leaf_key, verifier_keys, jobs, range_size, trusted
            )
    finally:
        await source.close()


async def _verify(  # noqa: PLR0917 - verify_database's arguments, passed on
    source: DatabaseSource,
    database_url: str,
    leaf_key: str,
    verifier_keys: str | Sequence[str],
    jobs: int,
    range_size: int,
    trusted: Sequence[str],
) -> Report:
    checker = await verifier_for(source, verifier_keys, leaf_key, trusted)
    history = StoredHistory(source.balance_history())
    # Rows at negative positions (none unless inserted around the CHECK): no range
    # starts below 0, so they are read and reported here.
    checker.feed(await source.negative_transfers())
    last = await source.conn.fetchval("SELECT coalesce(max(position), -1) FROM transfers")
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context(_start_method())
    # A forked worker inherits every object here, including garbage not yet collected.
    # Collected in the worker, a gRPC channel's finaliser waits for threads only this
    # process has, and the worker hangs (seen in the test suite, whose process holds
    # channels). So collect here first, and let workers, which live for one
    # verification, never collect at all.
    gc.collect()
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_start,
        initargs=(checker.history_accounts,),
    ) as pool:
        futures = [
            loop.run_in_executor(
                pool,
                _digest_range,
                database_url,
                source.snapshot,
                leaf_key.encode(),
                start,
                start + range_size,
            )
            for start in range(0, last + 1, range_size)
        ]
        for future in futures:
            await feed_digest(checker, source, await future)
            wanted = checker.take_rows_wanted()
            if wanted:
                checker.add_mismatched_rows(await source.rows_at(wanted))
            upto = checker.replayed_to
            checker.check_history(await history.until(upto), upto)
    checker.check_history(await history.until(None), None)
    await check_timeouts(checker, source)
    return checker.finish(await source.accounts(), await source.journal_size())
