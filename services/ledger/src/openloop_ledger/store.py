"""Account creation and every read of the ledger: lookups, account lists, the journal.

Transfers are written by :mod:`openloop_ledger.writes` through the batcher;
accounts are rarer and created here, one request per transaction. An account
insert that loses a race for its id (``ON CONFLICT DO NOTHING`` inserts fewer
rows than planned) is rolled back and planned again with the winner visible, so
the loser gets EXISTS or EXISTS_WITH_DIFFERENT_* and nothing is created twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import paging, pg
from openloop_ledger.account_mac import account_mac
from openloop_ledger.model import Account, AccountSpec, Balances, Transfer
from openloop_ledger.planning import account_ids_named, plan_accounts
from openloop_ledger.validation import AccountResult, is_lookup_id, is_well_formed_id
from openloop_runtime.errors import DomainError, ErrorReason


@dataclass(frozen=True, slots=True)
class AccountFilter:
    account_id: str
    debits: bool
    credits: bool
    reversed: bool

    @property
    def key(self) -> str:
        return f"{self.account_id}|{self.debits}|{self.credits}|{self.reversed}"


@dataclass(frozen=True, slots=True)
class BalanceEntry:
    transfer_id: str
    position: int
    balances: Balances
    create_time: datetime


Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    items: list[Item]
    next_page_token: str


class LedgerStore:
    def __init__(self, engine: AsyncEngine, mac_key: bytes) -> None:
        self._engine = engine
        self._mac_key = mac_key
        """The leaf key: each new account row carries a MAC under it (:mod:`.account_mac`)."""

    async def create_accounts(self, specs: Sequence[AccountSpec]) -> list[AccountResult]:
        ids = account_ids_named(specs)
        async with pg.connection(self._engine) as conn, conn.transaction():
            for _ in range(len(ids) + 1):
                existing = await _account_specs(conn, ids)
                plan = plan_accounts(specs, existing)
                if not plan.created:
                    return plan.results
                savepoint = conn.transaction()
                await savepoint.start()
                if await _insert_accounts(conn, plan.created, self._mac_key) == len(plan.created):
                    await savepoint.commit()
                    return plan.results
                await savepoint.rollback()
        raise RuntimeError("accounts kept conflicting after every id was seen")

    async def lookup_accounts(self, ids: Sequence[str]) -> list[Account]:
        """The accounts found, in the order asked for, each once."""
        wanted = sorted({i for i in ids if is_well_formed_id(i)})
        async with pg.connection(self._engine) as conn:
            rows = await conn.fetch(
                f"SELECT {pg.ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::text[])", wanted
            )
        found = {row["id"]: Account(pg.account_state_of(row), row["create_time"]) for row in rows}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def lookup_transfers(self, ids: Sequence[str]) -> list[Transfer]:
        """The transfers found, in the order asked for, each once."""
        wanted = sorted({i for i in ids if is_lookup_id(i)})
        async with pg.connection(self._engine) as conn:
            found, _ = await pg.transfers_with_resolutions(conn, wanted)
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def list_account_transfers(
        self, account_filter: AccountFilter, size: int, token: str
    ) -> Page[Transfer]:
        after = paging.decode(token, account_filter.key)
        async with pg.connection(self._engine) as conn:
            await _require_account(conn, account_filter.account_id)
            sides = _sides(account_filter)
            compare, order = ("<", "DESC") if account_filter.reversed else (">", "ASC")
            bound = _bound(after, reversed_=account_filter.reversed)
            parts = [
                f"(SELECT {pg.SELECT_TRANSFER} FROM transfers t WHERE t.{side} = $1"
                f" AND t.position {compare} $2 ORDER BY t.position {order} LIMIT $3)"
                for side in sides
            ]
            rows = await conn.fetch(
                f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS u"
                f" ORDER BY u.position {order} LIMIT $3",
                account_filter.account_id,
                bound,
                size + 1,
            )
        transfers = [pg.transfer_of(row) for row in rows]
        return _page(transfers, size, account_filter.key, lambda t: t.position)

    async def list_account_balances(
        self, account_filter: AccountFilter, size: int, token: str
    ) -> Page[BalanceEntry]:
        after = paging.decode(token, account_filter.key)
        async with pg.connection(self._engine) as conn:
            await _require_account(conn, account_filter.account_id)
            compare, order = ("<", "DESC") if account_filter.reversed else (">", "ASC")
            side_test = " OR ".join(f"t.{side} = $1" for side in _sides(account_filter))
            rows = await conn.fetch(
                "SELECT b.transfer_id, b.position, b.debits_pending, b.debits_posted,"
                " b.credits_pending, b.credits_posted, b.create_time"
                " FROM account_balances b JOIN transfers t ON t.position = b.position"
                f" WHERE b.account_id = $1 AND b.position {compare} $2 AND ({side_test})"
                f" ORDER BY b.position {order} LIMIT $3",
                account_filter.account_id,
                _bound(after, reversed_=account_filter.reversed),
                size + 1,
            )
        entries = [
            BalanceEntry(
                transfer_id=row["transfer_id"],
                position=row["position"],
                balances=Balances(
                    row["debits_pending"],
                    row["debits_posted"],
                    row["credits_pending"],
                    row["credits_posted"],
                ),
                create_time=row["create_time"],
            )
            for row in rows
        ]
        return _page(entries, size, account_filter.key, lambda e: e.position)

    async def journal(self, start: int, limit: int) -> list[Transfer]:
        """Committed transfers from position ``start``, at most ``limit``, without gaps."""
        async with pg.connection(self._engine) as conn:
            end = min(await pg.journal_size(conn), start + limit)
            if end <= start:
                return []
            rows = await pg.journal_rows(conn, start, end)
        return [pg.transfer_of(row) for row in rows]


def _sides(account_filter: AccountFilter) -> list[str]:
    both = not account_filter.debits and not account_filter.credits
    sides = []
    if account_filter.debits or both:
        sides.append("debit_account_id")
    if account_filter.credits or both:
        sides.append("credit_account_id")
    return sides


def _bound(after: int | None, *, reversed_: bool) -> int:
    if after is not None:
        return after
    return 2**63 - 1 if reversed_ else -1


def _page(
    items: list[Item], size: int, filter_key: str, position: Callable[[Item], int]
) -> Page[Item]:
    if len(items) <= size:
        return Page(items, "")
    kept = items[:size]
    return Page(kept, paging.encode(position(kept[-1]), filter_key))


async def _require_account(conn: pg.Connection, account_id: str) -> None:
    exists = is_well_formed_id(account_id) and await conn.fetchval(
        "SELECT true FROM accounts WHERE id = $1", account_id
    )
    if not exists:
        raise DomainError(
            grpc.StatusCode.NOT_FOUND,
            ErrorReason.ERROR_REASON_ACCOUNT_NOT_FOUND,
            f"account {account_id!r} does not exist",
            {"resource": account_id},
        )


async def _account_specs(conn: pg.Connection, ids: list[str]) -> dict[str, AccountSpec]:
    if not ids:
        return {}
    rows = await conn.fetch(
        f"SELECT {pg.ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::text[])", ids
    )
    return {row["id"]: pg.account_state_of(row).spec for row in rows}


async def _insert_accounts(
    conn: pg.Connection, specs: Sequence[AccountSpec], mac_key: bytes
) -> int:
    """Insert in id order, each with its MAC; returns how many went in (fewer when a racing
    request won an id)."""
    ordered = sorted(specs, key=lambda spec: spec.id)
    rows = await conn.fetch(
        "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
        " credits_must_not_exceed_debits, history, created_closed, closed, user_data,"
        " participant_id, mac)"
        " SELECT id, ledger, code, dl, cl, history, closed, closed, user_data, participant_id,"
        " mac"
        " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bool[], $5::bool[],"
        " $6::bool[], $7::bool[], $8::text[], $9::text[], $10::bytea[])"
        " AS u(id, ledger, code, dl, cl, history, closed, user_data, participant_id, mac)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        [s.id for s in ordered],
        [s.ledger for s in ordered],
        [s.code for s in ordered],
        [s.flags.debits_must_not_exceed_credits for s in ordered],
        [s.flags.credits_must_not_exceed_debits for s in ordered],
        [s.flags.history for s in ordered],
        [s.flags.closed for s in ordered],
        [s.user_data for s in ordered],
        [s.participant_id for s in ordered],
        [account_mac(mac_key, s) for s in ordered],
    )
    return len(rows)
