"""RulesService through a real gRPC server on a real PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
import pytest_asyncio
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_rules.app import MIGRATIONS_DIR, build
from openloop_rules.config import RulesSettings
from openloop_rules.ruleset import RuleSetError, sha256_of
from openloop_rules.shipped import shipped_rule_set
from openloop_rules.tables import activations, rule_sets
from openloop_runtime import migrations
from openloop_runtime.errors import error_info_of
from openloop_runtime.server import running_server

DEFAULT_VERSION = "digital-wallet-2024.1"
ROUND1 = resources_pb2.SCOPE_ROUND1_PAYMENT

FreshDatabase = Callable[[str], Awaitable[str]]


async def migrated(fresh_database: FreshDatabase) -> str:
    url = await fresh_database("rules")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(fresh_database: FreshDatabase) -> str:
    return await migrated(fresh_database)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stub(database: str) -> AsyncIterator[service_pb2_grpc.RulesServiceStub]:
    settings = RulesSettings(port=0, database_url=database)
    async with (
        running_server("rules.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield service_pb2_grpc.RulesServiceStub(channel)


def facts(
    payee_district: str = "1001",
    size_class: party_pb2.MerchantSizeClass.ValueType = party_pb2.MERCHANT_SIZE_CLASS_SMALL_SHOP,
) -> resources_pb2.PaymentFacts:
    return resources_pb2.PaymentFacts(
        payer=party_pb2.PartyFacts(
            party="citizens/c1",
            kind=party_pb2.PARTY_KIND_CITIZEN,
            hosting_participant="participants/bank-a",
            district_code="1001",
        ),
        payee=party_pb2.PartyFacts(
            party="merchants/m1",
            kind=party_pb2.PARTY_KIND_MERCHANT,
            hosting_participant="participants/bank-b",
            district_code=payee_district,
            size_class=size_class,
        ),
    )


async def test_default_rule_set_is_seeded_and_active(
    stub: service_pb2_grpc.RulesServiceStub, database: str
) -> None:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(select(rule_sets.c.version))).scalars().all()
            active = (
                await conn.execute(select(activations.c.version, activations.c.activated_by))
            ).all()
    finally:
        await engine.dispose()
    assert stored == [DEFAULT_VERSION]
    assert [tuple(row) for row in active] == [(DEFAULT_VERSION, "system:bootstrap")]


async def test_evaluate_allows_a_compliant_payment(
    stub: service_pb2_grpc.RulesServiceStub,
) -> None:
    response = await stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=facts()))
    assert response.decision == resources_pb2.Decision(
        outcome=resources_pb2.OUTCOME_ALLOW,
        rule_set_version=DEFAULT_VERSION,
        evaluated_rule_ids=["R1", "R3", "R8"],
    )


async def test_evaluate_denies_with_every_violation(
    stub: service_pb2_grpc.RulesServiceStub,
) -> None:
    response = await stub.Evaluate(
        service_pb2.EvaluateRequest(
            scope=ROUND1,
            facts=facts(
                payee_district="2002", size_class=party_pb2.MERCHANT_SIZE_CLASS_LARGE_CHAIN
            ),
        )
    )
    decision = response.decision
    assert decision.outcome == resources_pb2.OUTCOME_DENY
    assert decision.rule_set_version == DEFAULT_VERSION
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [
        ("R1", "DISTRICT_MISMATCH"),
        ("R3", "NOT_A_SMALL_SHOP"),
    ]
    assert all(v.explanation_en and v.explanation_th for v in decision.violations)


async def test_evaluate_denies_on_missing_facts(stub: service_pb2_grpc.RulesServiceStub) -> None:
    incomplete = facts(payee_district="")
    incomplete.payer.district_code = ""
    response = await stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=incomplete))
    decision = response.decision
    assert decision.outcome == resources_pb2.OUTCOME_DENY
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [
        ("", "MISSING_FACT"),
        ("", "MISSING_FACT"),
        ("R1", "MISSING_FACT"),
    ]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (service_pb2.EvaluateRequest(facts=facts()), "scope"),
        (service_pb2.EvaluateRequest(scope=42, facts=facts()), "scope"),  # type: ignore[arg-type]
        (service_pb2.EvaluateRequest(scope=ROUND1), "facts"),
    ],
)
async def test_evaluate_rejects_bad_requests(
    stub: service_pb2_grpc.RulesServiceStub, request_: service_pb2.EvaluateRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Evaluate(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == "INVALID_FIELD"
    assert info.domain == "rules.openloop.dev"
    assert info.metadata["field"] == field


async def test_a_restart_keeps_the_existing_activation(
    stub: service_pb2_grpc.RulesServiceStub, database: str
) -> None:
    settings = RulesSettings(port=0, database_url=database)
    async with running_server("rules.openloop.dev", settings, build(settings)):
        pass
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(activations))
    finally:
        await engine.dispose()
    assert count == 1


async def test_nothing_active_denies_every_payment(fresh_database: FreshDatabase) -> None:
    url = await migrated(fresh_database)
    settings = RulesSettings(port=0, database_url=url, seed_default_rule_set=False)
    async with (
        running_server("rules.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        response = await service_pb2_grpc.RulesServiceStub(channel).Evaluate(
            service_pb2.EvaluateRequest(scope=ROUND1, facts=facts())
        )
    decision = response.decision
    assert decision.outcome == resources_pb2.OUTCOME_DENY
    assert [(v.rule_id, v.reason_code) for v in decision.violations] == [("", "NO_ACTIVE_RULE_SET")]
    assert decision.rule_set_version == ""


async def test_a_stored_version_with_other_content_is_refused(
    fresh_database: FreshDatabase,
) -> None:
    url = await migrated(fresh_database)
    settings = RulesSettings(port=0, database_url=url)
    async with running_server("rules.openloop.dev", settings, build(settings)):
        pass
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(rule_sets)
                .where(rule_sets.c.version == DEFAULT_VERSION)
                .values(document="version: tampered", sha256="0" * 64)
            )
    finally:
        await engine.dispose()
    with pytest.raises(RuleSetError, match="different content"):
        async with running_server("rules.openloop.dev", settings, build(settings)):
            pass


async def test_the_latest_activation_decides_after_a_restart(
    fresh_database: FreshDatabase,
) -> None:
    url = await migrated(fresh_database)
    settings = RulesSettings(port=0, database_url=url)
    async with running_server("rules.openloop.dev", settings, build(settings)):
        pass
    newer = shipped_rule_set(DEFAULT_VERSION).document.replace(DEFAULT_VERSION, "test-2")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                rule_sets.insert().values(version="test-2", document=newer, sha256=sha256_of(newer))
            )
            await conn.execute(
                activations.insert().values(
                    version="test-2", activated_by="test", reason="newer rules"
                )
            )
    finally:
        await engine.dispose()
    async with (
        running_server("rules.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        response = await service_pb2_grpc.RulesServiceStub(channel).Evaluate(
            service_pb2.EvaluateRequest(scope=ROUND1, facts=facts())
        )
    assert response.decision.rule_set_version == "test-2"
