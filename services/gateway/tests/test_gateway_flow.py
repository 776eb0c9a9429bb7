"""The payment flow against a real PostgreSQL store, with the four upstream services
replaced by an in-memory double whose failures each test chooses."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from typing import cast

import grpc
import pytest
import pytest_asyncio

from openloop.common.v1 import party_pb2
from openloop.gateway.v1 import service_pb2
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.rules.v1 import resources_pb2 as rules_resources
from openloop_gateway.app import MIGRATIONS_DIR
from openloop_gateway.payments import PaymentFlow
from openloop_gateway.reconciler import reconcile_once
from openloop_gateway.store import PaymentState, PaymentStore
from openloop_gateway.upstreams import PaymentParties, Upstreams
from openloop_runtime import migrations
from openloop_runtime.db import create_engine
from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.money import thb

pytestmark = pytest.mark.asyncio(loop_scope="session")
Result = ledger_resources.CreateTransferResult

CITIZEN, SHOP = "citizens/c1", "merchants/m1"


def _unavailable(upstream: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.UNAVAILABLE,
        ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        f"{upstream} down",
        {"upstream": upstream},
    )


class FakeUpstreams:
    """Idempotent like the real ledger and settlement; failures are switched per test."""

    def __init__(self) -> None:
        self.ledger: dict[str, int] = {}
        self.settled: dict[str, int] = {}
        self.ledger_result: int | None = None
        self.ledger_down = False
        self.settlement_error: DomainError | None = None
        self.violations: list[rules_resources.Violation] = []
        self.facts: list[rules_resources.PaymentFacts] = []
        self.bindings: list[str] = []
        self.amounts: list[object] = []
        self.rules_down = False

    async def verify_parties(
        self, participant, payer, payee, authorization="", binding="", *, amount=None
    ):
        self.bindings.append(binding)
        self.amounts.append(amount)
        return PaymentParties(
            party_pb2.PartyFacts(party=payer, hosting_participant=participant),
            party_pb2.PartyFacts(
                party=payee, hosting_participant="participants/bank-b", sells_in_person=True
            ),
            payer.replace("/", ":"),
            payee.replace("/", ":"),
        )

    async def evaluate(self, scope, facts):
        if self.rules_down:
            raise _unavailable("rules")
        self.facts.append(facts)
        outcome = (
            rules_resources.Outcome.OUTCOME_DENY
            if self.violations
            else (rules_resources.Outcome.OUTCOME_ALLOW)
        )
        return rules_resources.Decision(
            outcome=outcome, violations=self.violations, rule_set_version="test-1"
        )

    async def create_transfer(self, transfer):
        if self.ledger_down:
            raise _unavailable("ledger")
        if self.ledger_result is not None:
            return self.ledger_result
        if transfer.id in self.ledger:
            return Result.CREATE_TRANSFER_RESULT_EXISTS
        self.ledger[transfer.id] = transfer.amount
        return Result.CREATE_TRANSFER_RESULT_OK

    async def record_transfer(self, transfer_id, debit_participant, credit_participant, satang):
        if self.settlement_error is not None:
            raise self.settlement_error
        self.settled.setdefault(transfer_id, satang)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def store(fresh_database):
    url = await fresh_database("gateway")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    engine = create_engine(url, pool_size=5)
    yield PaymentStore(engine)
    await engine.dispose()


@pytest.fixture
def upstreams():
    return FakeUpstreams()


@pytest.fixture
def flow(store, upstreams):
    return PaymentFlow(store, cast(Upstreams, upstreams))


_keys = iter(range(1_000_000))


def _request(satang: int = 500) -> service_pb2.PayRequest:
    return service_pb2.PayRequest(
        idempotency_key=f"k-{next(_keys)}", payer=CITIZEN, payee=SHOP, amount=thb(satang)
    )


async def test_a_payment_completes_and_a_replay_moves_nothing_more(flow, upstreams):
    request = _request()
    first = await flow.pay("bank-a", request)
    again = await flow.pay("bank-a", request)
    assert first.state is PaymentState.COMPLETED
    assert again == first
    assert upstreams.ledger == {first.ledger_transfer_id: 500}
    assert upstreams.settled == {first.ledger_transfer_id: 500}


async def test_concurrent_requests_under_one_key_store_one_payment(flow, upstreams):
    request = _request()
    records = await asyncio.gather(*(flow.pay("bank-a", request) for _ in range(10)))
    assert len({r.payment_id for r in records}) == 1
    assert len(upstreams.ledger) == 1


async def test_the_same_key_from_another_bank_is_another_payment(flow):
    request = _request()
    a = await flow.pay("bank-a", request)
    b = await flow.pay("bank-c", request)
    assert a.payment_id != b.payment_id


async def test_settlement_outage_leaves_the_payment_pending_until_reconciled(
    flow, store, upstreams
):
    upstreams.settlement_error = _unavailable("settlement")
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", _request())
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    payment_id = caught.value.metadata["payment"].removeprefix("payments/")
    assert (await store.get(payment_id)).state is PaymentState.PENDING

    assert await reconcile_once(store, flow, older_than=timedelta(0)) == 0  # still down
    upstreams.settlement_error = None
    assert await reconcile_once(store, flow, older_than=timedelta(0)) >= 1
    done = await store.get(payment_id)
    assert done.state is PaymentState.COMPLETED
    assert upstreams.ledger[done.ledger_transfer_id] == 500
    assert upstreams.settled[done.ledger_transfer_id] == 500


async def test_settlement_refusing_moved_money_is_our_defect_and_stays_pending(
    flow, store, upstreams
):
    upstreams.settlement_error = DomainError.from_wire(
        grpc.StatusCode.ALREADY_EXISTS, "TRANSFER_ID_CONFLICT", "conflict"
    )
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", _request())
    assert caught.value.code == grpc.StatusCode.INTERNAL
    assert "trace_id" in caught.value.metadata
    payment_id = caught.value.metadata["payment"].removeprefix("payments/")
    assert (await store.get(payment_id)).state is PaymentState.PENDING


async def test_a_transfer_id_applied_with_other_fields_is_never_marked_failed(
    flow, store, upstreams
):
    upstreams.ledger_result = Result.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", _request())
    assert caught.value.code == grpc.StatusCode.INTERNAL
    payment_id = caught.value.metadata["payment"].removeprefix("payments/")
    assert (await store.get(payment_id)).state is PaymentState.PENDING


async def test_insufficient_funds_is_final_and_replays_the_same_error(flow, store, upstreams):
    upstreams.ledger_result = Result.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
    request = _request()
    request.payer = f"citizens/short-{next(_keys)}"
    errors = []
    for _ in range(2):
        with pytest.raises(DomainError) as caught:
            await flow.pay("bank-a", request)
        errors.append(caught.value)
    assert [e.reason for e in errors] == ["INSUFFICIENT_FUNDS"] * 2
    assert errors[0].metadata == errors[1].metadata
    payment_id = errors[0].metadata["payment"].removeprefix("payments/")
    assert (await store.get(payment_id)).state is PaymentState.FAILED
    assert await store.first_use(request.payer) is None  # a failed payment is not a use


async def test_a_denial_without_a_rule_id_still_reads_cleanly(flow, upstreams):
    upstreams.violations = [
        rules_resources.Violation(reason_code="MISSING_FACT", explanation_en="payer.district")
    ]
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", _request())
    assert caught.value.reason == "RULE_VIOLATION"
    assert caught.value.message == "payer.district"
    assert not upstreams.ledger


async def test_a_request_without_an_amount_names_the_field(flow):
    request = _request()
    request.ClearField("amount")
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", request)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.metadata["field"] == "amount"


async def test_ledger_outage_moves_nothing_and_a_replay_completes_once(flow, store, upstreams):
    upstreams.ledger_down = True
    request = _request()
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", request)
    assert caught.value.reason == "UPSTREAM_UNAVAILABLE"
    assert not upstreams.ledger
    assert not upstreams.settled
    upstreams.ledger_down = False
    done = await flow.pay("bank-a", request)
    assert done.state is PaymentState.COMPLETED
    assert list(upstreams.ledger.values()) == [500]


async def test_identity_is_told_which_request_it_spends_an_authorisation_for(flow, upstreams):
    """Identity spends the payer's authorisation before the payment is stored: a request
    retried after the rules failed is bound as the same request, so identity verifies its
    authorisation again; another key, request or bank is another request."""
    upstreams.rules_down = True
    request = _request()
    with pytest.raises(DomainError) as caught:
        await flow.pay("bank-a", request)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    upstreams.rules_down = False
    done = await flow.pay("bank-a", request)
    assert done.state is PaymentState.COMPLETED
    first, retried = upstreams.bindings
    assert first == retried
    assert len(first) == 64  # a SHA-256 digest: nothing of the request in clear
    other_key = _request()
    other_amount = service_pb2.PayRequest()
    other_amount.CopyFrom(request)
    other_amount.amount.amount_satang += 1
    await flow.pay("bank-a", other_key)
    await flow.pay("bank-b", request)
    with pytest.raises(DomainError):  # the key was used for another payment
        await flow.pay("bank-a", other_amount)
    assert len(set(upstreams.bindings)) == 3


async def test_identity_is_told_the_amount_the_authorisation_must_name(flow, upstreams):
    await flow.pay("bank-a", _request(7_25))
    assert upstreams.amounts == [thb(7_25)]


async def test_a_payment_made_first_starts_the_deadline_though_it_completes_last(
    flow, store, upstreams
):
    payer = f"citizens/first-{next(_keys)}"
    made_first, made_next = _request(), _request()
    made_first.payer = made_next.payer = payer
    upstreams.ledger_down = True  # the first payment is made, then waits out an outage
    with pytest.raises(DomainError):
        await flow.pay("bank-a", made_first)
    upstreams.ledger_down = False
    second = await flow.pay("bank-a", made_next)
    assert await store.first_use(payer) == second.create_time
    first = await flow.pay("bank-a", made_first)  # completes last
    assert first.create_time < second.create_time
    assert await store.first_use(payer) == first.create_time
    third = _request()
    third.payer = payer
    await flow.pay("bank-a", third)  # a later payment moves nothing
    assert await store.first_use(payer) == first.create_time


async def test_the_first_completed_payment_starts_the_spending_deadline(flow, store, upstreams):
    payer = f"citizens/first-{next(_keys)}"
    first = _request()
    first.payer = payer
    upstreams.violations = [rules_resources.Violation(rule_id="R1", reason_code="X")]
    with pytest.raises(DomainError):
        await flow.pay("bank-a", first)  # rejected: not a use
    upstreams.violations = []
    first.idempotency_key += "-again"
    done = await flow.pay("bank-a", first)
    second = _request()
    second.payer = payer
    await flow.pay("bank-a", second)

    sent = [f for f in upstreams.facts if f.payer.party == payer]
    assert [f.HasField("payer_first_use_time") for f in sent] == [False, False, True]
    # When the first payment was made, not when it completed (an outage can part them).
    assert done.create_time < done.update_time
    assert sent[2].payer_first_use_time.ToDatetime(tzinfo=UTC) == done.create_time
    assert await store.first_use(payer) == done.create_time
