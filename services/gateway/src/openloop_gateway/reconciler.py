"""Drives payments left PENDING (a crash, an outage) to their final state.

Nothing is lost: a payment accepted before a crash completes once its upstreams
answer again, and the ledger's and settlement's idempotency stop it moving twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from openloop_gateway.payments import PaymentFlow
from openloop_gateway.store import PaymentStore
from openloop_runtime.errors import DomainError

_log = logging.getLogger(__name__)


async def reconcile_once(store: PaymentStore, flow: PaymentFlow, older_than: timedelta) -> int:
    """Advance every stale pending payment; return how many reached a final state."""
    finished = 0
    for record in await store.stale_pending(older_than):
        try:
            await flow.advance(record)
        except DomainError as error:
            if error.reason == "UPSTREAM_UNAVAILABLE":
                _log.warning("payment still pending", extra={"payment_id": record.payment_id})
                continue
        finished += 1
        _log.info("payment reconciled", extra={"payment_id": record.payment_id})
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
