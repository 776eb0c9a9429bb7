"""Raw asyncpg access for the ledger's hot paths, on connections from the service's pool.

The batch writer, the sealer, the journal feed and the verifier move tens of
thousands of rows a second; asyncpg's binary COPY and array parameters do that
without an ORM's per-row cost, so the ledger's SQL is all asyncpg. SQLAlchemy still
provides the engine and its connection pool, the schema (:mod:`openloop_ledger.tables`)
and the migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.model import (
    EXPIRY_PREFIX,
    AccountFlags,
    AccountSpec,
    AccountState,
    Balances,
    Resolution,
    Transfer,
    TransferFlags,
    TransferSpec,
)
from openloop_runtime.db import DriverConnection, driver_connection

Connection = DriverConnection
connection = driver_connection
"""An open asyncpg connection from the ledger engine's pool for a block (see
:func:`openloop_runtime.db.driver_connection`)."""
Record = Any

TRANSFER_COLUMNS = (
    "id",
    "position",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "pending_id",
    "timeout",
    "flags",
    "ledger",
    "code",
    "user_data",
    "create_time",
)
SELECT_TRANSFER = ", ".join(f"t.{column}" for column in TRANSFER_COLUMNS)
ACCOUNT_COLUMNS = (
    "id, ledger, code, debits_must_not_exceed_credits, credits_must_not_exceed_debits, history,"
    " created_closed, closed, user_data, participant_id, debits_pending, debits_posted,"
    " credits_pending, credits_posted, create_time"
)
_POST_BIT = 1 << 2


def transfer_of(row: Record) -> Transfer:
    return Transfer(
        spec=TransferSpec(
            id=row["id"],
            debit_account_id=row["debit_account_id"],
            credit_account_id=row["credit_account_id"],
            amount=row["amount"],
            ledger=row["ledger"],
            code=row["code"],
            user_data=row["user_data"],
            flags=TransferFlags.from_bits(row["flags"]),
            pending_id=row["pending_id"] or "",
            timeout=row["timeout"],
        ),
        create_time=row["create_time"],
        position=row["position"],
    )


def account_spec_of(row: Record) -> AccountSpec:
    return AccountSpec(
        id=row["id"],
        ledger=row["ledger"],
        code=row["code"],
        flags=AccountFlags(
            debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
            credits_must_not_exceed_debits=row["credits_must_not_exceed_debits"],
            history=row["history"],
            closed=row["created_closed"],
        ),
        user_data=row["user_data"],
        participant_id=row["participant_id"],
    )


def account_state_of(row: Record, specs: dict[str, AccountSpec] | None = None) -> AccountState:
    """The account in ``row``; ``specs`` caches the immutable part across batches."""
    spec = specs.get(row["id"]) if specs is not None else None
    if spec is None:
        spec = account_spec_of(row)
        if specs is not None:
            if len(specs) >= SPEC_CACHE_SIZE:
                specs.clear()
            specs[spec.id] = spec
    return AccountState(
        spec,
        Balances(
            row["debits_pending"],
            row["debits_posted"],
            row["credits_pending"],
            row["credits_posted"],
        ),
        row["closed"],
    )


SPEC_CACHE_SIZE = 500_000
"""Account specs a writer remembers (they never change once created)."""


def resolution_of(resolver_id: str, resolver_flags: int) -> Resolution:
    if resolver_flags & _POST_BIT:
        return Resolution.POSTED
    if resolver_id.startswith(EXPIRY_PREFIX):
        return Resolution.EXPIRED
    return Resolution.VOIDED


async def transfers_with_resolutions(
    conn: Connection, ids: list[str]
) -> tuple[dict[str, Transfer], dict[str, Resolution]]:
    """The recorded transfers among ``ids`` and, for pending ones, what resolved them."""
    if not ids:
        return {}, {}
    rows = await conn.fetch(
        f"SELECT {SELECT_TRANSFER}, r.id AS resolver_id, r.flags AS resolver_flags"
        " FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id"
        " WHERE t.id = ANY($1::text[])",
        ids,
    )
    transfers: dict[str, Transfer] = {}
    resolutions: dict[str, Resolution] = {}
    for row in rows:
        transfers[row["id"]] = transfer_of(row)
        if row["resolver_id"] is not None:
            resolutions[row["id"]] = resolution_of(row["resolver_id"], row["resolver_flags"])
    return transfers, resolutions


async def read_accounts(
    conn: Connection, ids: list[str], specs: dict[str, AccountSpec] | None = None
) -> dict[str, AccountState]:
    """The accounts among ``ids``. Under the journal lock no other batch can change them."""
    if not ids:
        return {}
    rows = await conn.fetch(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::text[])", ids
    )
    return {row["id"]: account_state_of(row, specs) for row in rows}


async def lock_journal(conn: Connection) -> tuple[int, int, datetime | None]:
    """Take the journal's row lock until commit; returns its size (the next position), the
    token the last batch left and the last batch's time (None for an empty journal).

    Every batch that changes balances takes it first, so batches apply one at a time, in the
    order their positions say.
    """
    row = await conn.fetchrow(
        "SELECT size, batch_token, last_time,"
        # For the rest of the batch's transaction, in the same round trip: the totals'
        # UPDATE (write_batch, write_accounts) probes the primary key per changed account
        # whatever the planner believes of its row count or of the table's size (a generic
        # plan estimates 10 rows for unnest of a parameter and keeps a plan made while the
        # table was small; a custom plan of 200 accounts hashes 20,000; the temporary
        # table looks like 870 rows).
        " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
        " FROM journal WHERE id = 1 FOR UPDATE"
    )
    return row["size"], row["batch_token"], row["last_time"]


async def set_journal(conn: Connection, size: int, batch_token: int, last_time: datetime) -> None:
    await conn.execute(
        "UPDATE journal SET size = $1, batch_token = $2, last_time = $3 WHERE id = 1",
        size,
        batch_token,
        last_time,
    )


async def journal_size(conn: Connection) -> int:
    """Transfers committed so far: every position below this is committed and readable."""
    size: int = await conn.fetchval("SELECT size FROM journal WHERE id = 1")
    return size


_TOTALS_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS batch_totals (id text, debits_pending bigint,"
    " debits_posted bigint, credits_pending bigint, credits_posted bigint, closed boolean)"
    " ON COMMIT DELETE ROWS"
    # Never analysed, the table looks like ten pages of rows (about 870) to the planner
    # whatever it holds, which would hash the whole accounts table rather than probe its
    # key, for every batch below some 100,000 accounts and for large batches above: the
    # join settings lock_journal makes for the batch's transaction prevent that.
)
_TOTALS_COLUMNS = (
    "id",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
    "closed",
)


async def write_accounts(
    conn: Connection, rows: list[tuple[str, int, int, int, int, bool]]
) -> None:
    """New totals: ``(id, debits_pending, debits_posted, credits_pending, credits_posted,
    closed)`` per changed account (under the batch's journal lock no one else writes them).

    The rows go by COPY into a session's temporary table, emptied at every commit, and one
    UPDATE joins it: binary COPY encodes a row for a fraction of what six array parameters
    of the same values cost the client (asyncpg checks every array element's type).
    """
    if not rows:
        return
    await conn.execute(_TOTALS_TABLE)
    await conn.copy_records_to_table("batch_totals", records=rows, columns=_TOTALS_COLUMNS)
    status = await conn.execute(
        "UPDATE accounts AS a SET debits_pending = u.debits_pending,"
        " debits_posted = u.debits_posted, credits_pending = u.credits_pending,"
        " credits_posted = u.credits_posted, closed = u.closed"
        " FROM batch_totals AS u WHERE a.id = u.id"
    )
    if status != f"UPDATE {len(rows)}":
        raise RuntimeError(f"{status} for {len(rows)} accounts the batch planned: refusing it")


SMALL_BATCH = 128
"""Transfers up to which a batch writes its rows in one statement (:func:`write_batch`)."""

_WRITE_SMALL_BATCH = (
    "WITH inserted AS ("
    " INSERT INTO transfers (id, position, debit_account_id, credit_account_id, amount,"
    " pending_id, timeout, flags, ledger, code, user_data, create_time)"
    " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],"
    " $6::text[], $7::bigint[], $8::int[], $9::bigint[], $10::bigint[], $11::text[],"
    " $12::timestamptz[]) RETURNING 1),"
    " moved AS (UPDATE journal SET size = $13, batch_token = $14, last_time = $15"
    " WHERE id = 1 RETURNING 1),"
    " totals AS (UPDATE accounts AS a SET debits_pending = u.debits_pending,"
    " debits_posted = u.debits_posted, credits_pending = u.credits_pending,"
    " credits_posted = u.credits_posted, closed = u.closed"
    " FROM unnest($16::text[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[],"
    " $21::bool[]) AS u(id, debits_pending, debits_posted, credits_pending, credits_posted,"
    " closed)"
    # One key probe per row: lock_journal turned hash and merge joins off for the batch.
    " WHERE a.id = u.id RETURNING 1)"
    " SELECT (SELECT count(*) FROM inserted) AS transfers, (SELECT count(*) FROM moved) AS"
    " journal, (SELECT count(*) FROM totals) AS accounts"
)


async def write_batch(
    conn: Connection,
    transfers: list[Transfer],
    first_position: int,
    journal: tuple[int, int, datetime],
    totals: list[tuple[str, int, int, int, int, bool]],
) -> None:
    """A batch's writes under the journal lock: ``transfers`` at consecutive positions from
    ``first_position``, the journal's new ``(size, batch token, last time)`` and the changed
    accounts' new ``totals`` (as :func:`write_accounts` takes them).

    A small batch (up to :data:`SMALL_BATCH` transfers, as sixty-four single-transfer
    clients make) does it in one statement, one round trip, where the COPYs, the journal's
    UPDATE and the totals' temporary table take seven: each round trip costs this process
    about 0.1 ms of CPU, and the batch's commit waits for all of them. A large one uses
    COPY, which encodes a row for a fraction of what array parameters cost the client
    (measured, both ways cost the same at 128 to 256 transfers).
    """
    if not conn.is_in_transaction():
        # The one statement commits on its own outside a transaction, before the row counts
        # below are checked: a batch is written inside the transaction that holds the lock.
        raise RuntimeError("write_batch outside a transaction: refusing it")
    size, batch_token, last_time = journal
    if len(transfers) > SMALL_BATCH:
        await copy_transfers(conn, transfers, first_position)
        await set_journal(conn, size, batch_token, last_time)
        await write_accounts(conn, totals)
        return
    specs = [transfer.spec for transfer in transfers]
    no_totals: list[list[object]] = [[] for _ in _TOTALS_COLUMNS]
    written = await conn.fetchrow(
        _WRITE_SMALL_BATCH,
        [spec.id for spec in specs],
        list(range(first_position, first_position + len(specs))),
        [spec.debit_account_id for spec in specs],
        [spec.credit_account_id for spec in specs],
        [spec.amount for spec in specs],
        [spec.pending_id or None for spec in specs],
        [spec.timeout for spec in specs],
        [spec.flags.bits() for spec in specs],
        [spec.ledger for spec in specs],
        [spec.code for spec in specs],
        [spec.user_data for spec in specs],
        [transfer.create_time for transfer in transfers],
        size,
        batch_token,
        last_time,
        *([list(column) for column in zip(*totals, strict=True)] if totals else no_totals),
    )
    expected = (len(transfers), 1, len(totals))
    if tuple(written) != expected:
        raise RuntimeError(f"wrote {tuple(written)} rows for {expected} planned: refusing it")


async def copy_transfers(conn: Connection, transfers: list[Transfer], first_position: int) -> None:
    """Insert ``transfers`` at consecutive positions from ``first_position``."""
    records: list[tuple[object, ...]] = []
    append = records.append
    position = first_position
    for transfer in transfers:
        spec = transfer.spec
        append(
            (
                spec.id,
                position,
                spec.debit_account_id,
                spec.credit_account_id,
                spec.amount,
                spec.pending_id or None,
                spec.timeout,
                spec.flags.bits(),
                spec.ledger,
                spec.code,
                spec.user_data,
                transfer.create_time,
            )
        )
        position += 1
    await conn.copy_records_to_table("transfers", records=records, columns=TRANSFER_COLUMNS)


async def copy_balances(
    conn: Connection, rows: list[tuple[str, int, str, Balances, datetime]]
) -> None:
    """History rows: (account id, position, transfer id, balances, time)."""
    if not rows:
        return
    await conn.copy_records_to_table(
        "account_balances",
        records=[
            (
                account_id,
                position,
                transfer_id,
                b.debits_pending,
                b.debits_posted,
                b.credits_pending,
                b.credits_posted,
                at,
            )
            for account_id, position, transfer_id, b, at in rows
        ],
        columns=(
            "account_id",
            "position",
            "transfer_id",
            "debits_pending",
            "debits_posted",
            "credits_pending",
            "credits_posted",
            "create_time",
        ),
    )


async def add_timeouts(conn: Connection, timeouts: list[tuple[str, datetime]]) -> None:
    if timeouts:
        await conn.copy_records_to_table(
            "pending_timeouts", records=timeouts, columns=("transfer_id", "expires_at")
        )


async def remove_timeouts(conn: Connection, transfer_ids: list[str]) -> None:
    if transfer_ids:
        await conn.execute(
            "DELETE FROM pending_timeouts WHERE transfer_id = ANY($1::text[])", transfer_ids
        )


async def due_timeouts(
    conn: Connection, now: datetime, limit: int, after: tuple[datetime, str] | None = None
) -> list[tuple[datetime, str]]:
    """Up to ``limit`` rows ``(expires_at, transfer_id)`` due at ``now``, in that order,
    strictly after the key ``after``: the pages of one walk over every due row.

    The walk is by key, not by what is left in the table, because a row the expirer cannot
    void (its transfer is not pending, or already resolved) stays; a page of them must not
    hide the rows behind it. The index on ``expires_at`` serves the range (the key's first
    column bounds it from below) and the order; rows sharing one ``expires_at`` (a batch's
    holds with the same timeout) are sorted by id within that instant (an incremental
    sort), so a page costs about its size plus the rows tied with its first one.
    """
    if after is None:
        rows = await conn.fetch(
            "SELECT expires_at, transfer_id FROM pending_timeouts WHERE expires_at <= $1"
            " ORDER BY expires_at, transfer_id LIMIT $2",
            now,
            limit,
        )
    else:
        rows = await conn.fetch(
            "SELECT expires_at, transfer_id FROM pending_timeouts"
            " WHERE expires_at <= $1 AND (expires_at, transfer_id) > ($2, $3)"
            " ORDER BY expires_at, transfer_id LIMIT $4",
            now,
            after[0],
            after[1],
            limit,
        )
    return [(row["expires_at"], row["transfer_id"]) for row in rows]


async def journal_rows(conn: Connection, start: int, end: int) -> list[Record]:
    """Raw rows of positions [start, end), in order: the sealer hashes them, the journal
    feed turns them into transfers (:func:`transfer_of`)."""
    return await conn.fetch(
        f"SELECT {SELECT_TRANSFER} FROM transfers t"
        " WHERE t.position >= $1 AND t.position < $2 ORDER BY t.position",
        start,
        end,
    )


async def transfer_row(conn: Connection, transfer_id: str) -> Record | None:
    """The raw row of one recorded transfer, by id (an inclusion proof's leaf)."""
    return await conn.fetchrow(
        f"SELECT {SELECT_TRANSFER} FROM transfers t WHERE t.id = $1", transfer_id
    )


CHECKPOINT_COLUMNS = "tree_size, root_hash, right_edge, signed_note, create_time"


async def latest_checkpoint(conn: Connection) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
    )


async def checkpoint_at(conn: Connection, tree_size: int) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size = $1", tree_size
    )


async def tiles(conn: Connection, refs: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not refs:
        return {}
    rows = await conn.fetch(
        "SELECT m.tile_level, m.tile_index, m.hashes FROM merkle_tiles m"
        " JOIN unnest($1::smallint[], $2::bigint[]) AS w(tile_level, tile_index)"
        " ON m.tile_level = w.tile_level AND m.tile_index = w.tile_index",
        [level for level, _ in refs],
        [index for _, index in refs],
    )
    return {(row["tile_level"], row["tile_index"]): row["hashes"] for row in rows}


async def row_and_tiles(
    conn: Connection, position: int, refs: list[tuple[int, int]]
) -> tuple[Record, dict[tuple[int, int], bytes]]:
    """The journal row at ``position`` and the tiles ``refs``, in one round trip (an
    inclusion proof needs exactly these)."""
    row = await conn.fetchrow(
        f"SELECT {SELECT_TRANSFER}, w.levels, w.indexes, w.hashes FROM transfers t,"
        " LATERAL (SELECT array_agg(m.tile_level) AS levels, array_agg(m.tile_index) AS indexes,"
        " array_agg(m.hashes) AS hashes FROM merkle_tiles m"
        " JOIN unnest($2::smallint[], $3::bigint[]) AS u(tile_level, tile_index)"
        " ON m.tile_level = u.tile_level AND m.tile_index = u.tile_index) AS w"
        " WHERE t.position = $1",
        position,
        [level for level, _ in refs],
        [index for _, index in refs],
    )
    if row is None:
        raise LookupError(f"no journal row at position {position}")
    found = zip(row["levels"] or (), row["indexes"] or (), row["hashes"] or (), strict=True)
    return row, {(level, index): hashes for level, index, hashes in found}


async def upsert_tiles(conn: Connection, rows: list[tuple[int, int, bytes]]) -> None:
    if rows:
        await conn.execute(
            "INSERT INTO merkle_tiles (tile_level, tile_index, hashes)"
            " SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])"
            " ON CONFLICT (tile_level, tile_index) DO UPDATE SET hashes = excluded.hashes",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
        )


def leaf_of_row(encoder: LeafEncoder, row: Record) -> bytes:
    """The canonical leaf of a raw transfer row (see :mod:`openloop_ledger.leaf`)."""
    return encoder.encode_row(
        row["position"],
        row["create_time"],
        row["flags"],
        row["ledger"],
        row["code"],
        row["timeout"],
        row["amount"],
        row["id"],
        row["pending_id"],
        row["debit_account_id"],
        row["credit_account_id"],
        row["user_data"],
    )
