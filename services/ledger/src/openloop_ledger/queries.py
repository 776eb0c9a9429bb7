"""The SQL the ledger runs, one function per statement, each on a caller's connection.

Batches travel as arrays through ``unnest`` so a batch of 8189 transfers is one
statement with a handful of parameters, not tens of thousands of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ARRAY, BigInteger, ColumnElement, String, any_, bindparam, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_ledger.model import (
    Account,
    AccountFlags,
    AccountSpec,
    Balance,
    Transfer,
    TransferSpec,
)
from openloop_ledger.planning import Posting
from openloop_ledger.tables import accounts, transfers


def _id_in(column: ColumnElement[str], ids: Sequence[str]) -> ColumnElement[bool]:
    return column == any_(bindparam("ids", list(ids), type_=ARRAY(String)))


def _flags(row: Row[tuple[object, ...]]) -> AccountFlags:
    return AccountFlags(
        debits_must_not_exceed_credits=row.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=row.credits_must_not_exceed_debits,
    )


def _account_spec(row: Row[tuple[object, ...]]) -> AccountSpec:
    return AccountSpec(
        id=row.id,
        ledger=row.ledger,
        code=row.code,
        flags=_flags(row),
        user_data=row.user_data,
        participant_id=row.participant_id,
    )


def _transfer_spec(row: Row[tuple[object, ...]]) -> TransferSpec:
    return TransferSpec(
        id=row.id,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        ledger=row.ledger,
        code=row.code,
        user_data=row.user_data,
    )


async def lock_balances(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Balance]:
    """Lock the accounts in id order, so two batches never wait on each other in a cycle."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(accounts).where(_id_in(accounts.c.id, ids)).order_by(accounts.c.id).with_for_update()
    )
    return {
        row.id: Balance(
            ledger=row.ledger,
            flags=_flags(row),
            debits_posted=row.debits_posted,
            credits_posted=row.credits_posted,
        )
        for row in rows
    }


async def account_specs(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, AccountSpec]:
    if not ids:
        return {}
    rows = await conn.execute(select(accounts).where(_id_in(accounts.c.id, ids)))
    return {row.id: _account_spec(row) for row in rows}


async def transfer_specs(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, TransferSpec]:
    if not ids:
        return {}
    rows = await conn.execute(select(transfers).where(_id_in(transfers.c.id, ids)))
    return {row.id: _transfer_spec(row) for row in rows}


async def find_accounts(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Account]:
    if not ids:
        return {}
    rows = await conn.execute(select(accounts).where(_id_in(accounts.c.id, ids)))
    return {
        row.id: Account(
            spec=_account_spec(row),
            debits_posted=row.debits_posted,
            credits_posted=row.credits_posted,
            create_time=row.create_time,
        )
        for row in rows
    }


async def find_transfers(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Transfer]:
    if not ids:
        return {}
    rows = await conn.execute(select(transfers).where(_id_in(transfers.c.id, ids)))
    return {row.id: Transfer(_transfer_spec(row), row.create_time) for row in rows}


_INSERT_ACCOUNTS = text(
    """
    INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,
                          credits_must_not_exceed_debits, user_data, participant_id)
    SELECT * FROM unnest(CAST(:id AS varchar[]), CAST(:ledger AS bigint[]),
                         CAST(:code AS bigint[]), CAST(:debits_limited AS boolean[]),
                         CAST(:credits_limited AS boolean[]), CAST(:user_data AS text[]),
                         CAST(:participant_id AS varchar[]))
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)


async def insert_accounts(conn: AsyncConnection, specs: Sequence[AccountSpec]) -> int:
    """Insert in id order (racing batches then wait on each other in one direction only);
    returns how many went in, fewer when a racing request created one of the ids first."""
    ordered = sorted(specs, key=lambda spec: spec.id)
    rows = await conn.execute(
        _INSERT_ACCOUNTS,
        {
            "id": [s.id for s in ordered],
            "ledger": [s.ledger for s in ordered],
            "code": [s.code for s in ordered],
            "debits_limited": [s.flags.debits_must_not_exceed_credits for s in ordered],
            "credits_limited": [s.flags.credits_must_not_exceed_debits for s in ordered],
            "user_data": [s.user_data for s in ordered],
            "participant_id": [s.participant_id for s in ordered],
        },
    )
    return len(rows.all())


_NEXT_SEQS = text(
    "SELECT nextval(pg_get_serial_sequence('transfers', 'seq')) AS seq"
    " FROM generate_series(1, :count)"
).bindparams(bindparam("count", type_=BigInteger))

_INSERT_TRANSFERS = text(
    """
    INSERT INTO transfers (seq, id, debit_account_id, credit_account_id, amount, ledger, code,
                           user_data)
    SELECT * FROM unnest(CAST(:seq AS bigint[]), CAST(:id AS varchar[]),
                         CAST(:debit_account_id AS varchar[]),
                         CAST(:credit_account_id AS varchar[]), CAST(:amount AS bigint[]),
                         CAST(:ledger AS bigint[]), CAST(:code AS bigint[]),
                         CAST(:user_data AS text[]))
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)


async def insert_transfers(conn: AsyncConnection, specs: Sequence[TransferSpec]) -> int:
    """Record ``specs``; returns how many went in, fewer when a racing request used an id.

    ``seq`` follows the order the batch applied the transfers in, while rows are
    inserted in id order so that racing batches wait on each other in one
    direction only.
    """
    seqs = sorted((await conn.execute(_NEXT_SEQS, {"count": len(specs)})).scalars())
    ordered = sorted(zip(seqs, specs, strict=True), key=lambda pair: pair[1].id)
    rows = await conn.execute(
        _INSERT_TRANSFERS,
        {
            "seq": [seq for seq, _ in ordered],
            "id": [s.id for _, s in ordered],
            "debit_account_id": [s.debit_account_id for _, s in ordered],
            "credit_account_id": [s.credit_account_id for _, s in ordered],
            "amount": [s.amount for _, s in ordered],
            "ledger": [s.ledger for _, s in ordered],
            "code": [s.code for _, s in ordered],
            "user_data": [s.user_data for _, s in ordered],
        },
    )
    return len(rows.all())


_APPLY_POSTINGS = text(
    """
    UPDATE accounts AS a
    SET debits_posted = a.debits_posted + p.debits,
        credits_posted = a.credits_posted + p.credits
    FROM unnest(CAST(:id AS varchar[]), CAST(:debits AS bigint[]), CAST(:credits AS bigint[]))
         AS p(id, debits, credits)
    WHERE a.id = p.id
    """
)


async def apply_postings(conn: AsyncConnection, postings: Mapping[str, Posting]) -> None:
    if not postings:
        return
    ids = sorted(postings)
    await conn.execute(
        _APPLY_POSTINGS,
        {
            "id": ids,
            "debits": [postings[i].debits for i in ids],
            "credits": [postings[i].credits for i in ids],
        },
    )
