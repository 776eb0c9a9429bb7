"""Tracing across the mesh, an upstream outage, and personal data kept out of logs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from openloop.gateway.v1 import resources_pb2, service_pb2
from openloop_dev.seed import DEMO_ADDRESS, DEMO_BIRTH_DATE, DEMO_CITIZEN_ID, DEMO_FULL_NAME
from openloop_dev.traces import spans_of
from openloop_gateway.config import GatewaySettings
from openloop_gateway.payments import PaymentFlow
from openloop_gateway.reconciler import reconcile_once
from openloop_gateway.store import PaymentStore
from openloop_gateway.upstreams import connect_upstreams
from openloop_runtime.db import create_engine
from tests.e2e.journeys import balance, metadata_of, pay_request, position, reason_of

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

SERVICES = {"gateway", "identity", "rules", "ledger", "settlement"}


async def test_one_trace_holds_spans_of_every_service_for_one_payment(platform):
    p = platform.program
    reply = await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 2_00))
    trace_id = reply.payment.trace_id

    services: set[str] = set()
    for _ in range(50):  # span processors flush every 200 ms
        services = {s.service for s in spans_of(platform.mesh.layout.trace_dir, trace_id)}
        if services >= SERVICES:
            break
        await asyncio.sleep(0.2)
    assert services >= SERVICES


async def test_ledger_outage_fails_unavailable_and_leaves_no_half_made_payment(platform):
    p = platform.program
    citizen_before = await balance(platform.bank_a, p.citizen)
    shop_before = await balance(platform.bank_b, p.small_shop)
    bank_a_before = await position(platform.settlement, "bank-a")
    request = pay_request(p.citizen, p.small_shop, 4_00)

    with platform.mesh.service_stopped("ledger"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await platform.bank_a.Pay(request)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason_of(caught.value) == "UPSTREAM_UNAVAILABLE"
        payment_name = metadata_of(caught.value)["payment"]
        pending = await platform.bank_a.GetPayment(service_pb2.GetPaymentRequest(name=payment_name))
        assert pending.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_PENDING
        assert await position(platform.settlement, "bank-a") == bank_a_before

    assert await balance(platform.bank_a, p.citizen) == citizen_before
    assert await balance(platform.bank_b, p.small_shop) == shop_before

    retried = await platform.bank_a.Pay(request)
    assert retried.payment.name == payment_name
    assert retried.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    assert await balance(platform.bank_a, p.citizen) == citizen_before - 4_00
    assert await balance(platform.bank_b, p.small_shop) == shop_before + 4_00
    assert await position(platform.settlement, "bank-a") == bank_a_before - 4_00


async def test_personal_data_never_reaches_logs_or_traces(platform):
    """The demo citizen was enrolled (ID, name, birth date, address) and now pays: none of it
    may appear in any service's log or span file."""
    p = platform.program
    await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 1_00))
    await asyncio.sleep(0.5)
    layout = platform.mesh.layout
    files = [*layout.log_dir.glob("*"), *layout.trace_dir.glob("*")]
    texts = {path: path.read_text(errors="replace") for path in files}
    # The files are the real ones: identity logged the enrolment and traced the payment.
    assert any("citizen enrolled" in text for text in texts.values())
    assert any("VerifyPaymentParties" in text for text in texts.values())
    for path, text in texts.items():
        for secret in (DEMO_CITIZEN_ID, DEMO_FULL_NAME, DEMO_BIRTH_DATE, DEMO_ADDRESS):
            assert secret not in text, (path, secret)


async def test_reconciler_finishes_a_payment_stranded_between_ledger_and_settlement(platform):
    """The gateway crashed or settlement was down after the ledger moved the money:
    the reconciler (the gateway's own code) completes the payment, once."""
    p = platform.program
    layout = platform.mesh.layout
    bank_b_before = await position(platform.settlement, "bank-b")
    shop_before = await balance(platform.bank_b, p.small_shop)

    with platform.mesh.service_stopped("settlement"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 6_00))
        assert reason_of(caught.value) == "UPSTREAM_UNAVAILABLE"
        payment_name = metadata_of(caught.value)["payment"]
    assert await balance(platform.bank_b, p.small_shop) == shop_before + 6_00
    assert await position(platform.settlement, "bank-b") == bank_b_before

    settings = GatewaySettings(
        database_url=layout.database_urls["gateway"],
        identity_target=layout.target("identity"),
        rules_target=layout.target("rules"),
        ledger_target=layout.target("ledger"),
        settlement_target=layout.target("settlement"),
    )
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with connect_upstreams(settings) as upstreams:
            store = PaymentStore(engine)
            flow = PaymentFlow(store, upstreams)
            assert await reconcile_once(store, flow, older_than=timedelta(0)) >= 1
            assert await reconcile_once(store, flow, older_than=timedelta(0)) == 0
    finally:
        await engine.dispose()

    done = await platform.bank_a.GetPayment(service_pb2.GetPaymentRequest(name=payment_name))
    assert done.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    assert await position(platform.settlement, "bank-b") == bank_b_before + 6_00
    assert await balance(platform.bank_b, p.small_shop) == shop_before + 6_00
