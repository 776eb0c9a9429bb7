"""A bank pays through Envoy: money moves exactly once, rules deny clearly, bad input
gets the right status with an ErrorInfo reason."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from openloop.gateway.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop_gateway.accounts import TREASURY_FUNDING_ACCOUNT, wallet_account_id
from tests.e2e.journeys import balance, metadata_of, new_key, pay_request, position, reason_of

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_payment_moves_the_exact_amount_and_both_positions(platform):
    p = platform.program
    citizen_before = await balance(platform.bank_a, p.citizen)
    shop_before = await balance(platform.bank_b, p.small_shop)
    bank_a_before = await position(platform.settlement, "bank-a")
    bank_b_before = await position(platform.settlement, "bank-b")

    reply = await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 123_45))

    payment = reply.payment
    assert payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    assert payment.amount.amount_satang == 123_45
    assert payment.payer_participant == "participants/bank-a"
    assert payment.payee_participant == "participants/bank-b"
    assert len(payment.trace_id) == 32
    assert await balance(platform.bank_a, p.citizen) == citizen_before - 123_45
    assert await balance(platform.bank_b, p.small_shop) == shop_before + 123_45
    assert await position(platform.settlement, "bank-a") == bank_a_before - 123_45
    assert await position(platform.settlement, "bank-b") == bank_b_before + 123_45

    fetched = await platform.bank_a.GetPayment(service_pb2.GetPaymentRequest(name=payment.name))
    assert fetched.payment == payment


async def test_other_district_is_denied_by_the_district_rule_and_moves_nothing(platform):
    p = platform.program
    citizen_before = await balance(platform.bank_a, p.citizen)
    far_before = await balance(platform.bank_b, p.far_shop)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(p.citizen, p.far_shop, 50_00))

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(caught.value) == "RULE_VIOLATION"
    metadata = metadata_of(caught.value)
    assert metadata["rule_id"] == "R1"
    assert metadata["rule_reason"] == "DISTRICT_MISMATCH"
    assert await balance(platform.bank_a, p.citizen) == citizen_before
    assert await balance(platform.bank_b, p.far_shop) == far_before
    stored = await platform.bank_a.GetPayment(
        service_pb2.GetPaymentRequest(name=metadata["payment"])
    )
    assert stored.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_REJECTED
    assert stored.payment.failure.rule_id == "R1"


async def test_large_chain_is_denied_by_the_small_shop_rule(platform):
    p = platform.program
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(p.citizen, p.large_chain, 10_00))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert metadata_of(caught.value)["rule_id"] == "R3"


async def test_an_online_only_shop_is_denied_by_the_face_to_face_rule(platform):
    """R2: round-1 money is spent face to face, by the shop's QR; a shop that sells online
    only cannot take it, although it is small and in the citizen's district."""
    p = platform.program
    before = await balance(platform.bank_a, p.citizen)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(p.citizen, p.online_shop, 10_00))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(caught.value) == "RULE_VIOLATION"
    assert metadata_of(caught.value)["rule_id"] == "R2"
    assert await balance(platform.bank_a, p.citizen) == before


async def test_replaying_a_key_returns_the_same_payment_and_moves_money_once(platform):
    p = platform.program
    citizen_before = await balance(platform.bank_a, p.citizen)
    request = pay_request(p.citizen, p.small_shop, 7_00)

    first = await platform.bank_a.Pay(request)
    again = await platform.bank_a.Pay(request)
    racing = await asyncio.gather(*(platform.bank_a.Pay(request) for _ in range(8)))

    assert again.payment == first.payment
    assert {r.payment.name for r in racing} == {first.payment.name}
    assert await balance(platform.bank_a, p.citizen) == citizen_before - 7_00


async def test_concurrent_first_requests_under_one_key_make_one_payment(platform):
    p = platform.program
    citizen_before = await balance(platform.bank_a, p.citizen)
    request = pay_request(p.citizen, p.small_shop, 3_00)

    replies = await asyncio.gather(*(platform.bank_a.Pay(request) for _ in range(10)))

    assert len({r.payment.name for r in replies}) == 1
    assert await balance(platform.bank_a, p.citizen) == citizen_before - 3_00


async def test_reusing_a_key_for_another_payment_is_refused(platform):
    p = platform.program
    key = new_key()
    await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 1_00, key))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 2_00, key))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("satang", [0, -100])
