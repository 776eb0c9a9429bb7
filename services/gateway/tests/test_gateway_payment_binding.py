"""Dynamic linking through the gateway's payment flow and a real identity service (its own
gRPC server and PostgreSQL database): a bank's token for 50 baht to shop A cannot pay
5,000 baht to shop B. Identity's refusal reaches the bank as identity gave it, and the
gateway stores nothing; the rules, the ledger and settlement are in-memory doubles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio

from openloop.gateway.v1 import service_pb2
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.rules.v1 import resources_pb2 as rules_resources
from openloop_gateway.app import MIGRATIONS_DIR as GATEWAY_MIGRATIONS
from openloop_gateway.payments import PaymentFlow
from openloop_gateway.store import PaymentState, PaymentStore
from openloop_gateway.upstreams import Upstreams
from openloop_identity.app import MIGRATIONS_DIR as IDENTITY_MIGRATIONS
from openloop_identity.assertions import DevIssuer
from openloop_runtime import migrations
from openloop_runtime.db import create_engine
from openloop_runtime.errors import DomainError
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    authorise,
    create_participant,
    enroll_request,
    merchant_request,
    new_citizen_number,
    new_key,
    register_payment_key,
    serving_identity,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
OK = ledger_resources.CreateTransferResult.CREATE_TRANSFER_RESULT_OK


class RealIdentityUpstreams(Upstreams):
    """The gateway's upstream calls with identity's real (over gRPC, as in the mesh); the
    rules allow everything and the ledger and settlement record what they are asked."""

    def __init__(self, identity: grpc.aio.Channel) -> None:
        super().__init__(identity, identity, identity, identity, timeout=5.0)
        self.transfers: dict[str, int] = {}

    async def evaluate(
        self, scope: rules_resources.Scope.ValueType, facts: rules_resources.PaymentFacts
    ) -> rules_resources.Decision:
        return rules_resources.Decision(
            outcome=rules_resources.Outcome.OUTCOME_ALLOW, rule_set_version="test-1"
        )

    async def create_transfer(
        self, transfer: ledger_resources.Transfer
    ) -> ledger_resources.CreateTransferResult.ValueType:
        self.transfers[transfer.id] = transfer.amount
        return OK

    async def record_transfer(
        self, transfer_id: str, debit_participant: str, credit_participant: str, satang: int
    ) -> None:
        return None


@dataclass
class Shops:
    bank: str
    signer: DevIssuer
    citizen_id: str
    citizen: str
    shop_a: str
    shop_b: str


@dataclass
class Gateway:
    flow: PaymentFlow
    store: PaymentStore
    upstreams: RealIdentityUpstreams
    shops: Shops


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(fresh_database: Callable[[str], Awaitable[str]]) -> AsyncIterator[Gateway]:
    identity_url = await fresh_database("identity")
    gateway_url = await fresh_database("gateway")
    await asyncio.to_thread(migrations.upgrade, IDENTITY_MIGRATIONS, identity_url)
    await asyncio.to_thread(migrations.upgrade, GATEWAY_MIGRATIONS, gateway_url)
    engine = create_engine(gateway_url, pool_size=5)
    async with (
        serving_identity(identity_url) as identity,
        grpc.aio.insecure_channel(identity.target) as channel,
    ):
        bank = await create_participant(identity)
        acquirer = await create_participant(identity)
        signer = await register_payment_key(identity, bank)
        number = new_citizen_number()
        citizen = (await identity.stub.EnrollCitizen(enroll_request(bank, number))).citizen.name
        shop_a, shop_b = [
            (await identity.stub.CreateMerchant(merchant_request(acquirer))).merchant.name
            for _ in range(2)
        ]
        store = PaymentStore(engine)
        upstreams = RealIdentityUpstreams(channel)
        yield Gateway(
            PaymentFlow(store, upstreams),
            store,
            upstreams,
            Shops(bank, signer, number, citizen, shop_a, shop_b),
        )
    await engine.dispose()


def _pay(shops: Shops, payee: str, satang: int, token: str) -> service_pb2.PayRequest:
    return service_pb2.PayRequest(
        idempotency_key=new_key(),
        payer=shops.citizen,
        payee=payee,
        amount=thb(satang),
        payer_authorization=token,
    )


async def test_a_token_bound_to_shop_a_cannot_pay_shop_b(gateway: Gateway) -> None:
    shops = gateway.shops
    token = authorise(shops.signer, shops.citizen_id, shops.shop_a, 50_00)
    for payee, satang, claim in (
        (shops.shop_b, 5_000_00, "payee"),
        (shops.shop_b, 50_00, "payee"),
        (shops.shop_a, 5_000_00, "amount"),
    ):
        request = _pay(shops, payee, satang, token)
        with pytest.raises(DomainError) as caught:
            await gateway.flow.pay(shops.bank, request)
        refused = caught.value
        # Identity's answer, passed on as it is: the bank's mistake, never INTERNAL.
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED, refused.message
        assert refused.reason == "INVALID_IDENTITY_ASSERTION"
        assert refused.domain == "identity.openloop.dev"
        assert refused.metadata["assertion_reason"] == "ASSERTION_PAYMENT_MISMATCH"
        assert refused.metadata["claim"] == claim
        assert "payment" not in refused.metadata
        # Nothing stored, nothing moved.
        assert await gateway.store.find_by_key(shops.bank, request.idempotency_key) is None
    assert gateway.upstreams.transfers == {}

    # The token was not spent by the refusals: the payment it names goes through.
    paid = await gateway.flow.pay(shops.bank, _pay(shops, shops.shop_a, 50_00, token))
    assert paid.state is PaymentState.COMPLETED
    assert paid.payee == shops.shop_a
    assert gateway.upstreams.transfers == {paid.ledger_transfer_id: 50_00}
