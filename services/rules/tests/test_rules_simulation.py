"""SimulateRuleSet: "what if phones are allowed from 1 August", on cases and on recently
recorded decisions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest

from openloop.rules.v1 import resources_pb2, service_pb2
from openloop_rules.operators import Role
from openloop_rules.shipped import shipped_programs, shipped_rule_set
from openloop_runtime.errors import error_info_of
from openloop_runtime.timestamps import to_timestamp
from services.rules.tests.conftest import Clock, FreshDatabase, migrated, operator_token, replica
from services.rules.tests.rules_cases import DEFAULT_VERSION, citizen, payment

ROUND1 = resources_pb2.SCOPE_ROUND1_PAYMENT
PROGRAM_2025_1 = next(iter(shipped_programs().values())).document
PHONES_FROM_AUGUST = PROGRAM_2025_1.replace('version: "2025.1"', 'version: "2025.2"').replace(
    "    valid_from: 2024-07-01\n", "    valid_from: 2024-07-01\n    valid_until: 2025-08-01\n"
)
DRAFT = (
    shipped_rule_set(DEFAULT_VERSION)
    .document.replace(DEFAULT_VERSION, "digital-wallet-2025.2")
    .replace('program_version: "2025.1"', 'program_version: "2025.2"')
)


def case(case_id: str, category: str, day: datetime) -> resources_pb2.SimulationCase:
    return resources_pb2.SimulationCase(
        case_id=case_id,
        scope=ROUND1,
        payment_facts=payment(goods_category=category),
        decide_time=to_timestamp(day),
    )


async def test_phones_allowed_from_august(fresh_database: FreshDatabase) -> None:
    url = await migrated(fresh_database)
    clock = Clock(datetime(2025, 6, 1, 3, tzinfo=UTC))
    async with replica(url, clock) as running:
        response = await running.stub.SimulateRuleSet(
            service_pb2.SimulateRuleSetRequest(
                document=DRAFT,
                program_document=PHONES_FROM_AUGUST,
                cases=[
                    case("phone-july", "electronics", datetime(2025, 7, 15, 5, tzinfo=UTC)),
                    case("phone-august", "electronics", datetime(2025, 8, 15, 5, tzinfo=UTC)),
                    case("rice-august", "groceries", datetime(2025, 8, 15, 5, tzinfo=UTC)),
                ],
            ),
            metadata=operator_token(role=Role.AUDITOR, now=clock.now),
        )
    assert response.active_rule_set_version == DEFAULT_VERSION
    by_case = {result.case_id: result for result in response.results}
    assert [by_case[c].changed for c in ("phone-july", "phone-august", "rice-august")] == [
        False,
        True,
        False,
    ]
    august = by_case["phone-august"]
    assert august.active.outcome == resources_pb2.OUTCOME_DENY
    assert [v.reason_code for v in august.active.violations] == ["CATEGORY_ON_NEGATIVE_LIST"]
    assert august.draft.outcome == resources_pb2.OUTCOME_ALLOW
    assert august.draft.rule_set_version == "digital-wallet-2025.2"
    assert (response.changed_count, response.newly_allowed_count) == (1, 1)
    assert response.newly_denied_count == 0


async def test_recent_decisions_are_simulated_again(fresh_database: FreshDatabase) -> None:
    url = await migrated(fresh_database)
    clock = Clock(datetime(2025, 8, 15, 5, tzinfo=UTC))
    async with replica(url, clock) as running:
        for category in ("electronics", "groceries", "electronics"):
            await running.stub.Evaluate(
                service_pb2.EvaluateRequest(scope=ROUND1, facts=payment(goods_category=category))
            )
        response = service_pb2.SimulateRuleSetResponse()
        for _ in range(200):
            response = await running.stub.SimulateRuleSet(
                service_pb2.SimulateRuleSetRequest(
                    document=DRAFT, program_document=PHONES_FROM_AUGUST, recent_decisions=10
                ),
                metadata=operator_token(now=clock.now),
            )
            if len(response.results) == 3:
                break
            await asyncio.sleep(0.025)
    assert len(response.results) == 3
    assert [r.recorded_outcome for r in response.results] == [
        resources_pb2.OUTCOME_DENY,
        resources_pb2.OUTCOME_ALLOW,
        resources_pb2.OUTCOME_DENY,
    ]
    assert [r.changed for r in response.results] == [True, False, True]
    assert response.newly_allowed_count == 2


@pytest.mark.parametrize(
    ("request_", "code", "reason"),
    [
        (service_pb2.SimulateRuleSetRequest(document="version: [", recent_decisions=1),
         grpc.StatusCode.INVALID_ARGUMENT, "RULE_SET_INVALID"),
        (service_pb2.SimulateRuleSetRequest(document=DRAFT, recent_decisions=1),
         grpc.StatusCode.NOT_FOUND, "PROGRAM_NOT_FOUND"),
        (service_pb2.SimulateRuleSetRequest(document=DRAFT, program_document="id: [",
                                            recent_decisions=1),
         grpc.StatusCode.INVALID_ARGUMENT, "PROGRAM_INVALID"),
        (service_pb2.SimulateRuleSetRequest(document=DRAFT, recent_decisions=1,
                                            program_document="a: " + "[" * 20000 + "]" * 20000),
         grpc.StatusCode.INVALID_ARGUMENT, "PROGRAM_INVALID"),
        (service_pb2.SimulateRuleSetRequest(
            document=DRAFT.replace("condition: payee.size_class", "condition: !!!!payee.size_class"
                                   ).replace("!!!!", "!" * 2000), recent_decisions=1,
            program_document=PHONES_FROM_AUGUST),
         grpc.StatusCode.INVALID_ARGUMENT, "RULE_SET_INVALID"),
        (service_pb2.SimulateRuleSetRequest(document=DRAFT, recent_decisions=10_001),
         grpc.StatusCode.INVALID_ARGUMENT, "BATCH_TOO_LARGE"),
        (service_pb2.SimulateRuleSetRequest(document=DRAFT),
         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD"),
    ],
)  # fmt: skip
async def test_bad_simulations_are_refused(
    fresh_database: FreshDatabase,
    request_: service_pb2.SimulateRuleSetRequest,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    url = await migrated(fresh_database)
    clock = Clock(datetime(2025, 6, 1, tzinfo=UTC))
    async with replica(url, clock) as running:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running.stub.SimulateRuleSet(request_, metadata=operator_token(now=clock.now))
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await running.stub.SimulateRuleSet(request_)
    info = error_info_of(caught.value)
    assert info is not None
    assert (caught.value.code(), info.reason) == (code, reason)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


READS_PAYER_CATEGORY = DRAFT.replace(
    'condition: payee.size_class == "SMALL_SHOP"',
    'condition: payee.size_class == "SMALL_SHOP" && payer.category != "blocked"',
)


async def test_a_recorded_fact_no_rule_read_does_not_block_a_simulation(
    fresh_database: FreshDatabase,
) -> None:
    """Evaluate checks only the facts its rules read, so it decided (and recorded) a payment
    whose payer.category is malformed. Simulating recent decisions decides it again as
    Evaluate would; a side whose rules do read the malformed fact cannot decide it, and the
    case is left out and counted rather than failing the whole simulation."""
    url = await migrated(fresh_database)
    clock = Clock(datetime(2025, 8, 15, 5, tzinfo=UTC))
    malformed = payment(payer=citizen(category="NOT valid!"))
    async with replica(url, clock) as running:
        decided = await running.stub.Evaluate(
            service_pb2.EvaluateRequest(scope=ROUND1, facts=malformed)
        )
        assert decided.decision.outcome == resources_pb2.OUTCOME_ALLOW
        await running.stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=payment()))

        async def simulate(document: str) -> service_pb2.SimulateRuleSetResponse:
            return await running.stub.SimulateRuleSet(
                service_pb2.SimulateRuleSetRequest(
                    document=document, program_document=PHONES_FROM_AUGUST, recent_decisions=10
                ),
                metadata=operator_token(role=Role.AUDITOR, now=clock.now),
            )

        same = service_pb2.SimulateRuleSetResponse()
        for _ in range(200):
            same = await simulate(DRAFT)
            if len(same.results) == 2:
                break
            await asyncio.sleep(0.025)
        assert len(same.results) == 2
        assert [r.changed for r in same.results] == [False, False]
        assert same.skipped_count == 0

        stricter = await simulate(
            READS_PAYER_CATEGORY.replace("digital-wallet-2025.2", "digital-wallet-2025.3")
        )
    assert len(stricter.results) == 1
    assert stricter.results[0].recorded_outcome == resources_pb2.OUTCOME_ALLOW
    assert stricter.skipped_count == 1
