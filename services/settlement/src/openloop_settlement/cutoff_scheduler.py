"""Closes the OPEN settlement cycle at every scheduled cut-off (``cutoffs.py``), beside the
gRPC server, on every replica at once.

One close per cut-off, however many replicas run this: all of them close under the same
request id, derived from the cut-off's instant (``cutoff:20261127T1600Z``), and a close is
idempotent by request id (``cycles.py``). The replica whose close commits first closes the
cycle. One that locked the same cycle behind it gets that close back (``replayed``); one
that read the OPEN cycle after it (by then the next one) is refused IDEMPOTENCY_KEY_REUSED,
naming the cycle the key closed. Both found the cut-off applied: done, not an error.

At start, after an error and whenever it wakes, the scheduler applies the latest cut-off at
or before now, unless it is applied already: a cycle was closed under its request id, or the
OPEN cycle opened at or after it (an operator closed after the cut-off; closing again would
cut a cycle of a few minutes). So a replica that was down across a cut-off (or whose
database was) closes once when it is back, for the latest cut-off only: the missed days
never come back as a burst of empty cycles. The cut-off it closed for is kept on the cycle
(``cutoff_time``) beside the moment of the close (``close_time``).

A failure (the database down) is logged with the traceback and retried with exponential
backoff; the loop ends only when it is cancelled, with the server. The other services'
background loops (the gateway's reconciler, the ledger's sealer, identity's re-wrapping)
make no spans of their own, and neither does this one: each attempt logs instead.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from openloop_runtime.errors import DomainError
from openloop_runtime.timestamps import utc_now
from openloop_settlement import parse
from openloop_settlement.cutoffs import CutoffSchedule, request_id_for
from openloop_settlement.cycles import ClosedCycle
from openloop_settlement.model import SettlementCycle
from openloop_settlement.render import cycle_name

_log = logging.getLogger(__name__)

ACTOR = "scheduler:cutoff"
"""``closed_by`` of a scheduled close, beside the operators' ``operator:<subject>``."""
MAX_WAIT_SECONDS = 60.0
"""The longest the scheduler sleeps before it reads the clock again, so a clock that was
set, or a process that was suspended, does not make it sleep past a cut-off for long."""
FIRST_RETRY_SECONDS = 1.0
LAST_RETRY_SECONDS = 60.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


class CutoffCycles(Protocol):
    """What the scheduler needs of :class:`openloop_settlement.cycles.CycleStore`."""

    async def open_cycle(self) -> SettlementCycle: ...
    async def closed_under(self, request_id: str) -> SettlementCycle | None: ...
    async def close(
        self, cycle_id: int, request_id: str, actor: str, *, cutoff_time: datetime | None = None
    ) -> ClosedCycle: ...


class Outcome(enum.StrEnum):
    CLOSED = "closed"
    """This replica's close cut the cycle."""
    FOUND_CLOSED = "found_closed"
    """A close under the cut-off's request id was there already (another replica's)."""
    OPENED_AFTER_CUTOFF = "opened_after_cutoff"
    """The OPEN cycle opened after the cut-off (an operator closed the one before after it,
    or the database is younger than the cut-off): nothing to close."""


@dataclass(frozen=True, slots=True)
class Applied:
    cutoff: datetime
    outcome: Outcome
    cycle_id: int
    """The cycle closed for the cut-off; for ``OPENED_AFTER_CUTOFF``, the OPEN cycle."""


class CutoffScheduler:
    def __init__(
        self,
        cycles: CutoffCycles,
        schedule: CutoffSchedule,
        *,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = MAX_WAIT_SECONDS,
        first_retry: float = FIRST_RETRY_SECONDS,
        last_retry: float = LAST_RETRY_SECONDS,
    ) -> None:
        if not schedule:
            raise ValueError("a cut-off scheduler needs at least one cut-off time")
        self._cycles = cycles
        self._schedule = schedule
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._first_retry = first_retry
        self._last_retry = last_retry
        self._applied: datetime | None = None
        """The latest cut-off this scheduler saw applied: not looked up again."""

    async def run(self) -> None:
        """Apply cut-offs until cancelled (the service runs it in the background)."""
        failures = 0
        while True:
            try:
                await self.apply_latest()
            except Exception:  # the database down, or a defect: never the end of the loop
                failures += 1
                delay = min(self._last_retry, self._first_retry * 2 ** (failures - 1))
                _log.exception(
                    "settlement cut-off not applied; retrying",
                    extra={"failures": failures, "retry_in_seconds": delay},
                )
                await self._sleep(delay)
                continue
            failures = 0
            now = self._clock()
            upcoming = self._schedule.next_after(now)
            wait = self._max_wait if upcoming is None else (upcoming - now).total_seconds()
            await self._sleep(max(0.0, min(wait, self._max_wait)))

    async def apply_latest(self) -> Applied | None:
        """Apply the latest cut-off at or before now; None if it was seen applied before."""
        cutoff = self._schedule.latest_at_or_before(self._clock())
        if cutoff is None or cutoff == self._applied:
            return None
        applied = await self._apply(cutoff)
        self._applied = cutoff
        _log.info(
            "settlement cut-off applied",
            extra={
                "cycle": cycle_name(applied.cycle_id),
                "cutoff": self._schedule.local(cutoff).isoformat(),
                "request_id": request_id_for(cutoff),
                "outcome": applied.outcome.value,
            },
        )
        return applied

    async def _apply(self, cutoff: datetime) -> Applied:
        request_id = request_id_for(cutoff)
        done = await self._cycles.closed_under(request_id)
        if done is not None:
            return Applied(cutoff, Outcome.FOUND_CLOSED, done.cycle_id)
        current = await self._cycles.open_cycle()
        if current.open_time >= cutoff:
            return Applied(cutoff, Outcome.OPENED_AFTER_CUTOFF, current.cycle_id)
        try:
            closed = await self._cycles.close(
                current.cycle_id, request_id, ACTOR, cutoff_time=cutoff
            )
        except DomainError as refused:
            if refused.reason == "IDEMPOTENCY_KEY_REUSED" and "resource" in refused.metadata:
                # Another replica closed the cycle before this one read the OPEN cycle.
                other = parse.cycle_name(refused.metadata["resource"], "resource")
                return Applied(cutoff, Outcome.FOUND_CLOSED, other)
            if refused.reason == "SETTLEMENT_CYCLE_STATE_CONFLICT":
                # Closed under another key since it was read OPEN, so after the cut-off.
                return Applied(cutoff, Outcome.OPENED_AFTER_CUTOFF, current.cycle_id + 1)
            raise
        outcome = Outcome.FOUND_CLOSED if closed.replayed else Outcome.CLOSED
        return Applied(cutoff, outcome, closed.cycle.cycle_id)
