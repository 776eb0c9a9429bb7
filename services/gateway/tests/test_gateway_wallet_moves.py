"""The wallet-move flow against a real PostgreSQL store, with identity, the ledger and
settlement replaced by an in-memory double whose failures each test chooses: whatever fails,
a begun move completes exactly once and a refused one leaves nothing behind."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import cast

import grpc
import pytest
import pytest_asyncio
from sqlalchemy import text

from openloop.gateway.v1 import service_pb2
from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop_gateway.app import MIGRATIONS_DIR
from openloop_gateway.reconciler import reconcile_moves_once
from openloop_gateway.upstreams import Upstreams
from openloop_gateway.wallet_move_store import MoveState, MoveStore
from openloop_gateway.wallet_moves import WalletMoveFlow
from openloop_runtime import migrations
from openloop_runtime.db import create_engine
from openloop_runtime.errors import DomainError, ErrorReason

pytestmark = pytest.mark.asyncio(loop_scope="session")
T = ledger_resources.CreateTransferResult
A = ledger_resources.CreateAccountResult
BALANCE = 9_850_00


def _error(code: grpc.StatusCode, reason: ErrorReason.ValueType, what: str) -> DomainError:
    return DomainError(code, reason, what, {})


def _down(upstream: str) -> DomainError:
    return _error(
        grpc.StatusCode.UNAVAILABLE, ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE, upstream
    )


class FakeUpstreams:
    """Identity, the ledger and settlement as far as a wallet move needs them: each as
    idempotent as the real service, each switchable to down."""

    def __init__(self) -> None:
        self.moves: dict[str, identity_resources.WalletMove] = {}
        self.completed: list[str] = []
        self.accounts: dict[str, int] = {"citizens:c1": BALANCE}
        self.closed: set[str] = set()
        self.transfers: dict[str, int] = {}
        self.settled: dict[str, int] = {}
        self.down: set[str] = set()
        self.begin_error: DomainError | None = None
        self.lose_begin_reply = False
        self.lose_transfers_reply = False

    def _check(self, upstream: str) -> None:
        if upstream in self.down:
            raise _down(upstream)

    async def begin_wallet_move(self, citizen, wallet_move_id, to_participant, assertion):
        self._check("identity")
        if self.begin_error is not None:
            raise self.begin_error
        name = f"{citizen}/walletMoves/{wallet_move_id}"
        move = self.moves.setdefault(
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
        if self.lose_begin_reply:
            raise _down("identity")  # begun, but the reply never arrived
        return move

    async def find_wallet_move(self, name):
        self._check("identity")
        return self.moves.get(name)

    async def complete_wallet_move(self, name):
        self._check("identity")
        self.completed.append(name)
        return self.moves[name]

    async def lookup_account(self, account_id):
        self._check("ledger")
        if account_id not in self.accounts:
            return None
        return ledger_resources.Account(
            id=account_id,
            ledger=764,
            code=100,
            flags=ledger_resources.AccountFlags(
                debits_must_not_exceed_credits=True, closed=account_id in self.closed
            ),
            user_data="citizens/c1",
            participant="participants/bank-a",
        )

    async def create_account(self, account):
        self._check("ledger")
        if account.id in self.accounts:
            return A.CREATE_ACCOUNT_RESULT_EXISTS
        self.accounts[account.id] = 0
        return A.CREATE_ACCOUNT_RESULT_OK

    async def create_transfers(self, transfers):
        self._check("ledger")
        pending, post = transfers
        if pending.id in self.transfers:
            # As the real ledger (and TigerBeetle) answers a linked chain sent again: EXISTS
            # fails the chain at its first event.
            return [T.CREATE_TRANSFER_RESULT_EXISTS, T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED]
        assert pending.flags.balancing_debit
        assert pending.flags.closing_debit
        assert post.pending_id == pending.id
        amount = min(pending.amount, self.accounts[pending.debit_account_id])
        self.accounts[pending.debit_account_id] -= amount
        self.accounts[pending.credit_account_id] += amount
        self.closed.add(pending.debit_account_id)
        self.transfers[pending.id] = amount
        if self.lose_transfers_reply:
            self.lose_transfers_reply = False
            raise _down("ledger")  # applied, but the reply never arrived
        return [T.CREATE_TRANSFER_RESULT_OK, T.CREATE_TRANSFER_RESULT_OK]

    async def lookup_transfer(self, transfer_id):
        self._check("ledger")
        return ledger_resources.Transfer(id=transfer_id, amount=self.transfers[transfer_id])

    async def record_transfer(self, transfer_id, debit_participant, credit_participant, satang):
        self._check("settlement")
        self.settled.setdefault(transfer_id, satang)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(fresh_database):
    url = await fresh_database("gateway_moves")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    engine = create_engine(url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def store(engine):
    return MoveStore(engine)


async def _made_ago(engine, request: service_pb2.MoveWalletRequest, age: timedelta) -> None:
    """Date the move back: made ``age`` ago, as if that long had passed since."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE wallet_moves SET create_time = now() - CAST(:age AS interval)"
                " WHERE participant_id = 'bank-b' AND idempotency_key = :key"
            ),
            {"age": age, "key": request.idempotency_key},
        )


