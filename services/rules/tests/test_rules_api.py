"""Evaluate and EvaluateBatch through a real gRPC server on a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_rules.tables import activations, rule_sets
from openloop_runtime.errors import error_info_of
from openloop_runtime.timestamps import utc_now
from services.rules.tests.conftest import FreshDatabase, migrated, replica
from services.rules.tests.rules_cases import DEFAULT_VERSION, enrolment, merchant, payment

ROUND1 = resources_pb2.SCOPE_ROUND1_PAYMENT
ENROLMENT = resources_pb2.SCOPE_ENROLMENT


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(fresh_database: FreshDatabase) -> str:
    return await migrated(fresh_database)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stub(database: str) -> AsyncIterator[service_pb2_grpc.RulesServiceStub]:
    async with replica(database, utc_now) as running:
        yield running.stub


async def test_default_rule_set_and_program_are_seeded_and_active(
    stub: service_pb2_grpc.RulesServiceStub, database: str
) -> None:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(select(rule_sets.c.version))).scalars().all()
            active = (
                await conn.execute(
                    select(activations.c.version, activations.c.activated_by, activations.c.kind)
                )
            ).all()
    finally:
        await engine.dispose()
    assert stored == [DEFAULT_VERSION]
    assert [tuple(row) for row in active] == [(DEFAULT_VERSION, "system:bootstrap", "BOOTSTRAP")]


async def test_evaluate_allows_a_compliant_payment(
    stub: service_pb2_grpc.RulesServiceStub,
) -> None:
    response = await stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=payment()))
    assert response.decision == resources_pb2.Decision(
        outcome=resources_pb2.OUTCOME_ALLOW,
        rule_set_version=DEFAULT_VERSION,
        evaluated_rule_ids=["R1", "R2", "R3", "R10", "R8", "R11"],
        program="programs/digital-wallet",
    )


async def test_evaluate_denies_with_every_violation_explained(
    stub: service_pb2_grpc.RulesServiceStub,
) -> None:
    facts = payment(
        payee=merchant(district_code="2002", size_class=party_pb2.MERCHANT_SIZE_CLASS_LARGE_CHAIN),
        channel=resources_pb2.CHANNEL_ONLINE,
    )
    response = await stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=facts))
    decision = response.decision
    assert decision.outcome == resources_pb2.OUTCOME_DENY
    assert decision.rule_set_version == DEFAULT_VERSION
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [
        ("R1", "DISTRICT_MISMATCH"),
        ("R2", "NOT_IN_PERSON"),
        ("R3", "NOT_A_SMALL_SHOP"),
    ]
    assert all(v.explanation_en and v.explanation_th for v in decision.violations)


async def test_evaluate_an_enrolment(stub: service_pb2_grpc.RulesServiceStub) -> None:
    response = await stub.Evaluate(
        service_pb2.EvaluateRequest(scope=ENROLMENT, enrolment_facts=enrolment(prisoner=True))
    )
    assert [(v.rule_id, v.reason_code) for v in response.decision.violations] == [
        ("E5", "EXCLUDED_PRISONER")
    ]


async def test_missing_facts_deny(stub: service_pb2_grpc.RulesServiceStub) -> None:
    facts = payment(payee=merchant(district_code=""))
    facts.payer.district_code = ""
    response = await stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=facts))
    decision = response.decision
    assert decision.outcome == resources_pb2.OUTCOME_DENY
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [
        ("", "MISSING_FACT"),
        ("", "MISSING_FACT"),
        ("R1", "MISSING_FACT"),
    ]


@pytest.mark.parametrize(
    ("request_", "code", "reason", "field"),
    [
        (service_pb2.EvaluateRequest(facts=payment()), "INVALID_ARGUMENT", "INVALID_FIELD",
         "scope"),
        (service_pb2.EvaluateRequest(scope=42, facts=payment()),  # type: ignore[arg-type]
         "INVALID_ARGUMENT", "INVALID_FIELD", "scope"),
        (service_pb2.EvaluateRequest(scope=ROUND1), "INVALID_ARGUMENT", "INVALID_FIELD", "facts"),
        (service_pb2.EvaluateRequest(scope=ENROLMENT, facts=payment()), "INVALID_ARGUMENT",
         "INVALID_FIELD", "enrolment_facts"),
        (service_pb2.EvaluateRequest(scope=ROUND1, facts=payment(payer=merchant(kind=7))),
         "INVALID_ARGUMENT", "INVALID_FIELD", "facts.payer.kind"),
        (service_pb2.EvaluateRequest(scope=ROUND1, facts=payment(payee=merchant(
            district_code="10-1"))), "INVALID_ARGUMENT", "INVALID_FIELD",
         "facts.payee.district_code"),
        (service_pb2.EvaluateRequest(scope=ENROLMENT, enrolment_facts=enrolment(
            birth_date="2006-02-30")), "INVALID_ARGUMENT", "INVALID_FIELD",
         "enrolment_facts.birth_date"),
        (service_pb2.EvaluateRequest(scope=ROUND1, facts=payment(), program="programs/nope"),
         "NOT_FOUND", "PROGRAM_NOT_FOUND", None),
        (service_pb2.EvaluateRequest(scope=ROUND1, facts=payment(), program="nope"),
         "INVALID_ARGUMENT", "INVALID_FIELD", "program"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_with_a_reason(
    stub: service_pb2_grpc.RulesServiceStub,
    request_: service_pb2.EvaluateRequest,
    code: str,
    reason: str,
    field: str | None,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Evaluate(request_)
    assert caught.value.code().name == code
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == reason
    assert info.domain == "rules.openloop.dev"
    if field is not None:
        assert info.metadata["field"] == field
    assert "2006-02-30" not in (caught.value.details() or "")


async def test_evaluate_batch_answers_in_order(stub: service_pb2_grpc.RulesServiceStub) -> None:
    requests = [
        service_pb2.EvaluateRequest(scope=ROUND1, facts=payment()),
        service_pb2.EvaluateRequest(scope=ROUND1, facts=payment(goods_category="tobacco")),
        service_pb2.EvaluateRequest(scope=ENROLMENT, enrolment_facts=enrolment()),
        service_pb2.EvaluateRequest(
            scope=resources_pb2.SCOPE_CASH_OUT,
            facts=payment("cash_out", receipts_round=resources_pb2.RECEIPTS_ROUND_ROUND1),
        ),
    ]
    response = await stub.EvaluateBatch(service_pb2.EvaluateBatchRequest(requests=requests))
    assert [d.outcome for d in response.decisions] == [
        resources_pb2.OUTCOME_ALLOW,
        resources_pb2.OUTCOME_DENY,
        resources_pb2.OUTCOME_ALLOW,
        resources_pb2.OUTCOME_DENY,
    ]
    assert [v.reason_code for v in response.decisions[1].violations] == [
        "CATEGORY_ON_NEGATIVE_LIST"
    ]
    assert {d.rule_set_version for d in response.decisions} == {DEFAULT_VERSION}


async def test_an_oversized_batch_is_refused(stub: service_pb2_grpc.RulesServiceStub) -> None:
    one = service_pb2.EvaluateRequest(scope=ROUND1, facts=payment())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.EvaluateBatch(service_pb2.EvaluateBatchRequest(requests=[one] * 10_001))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == "BATCH_TOO_LARGE"
    assert info.metadata["max"] == "10000"


async def test_a_bad_item_refuses_the_whole_batch_naming_it(
    stub: service_pb2_grpc.RulesServiceStub,
) -> None:
    requests = [
        service_pb2.EvaluateRequest(scope=ROUND1, facts=payment()),
        service_pb2.EvaluateRequest(scope=ROUND1),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.EvaluateBatch(service_pb2.EvaluateBatchRequest(requests=requests))
    info = error_info_of(caught.value)
    assert info is not None
    assert info.metadata["field"] == "requests[1].facts"


async def test_nothing_active_denies_everything(fresh_database: FreshDatabase) -> None:
    url = await migrated(fresh_database)
    async with replica(url, utc_now, seed_default_rule_set=False) as running:
        response = await running.stub.Evaluate(
            service_pb2.EvaluateRequest(scope=ROUND1, facts=payment())
        )
    decision = response.decision
    assert decision.outcome == resources_pb2.OUTCOME_DENY
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [("", "NO_ACTIVE_RULE_SET")]
    assert decision.rule_set_version == ""


async def test_a_restart_keeps_the_existing_activation(fresh_database: FreshDatabase) -> None:
    url = await migrated(fresh_database)
    for _ in range(2):
        async with replica(url, utc_now):
            pass
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(activations.c.version))).scalars().all()
    finally:
        await engine.dispose()
    assert rows == [DEFAULT_VERSION]


async def test_an_upgrade_stores_the_new_default_without_activating_it(
    fresh_database: FreshDatabase,
) -> None:
    url = await migrated(fresh_database)
    async with replica(url, utc_now, default_rule_set_version="digital-wallet-2024.1"):
        pass
    async with replica(url, utc_now) as running:
        response = await running.stub.Evaluate(
            service_pb2.EvaluateRequest(scope=ROUND1, facts=payment())
        )
    assert response.decision.rule_set_version == "digital-wallet-2024.1"
    assert response.decision.evaluated_rule_ids == ["R1", "R3", "R8"]
