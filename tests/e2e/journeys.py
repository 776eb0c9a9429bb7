"""Small helpers the journeys share: balances, positions, and reading errors."""

from __future__ import annotations

import uuid

import grpc

from openloop.gateway.v1 import service_pb2
from openloop.settlement.v1 import service_pb2 as settlement_pb2
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