@pytest.fixture
def upstreams():
    return FakeUpstreams()


def _flow(
    store: MoveStore, upstreams: FakeUpstreams, abandon_after: timedelta = timedelta(minutes=10)
) -> WalletMoveFlow:
    return WalletMoveFlow(store, cast(Upstreams, upstreams), abandon_unbegun_after=abandon_after)


_keys = iter(range(1_000_000))


def _request() -> service_pb2.MoveWalletRequest:
    return service_pb2.MoveWalletRequest(
        idempotency_key=f"m-{next(_keys)}", wallet="citizens/c1/wallet", identity_assertion="t"
    )


async def test_a_move_completes_and_a_replay_moves_nothing_more(store, upstreams):
    flow = _flow(store, upstreams)
    request = _request()
    first = await flow.move("bank-b", request)
    again = await flow.move("bank-b", request)
    assert first.state is MoveState.COMPLETED
    assert (first.amount_satang, first.from_participant_id) == (BALANCE, "bank-a")
    assert again == first
    assert upstreams.transfers == {first.ledger_transfer_id: BALANCE}
    assert upstreams.settled == {first.ledger_transfer_id: BALANCE}
    assert upstreams.accounts == {"citizens:c1": 0, "citizens:c1:2": BALANCE}
    assert upstreams.closed == {"citizens:c1"}


async def test_concurrent_requests_under_one_key_make_one_move(store, upstreams):
    flow = _flow(store, upstreams)
    request = _request()
    records = await asyncio.gather(*(flow.move("bank-b", request) for _ in range(8)))
    assert len({r.wallet_move_id for r in records}) == 1
    assert len(upstreams.transfers) == 1
    assert sum(upstreams.settled.values()) == BALANCE


@pytest.mark.parametrize("outage", ["ledger", "settlement"])
async def test_an_outage_after_the_freeze_is_finished_by_the_reconciler_once(
    store, upstreams, outage
):
    flow = _flow(store, upstreams)
    upstreams.down.add(outage)
    with pytest.raises(DomainError) as caught:
        await flow.move("bank-b", _request())
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    move_id = caught.value.metadata["wallet_move"].removeprefix("walletMoves/")
    pending = await store.get(move_id)
    assert pending.state is MoveState.PENDING
    assert pending.begun

    assert await reconcile_moves_once(store, flow, older_than=timedelta(0)) == 0  # still down
    upstreams.down.clear()
    assert await reconcile_moves_once(store, flow, older_than=timedelta(0)) >= 1
    done = await store.get(move_id)
    assert done.state is MoveState.COMPLETED
    assert upstreams.settled == {done.ledger_transfer_id: BALANCE}
    assert upstreams.completed == [pending.identity_move_name]


@pytest.mark.parametrize("finisher", ["retry", "reconciler"])
async def test_a_lost_reply_from_the_ledger_completes_the_move_once(store, upstreams, finisher):
    flow = _flow(store, upstreams)
    upstreams.lose_transfers_reply = True
    request = _request()
    with pytest.raises(DomainError) as caught:
        await flow.move("bank-b", request)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    move_id = caught.value.metadata["wallet_move"].removeprefix("walletMoves/")
    if finisher == "retry":
        await flow.move("bank-b", request)
    else:
        assert await reconcile_moves_once(store, flow, older_than=timedelta(0)) >= 1
    done = await store.get(move_id)
    assert done.state is MoveState.COMPLETED
    assert done.amount_satang == BALANCE
    assert upstreams.transfers == {done.ledger_transfer_id: BALANCE}
    assert upstreams.settled == {done.ledger_transfer_id: BALANCE}


