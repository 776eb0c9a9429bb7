"""Drives payments and wallet moves left PENDING (a crash, an outage) to their final state.

Nothing is lost: a payment accepted before a crash completes once its upstreams
answer again, and the ledger's and settlement's idempotency stop it moving twice.
The same holds for a wallet move identity began. A payment or move that cannot advance is
touched, so it goes to the back of the queue and the next pass tries the others first.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from openloop_gateway.payments import PaymentFlow
from openloop_gateway.store import PaymentState, PaymentStore
from openloop_gateway.wallet_move_store import MoveState, MoveStore
from openloop_gateway.wallet_moves import WalletMoveFlow
from openloop_runtime.errors import DomainError

_log = logging.getLogger(__name__)


async def reconcile_once(store: PaymentStore, flow: PaymentFlow, older_than: timedelta) -> int:
    """Advance every stale pending payment; return how many reached a final state."""
    finished = 0
    for record in await store.stale_pending(older_than):
        try:
            await flow.advance(record)
        except DomainError:
            pass  # a final failure raises its error too; the state below tells which
        except Exception:
            _log.exception("reconciling a payment failed", extra={"payment_id": record.payment_id})
        current = await store.get(record.payment_id)
        if current is not None and current.state is not PaymentState.PENDING:
            finished += 1
            _log.info(
                "payment reconciled",
                extra={"payment_id": record.payment_id, "state": current.state.value},
            )
        else:
            await store.touch(record.payment_id)
            _log.warning("payment still pending", extra={"payment_id": record.payment_id})
    return finished


async def reconcile_moves_once(
    store: MoveStore, moves: WalletMoveFlow, older_than: timedelta
) -> int:
    """Advance every stale pending wallet move; return how many reached a final state."""
    finished = 0
    for record in await store.stale_pending(older_than):
        try:
            await moves.advance(record)
        except DomainError:
            pass  # the state below tells whether it moved on
        except Exception:
            _log.exception(
                "reconciling a wallet move failed",
                extra={"wallet_move_id": record.wallet_move_id},
            )
        current = await store.get(record.wallet_move_id)
        if current is not None and current.state is not MoveState.PENDING:
            finished += 1
            _log.info(
                "wallet move reconciled",
                extra={"wallet_move_id": record.wallet_move_id, "state": current.state.value},
            )
        else:
            await store.touch(record.wallet_move_id)
            _log.warning(
                "wallet move still pending", extra={"wallet_move_id": record.wallet_move_id}
            )
    return finished


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
