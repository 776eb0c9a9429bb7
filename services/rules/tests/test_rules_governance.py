"""Publishing, activating and rolling back rule sets: operator tokens, the audit trail,
immutable versions, activation at a time on every replica, and rollback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.rules.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_rules.governance import _rollback_target
from openloop_rules.operators import Role, mint
from openloop_rules.shipped import shipped_rule_set
from openloop_rules.store.activations import Activation, ActivationKind
from openloop_rules.tables import audit_events, rule_sets
from openloop_runtime.errors import DomainError, error_info_of
from openloop_runtime.timestamps import to_timestamp, utc_now
from services.rules.tests.conftest import (
    OPERATOR_KID,
    Clock,
    FreshDatabase,
    Replica,
    migrated,
    operator_token,
    replica,
)
from services.rules.tests.rules_cases import DEFAULT_VERSION, payment

ROUND1 = resources_pb2.SCOPE_ROUND1_PAYMENT
DEFAULT = shipped_rule_set(DEFAULT_VERSION).document
PROGRAM = "programs/digital-wallet"


def version_of(document: str, version: str) -> str:
    return document.replace(DEFAULT_VERSION, version)


def without_district_rule(version: str) -> str:
    """The default rule set with R1's condition always true: other districts allowed."""
    return version_of(DEFAULT, version).replace(
        "condition: payee.district_code == payer.district_code",
        "condition: payee.district_code == payer.district_code || true",
    )


OTHER_DISTRICT = payment(payee=payment().payee)
OTHER_DISTRICT.payee.district_code = "2002"


@pytest_asyncio.fixture(loop_scope="session")
async def world(fresh_database: FreshDatabase) -> AsyncIterator[tuple[Replica, Clock, AsyncEngine]]:
    url = await migrated(fresh_database)
    clock = Clock(utc_now())
    engine = create_async_engine(url)
    async with replica(url, clock) as running:
        yield running, clock, engine
    await engine.dispose()


async def publish(
    stub: service_pb2_grpc.RulesServiceStub, document: str, program_document: str = ""
) -> service_pb2.PublishRuleSetResponse:
    return await stub.PublishRuleSet(
        service_pb2.PublishRuleSetRequest(
            document=document, reason="test change", program_document=program_document
        ),
        metadata=operator_token(),
    )


async def refused(call: object) -> tuple[grpc.StatusCode, dict[str, str], str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info_of(caught.value)
    assert info is not None
    return (
        caught.value.code(),
        {"reason": info.reason, **info.metadata},
        caught.value.details() or "",
    )


async def count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_operator_methods_need_a_valid_operator_token(world) -> None:
    running, clock, _ = world
    request = service_pb2.PublishRuleSetRequest(document=DEFAULT, reason="x")
    code, info, _ = await refused(running.stub.PublishRuleSet(request))
    assert (code, info["reason"], info["token_reason"]) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
        "TOKEN_MISSING",
    )
    stranger = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    forged = mint(stranger, kid=OPERATOR_KID, subject="mallory")
    code, info, _ = await refused(
        running.stub.PublishRuleSet(request, metadata=[("authorization", f"Bearer {forged}")])
    )
    assert (code, info["token_reason"]) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_BAD_SIGNATURE")
    old = operator_token(now=clock.now - timedelta(hours=1))
    code, info, _ = await refused(running.stub.PublishRuleSet(request, metadata=old))
    assert (code, info["token_reason"]) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")
    auditor = operator_token(role=Role.AUDITOR)
    code, info, _ = await refused(running.stub.PublishRuleSet(request, metadata=auditor))
    assert (code, info["reason"]) == (grpc.StatusCode.PERMISSION_DENIED, "OPERATOR_NOT_AUTHORISED")
    listed = await running.stub.ListRuleSets(service_pb2.ListRuleSetsRequest(), metadata=auditor)
    assert [r.version for r in listed.rule_sets] == [DEFAULT_VERSION]


