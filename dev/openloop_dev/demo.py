"""Pay as a bank would: through Envoy, with bank A's client certificate."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from google.protobuf import json_format

from openloop.gateway.v1 import service_pb2
from openloop_dev.bank import AuthorisingGateway, bank_channel, gateway_stub
from openloop_dev.identity_provider import bank_signer
from openloop_dev.pki import DevPki
from openloop_dev.seed import DemoProgram
from openloop_runtime.errors import error_info_of
from openloop_runtime.money import thb


def _baht(satang: int) -> str:
    return f"{satang // 100:,}.{satang % 100:02d} THB"


async def run_demo(pki: DevPki, edge_target: str, program: DemoProgram, workdir: Path) -> str:
    """Make one allowed and one denied payment; print what a bank sees. Returns the trace id.

    Bank A signs each payment's authorisation with the key the seed registered for it, bound
    to that payment's payee and amount."""
    async with (
        bank_channel(pki, program.payer_bank, edge_target) as payer_channel,
        bank_channel(pki, program.payee_bank, edge_target) as payee_channel,
    ):
        payer_bank = AuthorisingGateway(
            gateway_stub(payer_channel),
            bank_signer(workdir, program.payer_bank),
            {program.citizen: program.citizen_id},
        )
        payee_bank = gateway_stub(payee_channel)

        async def balances() -> tuple[int, int]:
            citizen = await payer_bank.GetWallet(
                service_pb2.GetWalletRequest(name=f"{program.citizen}/wallet")
            )
            shop = await payee_bank.GetWallet(
                service_pb2.GetWalletRequest(name=f"{program.small_shop}/wallet")
            )
            return citizen.wallet.balance.amount_satang, shop.wallet.balance.amount_satang

        citizen_before, shop_before = await balances()
        print(f"citizen {program.citizen} at {program.payer_bank}: {_baht(citizen_before)}")
        print(f"shop    {program.small_shop} at {program.payee_bank}: {_baht(shop_before)}")

        request = service_pb2.PayRequest(
            idempotency_key=f"demo-{uuid.uuid4()}",
            payer=program.citizen,
            payee=program.small_shop,
            amount=thb(250_00),
        )
        print(f"\n{program.payer_bank} pays 250.00 THB to the small shop in the same district")
        print("(the citizen's authorisation names this shop and this amount, and nothing else):")
        payment = (await payer_bank.Pay(request)).payment
        print(json_format.MessageToJson(payment, indent=2))

        citizen_after, shop_after = await balances()
        print(f"\ncitizen: {_baht(citizen_before)} -> {_baht(citizen_after)}")
        print(f"shop:    {_baht(shop_before)} -> {_baht(shop_after)}")

        print(f"\n{program.payer_bank} tries to pay the shop in another district:")
        try:
            await payer_bank.Pay(
                service_pb2.PayRequest(
                    idempotency_key=f"demo-{uuid.uuid4()}",
                    payer=program.citizen,
                    payee=program.far_shop,
                    amount=thb(100_00),
                )
            )
        except grpc.aio.AioRpcError as error:
            info = error_info_of(error)
            print(f"  {error.code().name}: {error.details()}")
            if info is not None:
                print(f"  reason={info.reason} domain={info.domain} metadata={dict(info.metadata)}")

        print(f"\ntrace id of the payment: {payment.trace_id}")
        print(f"  see it: make trace ID={payment.trace_id}")
        return payment.trace_id
