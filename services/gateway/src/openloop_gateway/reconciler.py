"""Drives payments and wallet moves left PENDING (a crash, an outage) to their final state.

Nothing is lost: a payment accepted before a crash completes once its upstreams
answer again, and the ledger's and settlement's idempotency stop it moving twice.
The same holds for a wallet move identity began. A payment or move that cannot advance is
touched, so it goes to the back of the queue and the next pass tries the others first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from openloop_gateway.payments import PaymentFlow
from openloop_gateway.store import PaymentRecord, PaymentState, PaymentStore
from openloop_gateway.wallet_move_store import MoveRecord, MoveState, MoveStore
from openloop_gateway.wallet_moves import WalletMoveFlow
from openloop_runtime.errors import DomainError

_log = logging.getLogger(__name__)


class _Pending(Protocol):
    """What the loop needs of a payment store or a wallet-move store."""

    async def stale_pending(self, older_than: timedelta) -> Sequence[Any]: ...
    async def touch(self, record_id: str, /) -> None: ...


async def _reconcile(
    store: _Pending,
    advance: Callable[[Any], Awaitable[object]],
    still_pending: Callable[[Any], Awaitable[bool]],
    *,
    kind: str,
    id_of: Callable[[Any], str],
    older_than: timedelta,
) -> int:
    """Advance every stale pending ``kind``; return how many reached a final state."""
    finished = 0
    for record in await store.stale_pending(older_than):
        record_id = id_of(record)
        try:
            await advance(record)
        except DomainError:
            pass  # a final failure raises its error too; the state below tells which
        except Exception:
            _log.exception(f"reconciling a {kind} failed", extra={f"{kind}_id": record_id})
        if await still_pending(record):
            await store.touch(record_id)
            _log.warning(f"{kind} still pending", extra={f"{kind}_id": record_id})
        else:
            finished += 1
            _log.info(f"{kind} reconciled", extra={f"{kind}_id": record_id})
    return finished


async def reconcile_once(store: PaymentStore, flow: PaymentFlow, older_than: timedelta) -> int:
    """Advance every stale pending payment; return how many reached a final state."""

    async def still_pending(record: PaymentRecord) -> bool:
        current = await store.get(record.payment_id)
        return current is None or current.state is PaymentState.PENDING

    return await _reconcile(
        store,
        flow.advance,
        still_pending,
        kind="payment",
        id_of=lambda record: record.payment_id,
        older_than=older_than,
    )


async def reconcile_moves_once(
    store: MoveStore, moves: WalletMoveFlow, older_than: timedelta
) -> int:
    """Advance every stale pending wallet move; return how many reached a final state."""

    async def still_pending(record: MoveRecord) -> bool:
        current = await store.get(record.wallet_move_id)
        return current is None or current.state is MoveState.PENDING

    return await _reconcile(
        store,
        moves.advance,
        still_pending,
        kind="wallet_move",
        id_of=lambda record: record.wallet_move_id,
        older_than=older_than,
    )


@dataclass(frozen=True)
class Reconcilable:
    """What the reconciler drives: payments and wallet moves."""

    payments: PaymentStore
    payment_flow: PaymentFlow
    moves: MoveStore
    move_flow: WalletMoveFlow


async def run_reconciler(work: Reconcilable, *, interval: float, older_than: timedelta) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile_once(work.payments, work.payment_flow, older_than)
            await reconcile_moves_once(work.moves, work.move_flow, older_than)
        except Exception:
            _log.exception("reconciliation pass failed")