async def test_publish_stores_an_immutable_version_with_its_audit_row(world) -> None:
    running, _, engine = world
    document = without_district_rule("digital-wallet-2025.3")
    published = (await publish(running.stub, document)).rule_set
    assert published.name == "ruleSets/digital-wallet-2025.3"
    assert published.program == PROGRAM
    assert published.program_version == "2025.1"
    assert published.published_by == "operator:alice"
    assert not published.active
    assert [r.id for r in published.rules][:2] == ["E1", "E2"]
    again = (await publish(running.stub, document)).rule_set
    assert again == published
    code, info, _ = await refused(publish(running.stub, document + "\n# changed\n"))
    assert (code, info["reason"]) == (grpc.StatusCode.ALREADY_EXISTS, "RULE_SET_VERSION_EXISTS")
    async with engine.connect() as conn:
        audit = (
            await conn.execute(
                select(audit_events.c.actor, audit_events.c.action, audit_events.c.reason).where(
                    audit_events.c.rule_set_version == "digital-wallet-2025.3"
                )
            )
        ).all()
    assert [tuple(row) for row in audit] == [("operator:alice", "PUBLISH", "test change")]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (DEFAULT.replace(DEFAULT_VERSION, "bad-1").replace(
            "condition: payee.size_class == \"SMALL_SHOP\"", "condition: payee.size_class =="),
         {"reason": "RULE_SET_INVALID", "rule_id": "R3", "line": "1", "column": "20"}),
        (DEFAULT.replace(DEFAULT_VERSION, "bad-2").replace(
            "condition: payee.size_class == \"SMALL_SHOP\"", "condition: payee.size == \"SMALL\""),
         {"reason": "RULE_SET_INVALID", "rule_id": "R3", "line": "1", "column": "7"}),
        (DEFAULT.replace(DEFAULT_VERSION, "bad-3").replace(
            "applicant.deposits_satang <= program.max_deposits_satang",
            "applicant.deposits_satang <= \"500000\""),
         {"reason": "RULE_SET_INVALID", "rule_id": "E4", "line": "1", "column": "27"}),
        (DEFAULT.replace(DEFAULT_VERSION, "bad-4").replace(
            "scopes: [cash_out]\n    condition: payer.kind",
            "scopes: [cash_in]\n    condition: payer.kind"),
         {"reason": "RULE_SET_INVALID", "rule_id": "R8-CASH", "field": "rules.18.scopes"}),
        ("version: [", {"reason": "RULE_SET_INVALID", "field": "document"}),
        (DEFAULT.replace(DEFAULT_VERSION, "bad-5").replace(
            'program_version: "2025.1"', 'program_version: "2030.1"'),
         {"reason": "PROGRAM_NOT_FOUND", "program_version": "2030.1"}),
        (DEFAULT.replace(DEFAULT_VERSION, "bad-6").replace("phase: 3", "phase: 9"),
         {"reason": "RULE_SET_INVALID", "field": "phase"}),
    ],
)  # fmt: skip
async def test_a_broken_rule_set_is_refused_with_where_and_nothing_stored(
    world, document: str, expected: dict[str, str]
) -> None:
    running, _, engine = world
    before = await count(engine, rule_sets)
    _, info, _ = await refused(publish(running.stub, document))
    assert {key: info.get(key) for key in expected} == expected
    assert await count(engine, rule_sets) == before


