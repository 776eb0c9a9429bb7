"""Small helpers the journeys share: citizens, payments, balances, positions, and reading
errors."""

from __future__ import annotations

import secrets
import uuid

import grpc

from openloop.gateway.v1 import service_pb2
from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop_dev.identity_provider import bank_signer, payment_authorisation
from openloop_dev.seed import HOME_DISTRICT, citizen_details, fund_entitlements, operator
from openloop_identity.domain.thai_id import check_digit
from openloop_runtime.errors import error_info_of
from openloop_runtime.money import thb


def new_key() -> str:
    return f"e2e-{uuid.uuid4()}"


def pay_request(payer: str, payee: str, satang: int, key: str | None = None):
    return service_pb2.PayRequest(
        idempotency_key=key or new_key(), payer=payer, payee=payee, amount=thb(satang)
    )


async def balance(stub, party: str) -> int:
    reply = await stub.GetWallet(service_pb2.GetWalletRequest(name=f"{party}/wallet"))
    return reply.wallet.balance.amount_satang


async def position(settlement, participant: str) -> int:
    reply = await settlement.GetPosition(
        settlement_pb2.GetPositionRequest(name=f"participants/{participant}/position")
    )
    return reply.position.net_position.amount_satang


def reason_of(error: grpc.aio.AioRpcError) -> str:
    info = error_info_of(error)
    assert info is not None, f"no ErrorInfo in {error.code()} {error.details()}"
    return info.reason


def metadata_of(error: grpc.aio.AioRpcError) -> dict[str, str]:
    info = error_info_of(error)
    assert info is not None
    return dict(info.metadata)


def citizen_number() -> str:
    """A random valid 13-digit citizen ID."""
    prefix = str(secrets.choice(range(1, 10))) + "".join(
        secrets.choice("0123456789") for _ in range(11)
    )
    return prefix + str(check_digit(prefix))


async def funded_citizen_at_bank_a(platform) -> tuple[str, str]:
    """A newly enrolled citizen of bank A with the entitlement in their wallet:
    (citizen ID, ``citizens/...``)."""
    number = citizen_number()
    async with operator(platform.mesh.layout) as op:
        citizen = (
            await op.identity.EnrollCitizen(
                identity_pb2.EnrollCitizenRequest(
                    request_id=new_key(),
                    citizen_id=number,
                    home_district_code=HOME_DISTRICT,
                    hosting_participant="participants/bank-a",
                    **citizen_details(platform.mesh.layout, number),
                )
            )
        ).citizen.name
        await fund_entitlements(op, [citizen], "participants/bank-a")
    return number, citizen


def authorised_pay(platform, bank: str, number: str, payer: str, satang: int):
    """``bank`` pays the demo small shop for ``payer``, authorised by its own key."""
    request = pay_request(payer, platform.program.small_shop, satang)
    request.payer_authorization = payment_authorisation(
        bank_signer(platform.workdir, bank), number, request.payee, request.amount
    )
    return request
