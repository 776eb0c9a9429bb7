"""Payments in the gateway's database. Each call is one short transaction.

Completing a payment also records the payer's first use of the wallet (the first completed
payment's time), in the same transaction, for the spending deadline."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Executable, RowMapping, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_gateway.tables import first_uses, payments


class PaymentState(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str
    rule_id: str = ""
    rule_reason: str = ""


@dataclass(frozen=True)
class PaymentRecord:
    payment_id: str
    participant_id: str
    idempotency_key: str
    request_hash: str
    payer: str
    payee: str
    amount_satang: int
    currency_code: str
    state: PaymentState
    payee_participant_id: str = ""
    ledger_transfer_id: str = ""
    rule_set_version: str = ""
    failure_reason: str = ""
    failure_rule_id: str = ""
    failure_rule_reason: str = ""
    failure_message: str = ""
    trace_id: str = ""
    payer_account: str = ""
    payee_account: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def failure(self) -> Failure | None:
        if not self.failure_reason:
            return None
        return Failure(
            self.failure_reason,
            self.failure_message,
            self.failure_rule_id,
            self.failure_rule_reason,
        )

    def with_failure(self, state: PaymentState, failure: Failure) -> PaymentRecord:
        return dataclasses.replace(
            self,
            state=state,
            failure_reason=failure.reason,
            failure_message=failure.message[:500],
            failure_rule_id=failure.rule_id,
            failure_rule_reason=failure.rule_reason,
        )


def _record(row: RowMapping) -> PaymentRecord:
    values = dict(row)
    values["state"] = PaymentState(values["state"])
    return PaymentRecord(**values)


# The payment path's statements, built once: SQLAlchemy then finds each one's compiled form
# in its cache by a key it already holds, where a statement built per call had its columns,
# CTEs and cache key worked out again on every payment.
_BY_ID = select(payments).where(payments.c.payment_id == bindparam("payment_id"))
_BY_KEY = select(payments).where(
    payments.c.participant_id == bindparam("participant_id"),
    payments.c.idempotency_key == bindparam("idempotency_key"),
)
_INSERT = (
    insert(payments)
    .on_conflict_do_nothing(constraint="payments_idempotency_key")
    .returning(*payments.c)
)
_FINISHED = (
    payments.update()
    .where(
        payments.c.payment_id == bindparam("finished_payment_id"),
        payments.c.state == PaymentState.PENDING.value,
    )
    .values(
        state=bindparam("final_state"),
        failure_reason=bindparam("final_failure_reason"),
        failure_message=bindparam("final_failure_message"),
        failure_rule_id=bindparam("final_failure_rule_id"),
        failure_rule_reason=bindparam("final_failure_rule_reason"),
        update_time=func.now(),
    )
    .returning(*payments.c)
    .cte("finished")
)
_USED = insert(first_uses).from_select(
    ["payer", "first_use_time", "payment_id"],
    # The moment the payment was made (accepted), not when it completed: an outage
    # between the two does not push the payer's spending deadline back.
    select(_FINISHED.c.payer, _FINISHED.c.create_time, _FINISHED.c.payment_id).where(
        _FINISHED.c.state == PaymentState.COMPLETED.value
    ),
)
_FIRST_USE = _USED.on_conflict_do_update(
    # The payment made first wins, whatever order payments complete in: one made earlier
    # and completed after an outage, behind a later one, moves the first use back to it.
    index_elements=[first_uses.c.payer],
    set_={
        "first_use_time": _USED.excluded.first_use_time,
        "payment_id": _USED.excluded.payment_id,
    },
    where=_USED.excluded.first_use_time < first_uses.c.first_use_time,
).cte("first_use")
_FINISH = select(_FINISHED).add_cte(_FIRST_USE)
"""Moves a pending payment to its final state and, when it completes a payment made before
any other of the payer's completed ones, records their first use: one statement, so both
happen or neither does."""
_FIRST_USE_OF = select(first_uses.c.first_use_time).where(first_uses.c.payer == bindparam("payer"))


async def _first(
    conn: AsyncConnection, statement: Executable, parameters: dict[str, Any]
) -> RowMapping | None:
    return (await conn.execute(statement, parameters)).mappings().first()


class PaymentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT")
        """For a payment's statements, each atomic on its own: no BEGIN and COMMIT (or
        ROLLBACK) round trips around them."""

    async def get(self, payment_id: str) -> PaymentRecord | None:
        async with self._single.connect() as conn:
            row = await _first(conn, _BY_ID, {"payment_id": payment_id})
        return _record(row) if row else None

    async def find_by_key(self, participant_id: str, idempotency_key: str) -> PaymentRecord | None:
        key = {"participant_id": participant_id, "idempotency_key": idempotency_key}
        async with self._single.connect() as conn:
            row = await _first(conn, _BY_KEY, key)
        return _record(row) if row else None

    async def insert(self, record: PaymentRecord) -> PaymentRecord:
        """Store a new payment; if a racing request stored one under the same key first,
        return that one instead, so a key always names exactly one payment."""
        values = {
            k: v
            for k, v in dataclasses.asdict(record).items()
            if k not in ("create_time", "update_time")
        }
        key = {"participant_id": record.participant_id, "idempotency_key": record.idempotency_key}
        async with self._single.connect() as conn:
            # ON CONFLICT waits for a racing insert of the key to commit or roll back, so
            # when ours inserted nothing, the other's row is there to read.
            row = await _first(conn, _INSERT, values) or await _first(conn, _BY_KEY, key)
        assert row is not None  # the key's row exists: ours, or the racing request's
        return _record(row)

    async def finish(self, record: PaymentRecord) -> PaymentRecord:
        """Move a pending payment to its final state (once: a final state never changes) and,
        when it completes the payer's first payment, record their first use (``_FINISH``)."""
        final = {
            "finished_payment_id": record.payment_id,
            "final_state": record.state.value,
            "final_failure_reason": record.failure_reason,
            "final_failure_message": record.failure_message,
            "final_failure_rule_id": record.failure_rule_id,
            "final_failure_rule_reason": record.failure_rule_reason,
        }
        async with self._single.connect() as conn:
            row = await _first(conn, _FINISH, final) or await _first(
                conn, _BY_ID, {"payment_id": record.payment_id}
            )
        assert row is not None  # payments are never deleted
        return _record(row)

    async def first_use(self, payer: str) -> datetime | None:
        """When ``payer`` first completed a payment; None before its first."""
        async with self._single.connect() as conn:
            return await conn.scalar(_FIRST_USE_OF, {"payer": payer})

    async def touch(self, payment_id: str) -> None:
        """Mark a pending payment as just tried, so others are tried before it again."""
        async with self._engine.begin() as conn:
            await conn.execute(
                payments.update()
                .where(
                    payments.c.payment_id == payment_id,
                    payments.c.state == PaymentState.PENDING.value,
                )
                .values(update_time=func.now())
            )

    async def stale_pending(self, older_than: timedelta, limit: int = 100) -> list[PaymentRecord]:
        async with self._engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(payments)
                        .where(
                            payments.c.state == PaymentState.PENDING.value,
                            payments.c.update_time < func.now() - older_than,
                        )
                        .order_by(payments.c.update_time)
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [_record(row) for row in rows]