def _r3(version: str, condition: str) -> str:
    """The default rule set with R3's condition replaced (quoted for YAML)."""
    return version_of(DEFAULT, version).replace(
        'condition: payee.size_class == "SMALL_SHOP"', f"condition: '{condition}'"
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # CEL accepts each condition; this service's parser or rewrite could not, and the
        # publish answered INTERNAL.
        (_r3("deep-1", "!" * 2000 + "true"),
         {"reason": "RULE_SET_INVALID", "rule_id": "R3", "field": "condition", "line": "1"}),
        (_r3("deep-2", " || ".join(f'payee.district_code == "{1000 + i}"' for i in range(100))),
         {"reason": "RULE_SET_INVALID", "rule_id": "R3", "field": "condition", "line": "1"}),
        (_r3("deep-3", " || ".join(f'payee.district_code == "{1000 + i}"' for i in range(95))),
         {"reason": "RULE_SET_INVALID", "rule_id": "R3", "field": "condition", "line": "1"}),
        ("version: deep-4\nrules: " + "[" * 20000 + "]" * 20000,
         {"reason": "RULE_SET_INVALID", "field": "document"}),
        ("version: deep-5\nrules: [{id: 2025-02-30}]",
         {"reason": "RULE_SET_INVALID", "field": "document"}),
    ],
)  # fmt: skip
async def test_a_pathological_rule_set_is_invalid_not_an_internal_error(
    world, document: str, expected: dict[str, str]
) -> None:
    running, _, engine = world
    before = await count(engine, rule_sets)
    code, info, _ = await refused(publish(running.stub, document))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert {key: info.get(key) for key in expected} == expected
    assert await count(engine, rule_sets) == before


async def test_the_smallest_int_literal_is_accepted(world) -> None:
    running, _, _ = world
    document = _r3("int-min-1", 'payee.size_class == "SMALL_SHOP" && '
                   "transaction.amount_satang > -9223372036854775808")  # fmt: skip
    published = (await publish(running.stub, document)).rule_set
    assert published.name == "ruleSets/int-min-1"


