"""Drives payments left PENDING (a crash, an outage) to their final state.

Nothing is lost: a payment accepted before a crash completes once its upstreams
answer again, and the ledger's and settlement's idempotency stop it moving twice.
A payment that cannot advance is touched, so it goes to the back of the queue
and the next pass tries the others first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from openloop_gateway.payments import PaymentFlow
from openloop_gateway.store import PaymentState, PaymentStore
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


async def run_reconciler(
    store: PaymentStore, flow: PaymentFlow, *, interval: float, older_than: timedelta
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile_once(store, flow, older_than)
        except Exception:
            _log.exception("reconciliation pass failed")
