"""A wallet move against the real ledger and settlement (only identity is a double): the
ledger's answer to the move's linked chain is lost after it applied it, and the move must
still complete exactly once, with settlement's positions equal to what the ledger holds.

The unit tests' ledger double answers as the ledger does; this test keeps it honest, since
a double that answered a re-sent chain ``[EXISTS, EXISTS]`` hid a move that stayed frozen
for good with its balance moved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
import pytest_asyncio

from openloop.gateway.v1 import service_pb2 as gateway_pb2
from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_gateway.app import MIGRATIONS_DIR as GATEWAY_MIGRATIONS
from openloop_gateway.reconciler import reconcile_moves_once
from openloop_gateway.upstreams import Upstreams
from openloop_gateway.wallet_move_store import MoveState, MoveStore
from openloop_gateway.wallet_moves import WalletMoveFlow
from openloop_ledger.app import MIGRATIONS_DIR as LEDGER_MIGRATIONS
from openloop_ledger.app import build as build_ledger
from openloop_ledger.config import LedgerSettings
from openloop_runtime import migrations
from openloop_runtime.db import create_engine
from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.money import LEDGER_THB, thb
from openloop_runtime.server import running_server
from openloop_settlement.app import MIGRATIONS_DIR as SETTLEMENT_MIGRATIONS
from openloop_settlement.app import build as build_settlement
from openloop_settlement.config import SettlementSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

T = ledger_resources.CreateTransferResult
FUNDED = 10_000_00
TREASURY = "participants/treasury"


class _Mesh:
    def __init__(self, ledger: grpc.aio.Channel, settlement: grpc.aio.Channel, store: MoveStore):
        self.ledger_channel, self.settlement_channel, self.store = ledger, settlement, store
        self.ledger = ledger_grpc.LedgerServiceStub(ledger)
        self.settlement = settlement_grpc.SettlementServiceStub(settlement)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mesh(fresh_database) -> AsyncIterator[_Mesh]:
    urls = {}
    for name, directory in (
        ("ledger", LEDGER_MIGRATIONS),
        ("settlement", SETTLEMENT_MIGRATIONS),
        ("gateway", GATEWAY_MIGRATIONS),
    ):
        urls[name] = await fresh_database(f"move_{name}")
        await asyncio.to_thread(migrations.upgrade, directory, urls[name])
    ledger_config = LedgerSettings(port=0, database_url=urls["ledger"])
    settlement_config = SettlementSettings(port=0, database_url=urls["settlement"])
    engine = create_engine(urls["gateway"], pool_size=5)
    try:
        async with (
            running_server(
                "ledger.openloop.dev", ledger_config, build_ledger(ledger_config)
            ) as ledger,
            running_server(
                "settlement.openloop.dev",
                settlement_config,
                build_settlement(settlement_config),
            ) as settlement,
            grpc.aio.insecure_channel(f"127.0.0.1:{ledger.port}") as ledger_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{settlement.port}") as settlement_channel,
        ):
            yield _Mesh(ledger_channel, settlement_channel, MoveStore(engine))
    finally:
        await engine.dispose()


class _LosingLedgerReply(Upstreams):
    """The real ledger and settlement. Identity hands out the begun move; the ledger's first
    answer to a chain of transfers is lost after the ledger applied it."""

    def __init__(self, mesh: _Mesh) -> None:
        channel = mesh.ledger_channel
        super().__init__(channel, channel, channel, mesh.settlement_channel, timeout=5)
        self.moves: dict[str, identity_resources.WalletMove] = {}
        self.completed: list[str] = []
        self.lose_next_reply = True

    async def begin_wallet_move(self, citizen, wallet_move_id, to_participant, assertion):
        name = f"{citizen}/walletMoves/{wallet_move_id}"
        return self.moves.setdefault(
            name,
            identity_resources.WalletMove(
                name=name,
                from_participant="participants/bank-a",
                to_participant=to_participant,
                from_account="citizens:c1",
                to_account="citizens:c1:2",
                state=identity_resources.WalletMove.STATE_IN_PROGRESS,
            ),
        )

    async def find_wallet_move(self, name):
        return self.moves.get(name)

    async def complete_wallet_move(self, name):
        self.completed.append(name)
        return self.moves[name]

    async def create_transfers(self, transfers):
        results = await super().create_transfers(transfers)
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise DomainError(
                grpc.StatusCode.UNAVAILABLE,
                ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE,
                "ledger is unavailable",
                {"upstream": "ledger"},
            )
        return results


def _account(account_id: str, code: int, user_data: str, participant: str, *, limited: bool):
    return ledger_resources.Account(
        id=account_id,
        ledger=LEDGER_THB,
        code=code,
        user_data=user_data,
        participant=participant,
        flags=ledger_resources.AccountFlags(debits_must_not_exceed_credits=limited),
    )


async def _fund_citizen_at_bank_a(mesh: _Mesh) -> None:
    await mesh.ledger.CreateAccounts(
        ledger_pb2.CreateAccountsRequest(
            accounts=[
                _account(
                    "treasury:funding", 900, "treasury", "participants/treasury", limited=False
                ),
                _account("citizens:c1", 100, "citizens/c1", "participants/bank-a", limited=True),
            ]
        )
    )
    funded = await mesh.ledger.CreateTransfers(
        ledger_pb2.CreateTransfersRequest(
            transfers=[
                ledger_resources.Transfer(
                    id="entitlement:c1",
                    debit_account_id="treasury:funding",
                    credit_account_id="citizens:c1",
                    amount=FUNDED,
                    ledger=LEDGER_THB,
                    code=1,
                    user_data="citizens/c1",
                )
            ]
        )
    )
    assert list(funded.results) == [T.CREATE_TRANSFER_RESULT_OK]
    await mesh.settlement.RecordTransfer(
        settlement_pb2.RecordTransferRequest(
            transfer_id="entitlement:c1",
            debit_participant=TREASURY,
            credit_participant="participants/bank-a",
            amount=thb(FUNDED),
        )
    )


async def _net_position(mesh: _Mesh, bank: str) -> int:
    reply = await mesh.settlement.GetPosition(
        settlement_pb2.GetPositionRequest(name=f"participants/{bank}/position")
    )
    return reply.position.net_position.amount_satang


async def test_a_move_whose_ledger_answer_was_lost_completes_once(mesh: _Mesh) -> None:
    await _fund_citizen_at_bank_a(mesh)
    upstreams = _LosingLedgerReply(mesh)
    flow = WalletMoveFlow(mesh.store, upstreams, abandon_unbegun_after=timedelta(minutes=10))
    request = gateway_pb2.MoveWalletRequest(
        idempotency_key="k1", wallet="citizens/c1/wallet", identity_assertion="t"
    )
    with pytest.raises(DomainError) as lost:
        await flow.move("bank-b", request)
    assert lost.value.code == grpc.StatusCode.UNAVAILABLE
    move_id = lost.value.metadata["wallet_move"].removeprefix("walletMoves/")

    retried = await flow.move("bank-b", request)  # the bank retries under the same key
    assert retried.state is MoveState.COMPLETED
    assert retried.amount_satang == FUNDED
    assert await reconcile_moves_once(mesh.store, flow, older_than=timedelta(0)) == 0
    assert (await mesh.store.get(move_id)) == retried
    assert upstreams.completed == [retried.identity_move_name]

    accounts = await mesh.ledger.LookupAccounts(
        ledger_pb2.LookupAccountsRequest(ids=["citizens:c1", "citizens:c1:2"])
    )
    held = {a.id: (a.credits_posted - a.debits_posted, a.flags.closed) for a in accounts.accounts}
    assert held == {"citizens:c1": (0, True), "citizens:c1:2": (FUNDED, False)}
    # Settlement says what the ledger says: bank B now owes the citizen's balance.
    assert await _net_position(mesh, "bank-a") == 0
    assert await _net_position(mesh, "bank-b") == FUNDED
