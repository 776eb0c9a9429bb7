"""A bounded sample of recent decisions, written off the hot path, for SimulateRuleSet.

Evaluate only appends to an in-memory ring (a deque with a fixed length, 100 by default:
when decisions come faster than they are written, the oldest unwritten ones are dropped,
so what is recorded is a sample of the latest decisions and its cost does not grow with
the load). A background task writes what is pending once a second in one COPY and keeps
the table to its last ``keep`` rows.

What is kept is the caller's PaymentFacts as sent (serialised when written, not when
decided), with the moment, scope, version and outcome: a simulation rebuilds every fact
from it, including facts the rule set of the time did not read. PaymentFacts carry no
personal data (parties by resource name, no name, ID or birth date); enrolment decisions,
whose facts include a birth date, are never recorded.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop.rules.v1 import resources_pb2
from openloop_rules.decision import Decision
from openloop_rules.tables import recorded_decisions

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    decided_at: datetime
    program_id: str
    scope: str
    rule_set_version: str
    outcome: str
    violated_rule_ids: tuple[str, ...]
    payment_facts: resources_pb2.PaymentFacts


_COPY_COLUMNS = (
    "decided_at",
    "program_id",
    "scope",
    "rule_set_version",
    "outcome",
    "violated_rule_ids",
    "payment_facts",
)


class _Offered(NamedTuple):
    """A decision as offered: what a row is made of when written, not when decided."""

    decided_at: datetime
    program_id: str
    scope: str
    decision: Decision
    payment_facts: resources_pb2.PaymentFacts


class DecisionRecorder:
    def __init__(self, capacity: int = 100, keep: int = 10_000) -> None:
        self._pending: collections.deque[_Offered] = collections.deque(maxlen=capacity)
        self._keep = keep
        self.capacity = capacity
        """How many decisions wait at most: offering more drops the oldest, so a batch need
        only offer its last ``capacity`` decisions."""

    def offer(
        self,
        decided_at: datetime,
        program_id: str,
        scope: str,
        decision: Decision,
        payment_facts: resources_pb2.PaymentFacts | None,
    ) -> None:
        """Keep the decision for writing; ``payment_facts`` None (enrolment) is not kept."""
        if payment_facts is not None:
            self._pending.append(_Offered(decided_at, program_id, scope, decision, payment_facts))

    async def flush(self, engine: AsyncEngine) -> int:
        """Write what is pending; returns how many rows."""
        batch = list(self._pending)
        self._pending.clear()
        if not batch:
            return 0
        rows = [
            (
                item.decided_at,
                item.program_id,
                item.scope,
                item.decision.rule_set_version,
                item.decision.outcome.value,
                [v.rule_id for v in item.decision.violations if v.rule_id],
                item.payment_facts.SerializeToString(),
            )
            for item in batch
        ]
        async with engine.begin() as conn:
            # COPY, not a multi-row INSERT: encoding 100 rows for an INSERT holds the event
            # loop for milliseconds, which every Evaluate waiting behind it would feel.
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None  # an open connection has its asyncpg connection
            await driver.copy_records_to_table(
                recorded_decisions.name, records=rows, columns=_COPY_COLUMNS
            )
            newest = await conn.scalar(select(func.max(recorded_decisions.c.decision_id)))
            if newest is not None and newest > self._keep:
                await conn.execute(
                    delete(recorded_decisions).where(
                        recorded_decisions.c.decision_id <= newest - self._keep
                    )
                )
        return len(rows)

    async def run(self, engine: AsyncEngine, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.flush(engine)
            except Exception as error:
                _log.warning("decisions not recorded", extra={"error": type(error).__name__})


async def recent(engine: AsyncEngine, program_id: str, limit: int) -> list[RecordedDecision]:
    """The ``limit`` most recent recorded decisions of a program, newest first."""
    table = recorded_decisions
    query = (
        select(
            table.c.decided_at,
            table.c.program_id,
            table.c.scope,
            table.c.rule_set_version,
            table.c.outcome,
            table.c.violated_rule_ids,
            table.c.payment_facts,
        )
        .where(table.c.program_id == program_id)
        .order_by(table.c.decision_id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [
            RecordedDecision(
                row.decided_at,
                row.program_id,
                row.scope,
                row.rule_set_version,
                row.outcome,
                tuple(row.violated_rule_ids),
                resources_pb2.PaymentFacts.FromString(row.payment_facts),
            )
            for row in rows
        ]
