"""Extra funded citizens for load: one wallet per client, so the benchmark measures the
platform rather than contention on a single wallet row."""

from __future__ import annotations

import grpc

from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.identity.v1 import service_pb2_grpc as identity_grpc
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_dev.mesh import MeshLayout
from openloop_dev.seed import ENTITLEMENT_SATANG, HOME_DISTRICT
from openloop_gateway.accounts import (
    TREASURY_FUNDING_ACCOUNT,
    AccountCode,
    TransferCode,
    wallet_account_id,
)
from openloop_runtime.money import LEDGER_THB, thb


def citizen_id(serial: int) -> str:
    """A valid 13-digit citizen ID (check digit per the domain brief) for ``serial``."""
    body = f"3{serial:011d}"
    total = sum(int(d) * w for d, w in zip(body, range(13, 1, -1), strict=True))
    return body + str((11 - total % 11) % 10)


async def enrol_funded_citizens(layout: MeshLayout, count: int) -> list[str]:
    async with (
        grpc.aio.insecure_channel(layout.target("identity")) as identity_channel,
        grpc.aio.insecure_channel(layout.target("ledger")) as ledger_channel,
        grpc.aio.insecure_channel(layout.target("settlement")) as settlement_channel,
    ):
        identity = identity_grpc.IdentityServiceStub(identity_channel)
        ledger = ledger_grpc.LedgerServiceStub(ledger_channel)
        settlement = settlement_grpc.SettlementServiceStub(settlement_channel)
        citizens = []
        for serial in range(count):
            reply = await identity.EnrollCitizen(
                identity_pb2.EnrollCitizenRequest(
                    request_id=f"bench-citizen-{serial}",
                    citizen_id=citizen_id(serial),
                    home_district_code=HOME_DISTRICT,
                    hosting_participant="participants/bank-a",
                )
            )
            citizens.append(reply.citizen.name)
        await ledger.CreateAccounts(
            ledger_pb2.CreateAccountsRequest(
                accounts=[
                    ledger_resources.Account(
                        id=wallet_account_id(c),
                        ledger=LEDGER_THB,
                        code=AccountCode.CITIZEN_WALLET,
                        flags=ledger_resources.AccountFlags(debits_must_not_exceed_credits=True),
                        user_data=c,
                        participant="participants/bank-a",
                    )
                    for c in citizens
                ]
            )
        )
        transfers = [
            ledger_resources.Transfer(
                id=f"entitlement:{wallet_account_id(c)}",
                debit_account_id=TREASURY_FUNDING_ACCOUNT,
                credit_account_id=wallet_account_id(c),
                amount=ENTITLEMENT_SATANG,
                ledger=LEDGER_THB,
                code=TransferCode.ENTITLEMENT_FUNDING,
                user_data=c,
            )
            for c in citizens
        ]
        await ledger.CreateTransfers(ledger_pb2.CreateTransfersRequest(transfers=transfers))
        for transfer in transfers:
            await settlement.RecordTransfer(
                settlement_pb2.RecordTransferRequest(
                    transfer_id=transfer.id,
                    debit_participant="participants/treasury",
                    credit_participant="participants/bank-a",
                    amount=thb(transfer.amount),
                )
            )
        return citizens
