"""An official changes the program's rules on the running mesh, without a restart: publishes
a new version, schedules it, sees payments decided by it from its activation time, and rolls
back, with every step in the audit trail."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from openloop.gateway.v1 import resources_pb2
from openloop.rules.v1 import service_pb2 as rules_pb2
from openloop.rules.v1 import service_pb2_grpc as rules_grpc
from openloop_dev.operators import operator_token
from openloop_rules.shipped import shipped_rule_set
from tests.e2e.journeys import metadata_of, new_key, pay_request, reason_of

BASE = "digital-wallet-2025.2"
DRAFT = "digital-wallet-2025.2-e2e"


def _without_small_shop_rule(document: str) -> str:
    """The shipped rule set as a new version without R3 (small shops only)."""
    text = document.replace(f'version: "{BASE}"', f'version: "{DRAFT}"', 1)
    start = text.index("  - id: R3\n")
    end = text.index("  - id: ", start + 1)
    return text[:start] + text[end:]


async def _pay_large_chain(platform) -> tuple[str, str]:
    """(state, rule-set version) of a payment to the demo's large chain, which R3 denies."""
    request = pay_request(platform.program.citizen, platform.program.large_chain, 1_00)
    try:
        payment = (await platform.bank_a.Pay(request)).payment
    except grpc.aio.AioRpcError as refused:
        metadata = metadata_of(refused)
        assert metadata["rule_id"] == "R3"
        return "REJECTED", metadata["rule_set_version"]
    return resources_pb2.PaymentState.Name(payment.state), payment.rule_set_version


async def _until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.3)


async def test_a_new_version_decides_from_its_activation_time_and_rolls_back(platform):
    token = operator_token(platform.workdir, subject="e2e-official")
    auth = [("authorization", f"Bearer {token}")]
    async with grpc.aio.insecure_channel(platform.mesh.layout.target("rules")) as channel:
        rules = rules_grpc.RulesServiceStub(channel)
        published = await rules.PublishRuleSet(
            rules_pb2.PublishRuleSetRequest(
                document=_without_small_shop_rule(shipped_rule_set(BASE).document),
                reason="e2e: what if large chains were allowed",
            ),
            metadata=auth,
        )
        assert published.rule_set.name == f"ruleSets/{DRAFT}"

        # The mesh's margin is 2 s: 3 s more for the activation to arrive in time and for
        # the payment before it to be decided, on a slow machine too.
        effective = datetime.now(UTC) + timedelta(seconds=5)
        stamp = Timestamp()
        stamp.FromDatetime(effective)
        await rules.ActivateRuleSet(
            rules_pb2.ActivateRuleSetRequest(
                name=f"ruleSets/{DRAFT}",
                effective_time=stamp,
                reason="e2e activation",
                request_id=new_key(),
            ),
            metadata=auth,
        )
        assert await _pay_large_chain(platform) == ("REJECTED", BASE)  # not yet in effect
        await _until(effective)
        assert await _pay_large_chain(platform) == ("PAYMENT_STATE_COMPLETED", DRAFT)

        rolled = await rules.RollbackRuleSet(
            rules_pb2.RollbackRuleSetRequest(
                program="programs/digital-wallet", reason="e2e rollback", request_id=new_key()
            ),
            metadata=auth,
        )
        assert rolled.activation.rule_set == f"ruleSets/{BASE}"
        await _until(rolled.activation.effective_time.ToDatetime(tzinfo=UTC))
        assert await _pay_large_chain(platform) == ("REJECTED", BASE)

        history = (
            await rules.ListActivations(
                rules_pb2.ListActivationsRequest(program="programs/digital-wallet"),
                metadata=auth,
            )
        ).activations
        mine = [a for a in history if a.actor == "operator:e2e-official"]
        assert [a.rule_set for a in mine] == [f"ruleSets/{BASE}", f"ruleSets/{DRAFT}"]
        assert [a.reason for a in mine] == ["e2e rollback", "e2e activation"]


async def test_only_an_operator_changes_the_rules(platform):
    async with grpc.aio.insecure_channel(platform.mesh.layout.target("rules")) as channel:
        rules = rules_grpc.RulesServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rules.PublishRuleSet(
                rules_pb2.PublishRuleSetRequest(document="version: x", reason="no token")
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason_of(refused.value) == "OPERATOR_NOT_AUTHENTICATED"
