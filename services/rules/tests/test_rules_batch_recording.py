"""EvaluateBatch offers the recorder only what its bounded ring would keep: the last
``capacity`` decisions, exactly as if every decision had been offered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from openloop.rules.v1 import resources_pb2, service_pb2
from openloop_rules.compiler import compile_text
from openloop_rules.recorder import DecisionRecorder
from openloop_rules.schedule import RuleSchedule
from openloop_rules.servicer import RulesServicer
from openloop_rules.shipped import shipped_programs, shipped_rule_set
from openloop_rules.store.activations import Activation, ActivationKind
from services.rules.tests.rules_cases import DEFAULT_VERSION, NOW, citizen, merchant, payment

PROGRAM = "digital-wallet"


def servicer(recorder: DecisionRecorder) -> RulesServicer:
    programs = {key: shipped.program for key, shipped in shipped_programs().items()}
    schedule = RuleSchedule()
    activation = Activation(
        1, PROGRAM, DEFAULT_VERSION, NOW, NOW, "test", "test", ActivationKind.BOOTSTRAP, None
    )
    compiled = compile_text(shipped_rule_set(DEFAULT_VERSION).document, programs)
    schedule.replace([activation], [(activation, compiled)])
    nothing: Any = None
    return RulesServicer(
        engine=nothing,
        schedule=schedule,
        recorder=recorder,
        governance=nothing,
        simulation=nothing,
        operators=nothing,
        default_program=PROGRAM,
        max_batch=100,
        clock=lambda: datetime(2025, 6, 1, 4, 0, tzinfo=UTC),
    )


def test_a_batch_records_what_offering_every_decision_would() -> None:
    requests = [
        service_pb2.EvaluateRequest(
            scope=resources_pb2.SCOPE_ROUND1_PAYMENT,
            facts=payment(
                payer=citizen(party=f"citizens/c{index}"),
                payee=merchant(district_code="1001" if index % 2 else "2002"),
            ),
        )
        for index in range(10)
    ]
    batched, one_by_one = DecisionRecorder(capacity=3), DecisionRecorder(capacity=3)
    reply = asyncio.run(
        servicer(batched).EvaluateBatch(service_pb2.EvaluateBatchRequest(requests=requests), None)
    )
    alone = servicer(one_by_one)
    for request in requests:
        asyncio.run(alone.Evaluate(request, None))
    assert len(reply.decisions) == 10
    assert list(batched._pending) == list(one_by_one._pending)
    assert [item.payment_facts.payer.party for item in batched._pending] == [
        "citizens/c7", "citizens/c8", "citizens/c9"
    ]  # fmt: skip