async def test_an_amount_that_is_not_positive_is_invalid(platform, satang):
    p = platform.program
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, satang))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "INVALID_AMOUNT"
    assert metadata_of(caught.value)["field"] == "amount.amount_satang"


async def test_another_currency_is_invalid(platform):
    p = platform.program
    request = pay_request(p.citizen, p.small_shop, 1_00)
    request.amount.currency_code = "USD"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "CURRENCY_NOT_SUPPORTED"


async def test_an_unknown_merchant_is_not_found(platform):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(
            pay_request(platform.program.citizen, "merchants/m00000000000000000000", 1_00)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(caught.value) == "MERCHANT_NOT_FOUND"


async def test_a_malformed_payee_is_invalid(platform):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(platform.program.citizen, "shop-42", 1_00))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert metadata_of(caught.value)["field"] == "payee"


NO_SUCH_CITIZEN = "citizens/c00000000000000000000"


async def _refusal(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), reason_of(caught.value)


async def test_a_bank_cannot_pay_for_a_citizen_it_does_not_host(platform):
    """Another bank's citizen is answered exactly like one that does not exist: the answer
    tells bank B nothing about bank A's citizens, not even that they exist."""
    p = platform.program
    refused = await _refusal(platform.bank_b.Pay(pay_request(p.citizen, p.small_shop, 1_00)))
    assert refused == (grpc.StatusCode.NOT_FOUND, "CITIZEN_NOT_FOUND")
    absent = await _refusal(platform.bank_b.Pay(pay_request(NO_SUCH_CITIZEN, p.small_shop, 1_00)))
    assert absent == refused


async def test_a_bank_cannot_read_a_wallet_it_does_not_host(platform):
    def wallet(citizen: str) -> service_pb2.GetWalletRequest:
        return service_pb2.GetWalletRequest(name=f"{citizen}/wallet")

    refused = await _refusal(platform.bank_b.GetWallet(wallet(platform.program.citizen)))
    assert refused == (grpc.StatusCode.NOT_FOUND, "CITIZEN_NOT_FOUND")
    assert await _refusal(platform.bank_b.GetWallet(wallet(NO_SUCH_CITIZEN))) == refused


async def test_a_bank_cannot_see_another_banks_payment(platform):
    p = platform.program
    paid = await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 1_00))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_b.GetPayment(service_pb2.GetPaymentRequest(name=paid.payment.name))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_more_than_the_wallet_holds_fails_and_moves_nothing(platform):
    p = platform.program
    citizen_before = await balance(platform.bank_a, p.citizen)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, citizen_before + 1))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(caught.value) == "INSUFFICIENT_FUNDS"
    assert await balance(platform.bank_a, p.citizen) == citizen_before


async def test_the_edge_refuses_a_client_without_a_certificate(platform):
    assert platform.mesh.pki is not None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=platform.mesh.pki.ca_cert.read_bytes()
    )
    async with grpc.aio.secure_channel(platform.mesh.layout.edge_target, credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service_pb2_grpc.GatewayServiceStub(channel).Pay(
                pay_request(platform.program.citizen, platform.program.small_shop, 1_00),
                timeout=5,
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_money_is_conserved(platform):
    """Positions sum to zero, and each participant's position equals what the ledger
    says its hosted accounts hold (credits minus debits)."""
    p = platform.program
    await platform.bank_a.Pay(pay_request(p.citizen, p.small_shop, 11_00))
    positions = (
        await platform.settlement.ListPositions(settlement_pb2.ListPositionsRequest(page_size=100))
    ).positions
    assert sum(x.net_position.amount_satang for x in positions) == 0

    ids = [TREASURY_FUNDING_ACCOUNT] + [
        wallet_account_id(party) for party in (p.citizen, p.small_shop, p.far_shop, p.large_chain)
    ]
    accounts = (
        await platform.ledger.LookupAccounts(ledger_pb2.LookupAccountsRequest(ids=ids))
    ).accounts
    assert sum(a.debits_posted for a in accounts) == sum(a.credits_posted for a in accounts)
    held: dict[str, int] = {}
    for account in accounts:
        held[account.participant] = held.get(account.participant, 0) + (
            account.credits_posted - account.debits_posted
        )
    by_participant = {x.participant: x.net_position.amount_satang for x in positions}
    assert held == {k: v for k, v in by_participant.items() if v != 0 or k in held}
