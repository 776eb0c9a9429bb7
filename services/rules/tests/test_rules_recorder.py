"""The decision sample on a real database: what is written is what was decided, the
violated rule ids survive the trip (none, one, several), and the table is trimmed to its
newest ``keep`` rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openloop.rules.v1 import resources_pb2
from openloop_rules import decision
from openloop_rules.decision import Outcome, Violation
from openloop_rules.recorder import DecisionRecorder, recent
from openloop_runtime.db import create_engine
from services.rules.tests.conftest import FreshDatabase, migrated

NOW = datetime(2025, 8, 15, 5, tzinfo=UTC)


def _violation(rule_id: str) -> Violation:
    return Violation(rule_id, f"{rule_id}_REASON", "en", "th")


def _facts(amount: int) -> resources_pb2.PaymentFacts:
    facts = resources_pb2.PaymentFacts(goods_category="groceries")
    facts.amount.amount_satang = amount
    return facts


async def test_flush_writes_the_decisions_and_keeps_the_newest(
    fresh_database: FreshDatabase,
) -> None:
    engine = create_engine(await migrated(fresh_database))
    try:
        recorder = DecisionRecorder(capacity=10, keep=5)
        violated = [
            (),
            (_violation("R1"),),
            (_violation("R3"), Violation("", "MISSING_FACT", "", ""), _violation("R11")),
        ]
        for number in range(3):
            recorder.offer(
                NOW + timedelta(seconds=number),
                "digital-wallet",
                "round1_payment",
                decision.decide(violated[number], "digital-wallet-2025.1", ("R1", "R3")),
                _facts(100 + number),
            )
        assert await recorder.flush(engine) == 3
        assert await recorder.flush(engine) == 0  # nothing pending: nothing written

        rows = await recent(engine, "digital-wallet", 10)
        assert [row.violated_rule_ids for row in rows] == [("R3", "R11"), ("R1",), ()]
        assert [row.outcome for row in rows] == [
            Outcome.DENY.value,
            Outcome.DENY.value,
            Outcome.ALLOW.value,
        ]
        assert [row.payment_facts.amount.amount_satang for row in rows] == [102, 101, 100]
        assert rows[0].decided_at == NOW + timedelta(seconds=2)
        assert {(row.scope, row.rule_set_version) for row in rows} == {
            ("round1_payment", "digital-wallet-2025.1")
        }

        for number in range(3, 9):
            recorder.offer(
                NOW + timedelta(seconds=number),
                "digital-wallet",
                "round1_payment",
                decision.decide((), "digital-wallet-2025.1", ("R1",)),
                _facts(100 + number),
            )
        assert await recorder.flush(engine) == 6
        # The first three rows go; a statement never deletes the rows it writes itself.
        kept = await recent(engine, "digital-wallet", 100)
        assert [row.payment_facts.amount.amount_satang for row in kept] == list(range(108, 102, -1))

        recorder.offer(
            NOW, "digital-wallet", "round1_payment", decision.decide((), "v", ()), _facts(109)
        )
        assert await recorder.flush(engine) == 1
        kept = await recent(engine, "digital-wallet", 100)
        assert [row.payment_facts.amount.amount_satang for row in kept] == list(range(109, 104, -1))
    finally:
        await engine.dispose()