async def test_a_reason_is_required(world) -> None:
    running, _, _ = world
    code, info, _ = await refused(
        running.stub.PublishRuleSet(
            service_pb2.PublishRuleSetRequest(document=DEFAULT, reason=" "),
            metadata=operator_token(),
        )
    )
    assert (code, info["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "reason")


async def test_activation_must_leave_time_to_propagate(world) -> None:
    running, clock, _ = world
    await publish(running.stub, without_district_rule("soon-1"))
    code, info, _ = await refused(
        running.stub.ActivateRuleSet(
            service_pb2.ActivateRuleSetRequest(
                name="ruleSets/soon-1",
                effective_time=to_timestamp(clock.now + timedelta(seconds=1)),
                reason="now please",
            ),
            metadata=operator_token(),
        )
    )
    assert (code, info["reason"]) == (grpc.StatusCode.INVALID_ARGUMENT, "ACTIVATION_TOO_SOON")
    code, info, _ = await refused(
        running.stub.ActivateRuleSet(
            service_pb2.ActivateRuleSetRequest(name="ruleSets/nope-1", reason="x"),
            metadata=operator_token(),
        )
    )
    assert (code, info["reason"]) == (grpc.StatusCode.NOT_FOUND, "RULE_SET_NOT_FOUND")


async def decided_version(stub: service_pb2_grpc.RulesServiceStub) -> str:
    response = await stub.Evaluate(service_pb2.EvaluateRequest(scope=ROUND1, facts=OTHER_DISTRICT))
    return response.decision.rule_set_version


async def eventually_version(stub: service_pb2_grpc.RulesServiceStub, version: str) -> None:
    for _ in range(200):
        if await decided_version(stub) == version:
            return
        await asyncio.sleep(0.025)
    assert await decided_version(stub) == version


async def test_every_replica_switches_at_the_effective_time_and_rollback_restores(
    fresh_database: FreshDatabase,
) -> None:
    url = await migrated(fresh_database)
    clock = Clock(utc_now())
    async with replica(url, clock) as first, replica(url, clock) as second:
        await publish(first.stub, without_district_rule("digital-wallet-2025.3"))
        effective = clock.now + timedelta(seconds=30)
        activation = (
            await first.stub.ActivateRuleSet(
                service_pb2.ActivateRuleSetRequest(
                    name="ruleSets/digital-wallet-2025.3",
                    effective_time=to_timestamp(effective),
                    reason="district rule lifted",
                    request_id="activate-2025.3",
                ),
                metadata=operator_token(),
            )
        ).activation
        assert activation.kind == resources_pb2.ACTIVATION_KIND_ACTIVATE
        assert activation.actor == "operator:alice"
        retried = await first.stub.ActivateRuleSet(
            service_pb2.ActivateRuleSetRequest(
                name="ruleSets/digital-wallet-2025.3",
                effective_time=to_timestamp(effective + timedelta(seconds=5)),
                reason="district rule lifted",
                request_id="activate-2025.3",
            ),
            metadata=operator_token(),
        )
        assert retried.activation == activation
        # The clock jumps to the effective time at once: first let real time pass for the
        # propagation the margin gives every replica (a poll, a read and a compile), as it
        # would before that time came, however slow the machine.
        await asyncio.sleep(second.settings.activation_margin_seconds)
        assert await decided_version(first.stub) == DEFAULT_VERSION
        assert await decided_version(second.stub) == DEFAULT_VERSION
        clock.now = effective
        for stub in (first.stub, second.stub):
            response = await stub.Evaluate(
                service_pb2.EvaluateRequest(scope=ROUND1, facts=OTHER_DISTRICT)
            )
            assert response.decision.rule_set_version == "digital-wallet-2025.3"
            assert response.decision.outcome == resources_pb2.OUTCOME_ALLOW

        rollback = (
            await second.stub.RollbackRuleSet(
                service_pb2.RollbackRuleSetRequest(program=PROGRAM, reason="complaints"),
                metadata=operator_token("bob"),
            )
        ).activation
        assert rollback.rule_set == f"ruleSets/{DEFAULT_VERSION}"
        assert rollback.kind == resources_pb2.ACTIVATION_KIND_ROLLBACK
        clock.advance(2)
        await eventually_version(first.stub, DEFAULT_VERSION)
        assert await decided_version(second.stub) == DEFAULT_VERSION

        history = await first.stub.ListActivations(
            service_pb2.ListActivationsRequest(program=PROGRAM, page_size=2),
            metadata=operator_token(),
        )
        assert [a.kind for a in history.activations] == [
            resources_pb2.ACTIVATION_KIND_ROLLBACK,
            resources_pb2.ACTIVATION_KIND_ACTIVATE,
        ]
        assert history.current == rollback.name
        assert history.next_page_token
        rest = await first.stub.ListActivations(
            service_pb2.ListActivationsRequest(
                program=PROGRAM, page_size=2, page_token=history.next_page_token
            ),
            metadata=operator_token(),
        )
        assert [a.kind for a in rest.activations] == [resources_pb2.ACTIVATION_KIND_BOOTSTRAP]
        assert not rest.next_page_token

        code, info, _ = await refused(
            first.stub.RollbackRuleSet(
                service_pb2.RollbackRuleSetRequest(
                    program=PROGRAM, rule_set="ruleSets/never-active", reason="x"
                ),
                metadata=operator_token(),
            )
        )
        assert (code, info["reason"]) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "ACTIVATION_CONFLICT",
        )


async def test_a_batch_is_decided_by_one_version_across_an_activation(
    fresh_database: FreshDatabase,
) -> None:
    url = await migrated(fresh_database)
    clock = Clock(utc_now())
    async with replica(url, clock) as running:
        await publish(running.stub, without_district_rule("digital-wallet-2025.3"))
        effective = clock.now + timedelta(seconds=5)
        await running.stub.ActivateRuleSet(
            service_pb2.ActivateRuleSetRequest(
                name="ruleSets/digital-wallet-2025.3",
                effective_time=to_timestamp(effective),
                reason="switch",
            ),
            metadata=operator_token(),
        )
        request = service_pb2.EvaluateRequest(scope=ROUND1, facts=OTHER_DISTRICT)
        clock.now = effective - timedelta(microseconds=1)
        before = await running.stub.EvaluateBatch(
            service_pb2.EvaluateBatchRequest(requests=[request] * 50)
        )
        clock.now = effective
        after = await running.stub.EvaluateBatch(
            service_pb2.EvaluateBatchRequest(requests=[request] * 50)
        )
    assert {d.rule_set_version for d in before.decisions} == {DEFAULT_VERSION}
    assert {d.rule_set_version for d in after.decisions} == {"digital-wallet-2025.3"}


async def test_get_and_list_rule_sets(world) -> None:
    running, _, _ = world
    for version in ("list-a", "list-b", "list-c"):
        await publish(running.stub, without_district_rule(version))
    token = operator_token(role=Role.AUDITOR)
    seen: list[str] = []
    page_token = ""
    while True:
        page = await running.stub.ListRuleSets(
            service_pb2.ListRuleSetsRequest(program=PROGRAM, page_size=2, page_token=page_token),
            metadata=token,
        )
        seen.extend(r.version for r in page.rule_sets)
        assert all(not r.document for r in page.rule_sets)
        page_token = page.next_page_token
        if not page_token:
            break
    assert seen[:3] == ["list-c", "list-b", "list-a"]
    assert DEFAULT_VERSION in seen
    got = await running.stub.GetRuleSet(
        service_pb2.GetRuleSetRequest(name=f"ruleSets/{DEFAULT_VERSION}"), metadata=token
    )
    assert got.rule_set.active
    assert got.rule_set.document == DEFAULT
    code, info, _ = await refused(
        running.stub.GetRuleSet(service_pb2.GetRuleSetRequest(name="ruleSets/nope"), metadata=token)
    )
    assert (code, info["reason"]) == (grpc.StatusCode.NOT_FOUND, "RULE_SET_NOT_FOUND")
    code, info, _ = await refused(
        running.stub.ListRuleSets(
            service_pb2.ListRuleSetsRequest(page_token="garbage"), metadata=token
        )
    )
    assert (code, info["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    # A program with no rule set is an empty page, not a failure.
    empty = await running.stub.ListRuleSets(
        service_pb2.ListRuleSetsRequest(program="programs/none-yet"), metadata=token
    )
    assert list(empty.rule_sets) == []
    assert empty.next_page_token == ""


async def test_concurrent_activations_under_one_request_id_make_one(
    fresh_database: FreshDatabase,
) -> None:
    url = await migrated(fresh_database)
    clock = Clock(utc_now())
    async with replica(url, clock) as first, replica(url, clock) as second:
        await publish(first.stub, without_district_rule("digital-wallet-2025.3"))
        request = service_pb2.ActivateRuleSetRequest(
            name="ruleSets/digital-wallet-2025.3",
            effective_time=to_timestamp(clock.now + timedelta(seconds=30)),
            reason="raced",
            request_id="raced-activation",
        )
        replies = await asyncio.gather(
            *(
                stub.ActivateRuleSet(request, metadata=operator_token())
                for stub in (first.stub, second.stub) * 4
            )
        )
        assert len({reply.activation.name for reply in replies}) == 1
        history = await first.stub.ListActivations(
            service_pb2.ListActivationsRequest(program=PROGRAM),
            metadata=operator_token(),
        )
        assert [a.reason for a in history.activations].count("raced") == 1


def _token(position: object) -> str:
    """``position`` as the service encodes one; bytes are taken as the JSON text itself."""
    text = position if isinstance(position, bytes) else json.dumps(position).encode()
    return base64.urlsafe_b64encode(text).decode()


@pytest.mark.parametrize(
    ("method", "position"),
    [
        ("ListRuleSets", {"c": "2025-01-01T00:00:00+00:00"}),  # no "v"
        ("ListRuleSets", {"a": 5}),  # a ListActivations token
        ("ListRuleSets", {"zzz": 1}),
        ("ListRuleSets", {"c": "2025-01-01T00:00:00", "v": "x"}),  # no offset
        ("ListRuleSets", {"c": "2025-01-01T00:00:00+00:00", "v": 7}),
        ("ListRuleSets", [1, 2]),
        ("ListRuleSets", {"c": "0001-01-01T00:00:00+07:00", "v": "x"}),  # before year 1 in UTC
        ("ListRuleSets", {"c": "2025-01-01T00:00:00+00:00", "v": "a\u0000"}),  # not a version
        ("ListRuleSets", b"[" * 100_000),  # JSON nested past the recursion limit
        ("ListActivations", {"c": "2025-01-01T00:00:00+00:00", "v": "x"}),  # a ListRuleSets one
        ("ListActivations", {"a": 10**30}),  # beyond bigint
        ("ListActivations", {"a": -1}),
        ("ListActivations", {"a": "5"}),
        ("ListActivations", {"a": True}),
        ("ListActivations", {"a": 5, "zzz": 1}),
        ("ListActivations", {"zzz": 1}),
    ],
)
async def test_a_page_token_this_service_did_not_give_is_refused(
    world, method: str, position: object
) -> None:
    running, _, _ = world
    token = operator_token(role=Role.AUDITOR)
    if method == "ListRuleSets":
        call = running.stub.ListRuleSets(
            service_pb2.ListRuleSetsRequest(page_token=_token(position)), metadata=token
        )
    else:
        call = running.stub.ListActivations(
            service_pb2.ListActivationsRequest(program=PROGRAM, page_token=_token(position)),
            metadata=token,
        )
    code, info, _ = await refused(call)
    assert (code, info["reason"], info["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "page_token",
    )


async def test_list_activations_pages_through_the_history(world) -> None:
    running, clock, _ = world
    await publish(running.stub, without_district_rule("page-1"))
    for n in range(3):
        await running.stub.ActivateRuleSet(
            service_pb2.ActivateRuleSetRequest(
                name="ruleSets/page-1",
                effective_time=to_timestamp(clock.now + timedelta(minutes=10 + n)),
                reason=f"page {n}",
            ),
            metadata=operator_token(),
        )
    names: list[str] = []
    reasons: list[str] = []
    page_token = ""
    while True:
        page = await running.stub.ListActivations(
            service_pb2.ListActivationsRequest(program=PROGRAM, page_size=2, page_token=page_token),
            metadata=operator_token(role=Role.AUDITOR),
        )
        assert len(page.activations) <= 2
        names.extend(a.name for a in page.activations)
        reasons.extend(a.reason for a in page.activations)
        page_token = page.next_page_token
        if not page_token:
            break
    assert reasons[:3] == ["page 2", "page 1", "page 0"]
    assert reasons[-1] == "default rule set activated on first start"
    assert len(names) == len(set(names))


def _activation(activation_id: int, version: str, effective_at: datetime) -> Activation:
    return Activation(
        activation_id, "digital-wallet", version, effective_at, effective_at, "operator:alice",
        "test", ActivationKind.ACTIVATE, None,
    )  # fmt: skip


def test_rollback_goes_back_to_a_version_that_decided() -> None:
    """B and C take effect at the same time; C, the later activation, wins: B never
    decided. Rolling back from C restores A, and B cannot be named as a target."""
    start = datetime(2025, 6, 1, tzinfo=UTC)
    history = [
        _activation(1, "v-a", start),
        _activation(2, "v-b", start + timedelta(hours=1)),
        _activation(3, "v-c", start + timedelta(hours=1)),
    ]
    now = start + timedelta(hours=2)
    assert _rollback_target(history, now, None) == "v-a"
    assert _rollback_target(history, now, "v-a") == "v-a"
    with pytest.raises(DomainError) as caught:
        _rollback_target(history, now, "v-b")
    assert (caught.value.code, caught.value.reason, caught.value.metadata) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ACTIVATION_CONFLICT",
        {"field": "rule_set"},
    )
    # An activation taking effect later has not decided yet either.
    scheduled = [*history, _activation(4, "v-d", now + timedelta(hours=1))]
    assert _rollback_target(scheduled, now, None) == "v-a"
    with pytest.raises(DomainError):
        _rollback_target(scheduled, now, "v-d")