async def test_a_lost_reply_from_identity_is_recovered_without_the_assertion(store, upstreams):
    flow = _flow(store, upstreams)
    upstreams.lose_begin_reply = True
    with pytest.raises(DomainError):
        await flow.move("bank-b", _request())
    upstreams.lose_begin_reply = False
    assert await reconcile_moves_once(store, flow, older_than=timedelta(0)) >= 1
    assert len(upstreams.completed) == 1
    assert sum(upstreams.settled.values()) == BALANCE


async def test_a_move_identity_never_began_fails_only_after_the_grace_period(store, upstreams):
    patient = _flow(store, upstreams)
    upstreams.down.add("identity")
    request = _request()
    with pytest.raises(DomainError):
        await patient.move("bank-b", request)
    upstreams.down.clear()
    upstreams.moves.clear()  # identity never heard of it
    assert await reconcile_moves_once(store, patient, older_than=timedelta(0)) == 0

    impatient = _flow(store, upstreams, abandon_after=timedelta(0))
    assert await reconcile_moves_once(store, impatient, older_than=timedelta(0)) >= 1
    record = await store.find_by_key("bank-b", request.idempotency_key)
    assert record.state is MoveState.FAILED
    assert record.failure_reason == "UPSTREAM_UNAVAILABLE"
    assert upstreams.transfers == {}
    with pytest.raises(DomainError) as replayed:
        await patient.move("bank-b", request)
    assert replayed.value.reason == "UPSTREAM_UNAVAILABLE"


async def test_a_retry_near_the_end_of_the_grace_period_only_looks(store, engine, upstreams):
    """Past the last moment a begin may be sent (the grace period less a margin), a retry
    asks identity whether the move began but never begins it: otherwise identity could
    freeze the wallet for a move the reconciler has just declared FAILED."""
    flow = _flow(store, upstreams, abandon_after=timedelta(minutes=10))  # margin: 2 min
    upstreams.down.add("identity")
    request = _request()
    with pytest.raises(DomainError):
        await flow.move("bank-b", request)
    upstreams.down.clear()
    # Dated back into the margin, a minute clear of either end however slow the machine.
    await _made_ago(engine, request, timedelta(minutes=9))
    with pytest.raises(DomainError) as late:
        await flow.move("bank-b", request)
    assert late.value.code == grpc.StatusCode.UNAVAILABLE
    assert "wallet_move" in late.value.metadata
    assert upstreams.moves == {}  # never asked to begin: no wallet frozen
    await _made_ago(engine, request, timedelta(minutes=11))
    assert await reconcile_moves_once(store, flow, older_than=timedelta(0)) >= 1
    record = await store.find_by_key("bank-b", request.idempotency_key)
    assert record.state is MoveState.FAILED
    assert upstreams.moves == {}


async def test_a_late_retry_of_a_move_identity_began_completes_it(store, upstreams):
    flow = _flow(store, upstreams, abandon_after=timedelta(seconds=2))
    upstreams.lose_begin_reply = True
    request = _request()
    with pytest.raises(DomainError):
        await flow.move("bank-b", request)
    upstreams.lose_begin_reply = False
    await asyncio.sleep(1.1)
    done = await flow.move("bank-b", request)
    assert done.state is MoveState.COMPLETED
    assert upstreams.settled == {done.ledger_transfer_id: BALANCE}


async def test_a_refused_move_is_forgotten(store, upstreams):
    flow = _flow(store, upstreams)
    upstreams.begin_error = _error(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_WALLET_ALREADY_HOSTED,
        "already hosted",
    )
    request = _request()
    with pytest.raises(DomainError) as caught:
        await flow.move("bank-b", request)
    assert caught.value.reason == "WALLET_ALREADY_HOSTED"
    assert await store.find_by_key("bank-b", request.idempotency_key) is None
    assert upstreams.transfers == {}


async def test_malformed_requests_store_nothing(store, upstreams):
    flow = _flow(store, upstreams)
    for field, request in (
        ("wallet", service_pb2.MoveWalletRequest(idempotency_key="m-x", wallet="citizens/c1")),
        (
            "identity_assertion",
            service_pb2.MoveWalletRequest(idempotency_key="m-y", wallet="citizens/c1/wallet"),
        ),
        (
            "idempotency_key",
            service_pb2.MoveWalletRequest(wallet="citizens/c1/wallet", identity_assertion="t"),
        ),
    ):
        with pytest.raises(DomainError) as caught:
            await flow.move("bank-b", request)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.metadata["field"] == field
    assert await store.find_by_key("bank-b", "m-x") is None
