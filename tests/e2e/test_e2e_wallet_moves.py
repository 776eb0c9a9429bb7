"""A citizen moves their wallet from bank A to bank B through the real edge: the whole balance
follows, bank A's old account is closed with its history, settlement owes bank B what bank A
no longer holds, and from then on only bank B can pay for the citizen."""

from __future__ import annotations

import grpc
import pytest

from openloop.gateway.v1 import resources_pb2, service_pb2
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop_dev.identity_provider import enrolment_assertion
from openloop_dev.seed import (
    ENTITLEMENT_SATANG,
)
from tests.e2e.journeys import (
    authorised_pay,
    balance,
    citizen_number,
    funded_citizen_at_bank_a,
    metadata_of,
    new_key,
    position,
    reason_of,
)

COMPLETED = resources_pb2.WalletMoveState.WALLET_MOVE_STATE_COMPLETED


def _move(platform, number: str, citizen: str, key: str | None = None):
    return service_pb2.MoveWalletRequest(
        idempotency_key=key or new_key(),
        wallet=f"{citizen}/wallet",
        identity_assertion=enrolment_assertion(platform.workdir, number),
    )


async def test_a_wallet_moves_with_its_balance_and_history(platform):
    number, citizen = await funded_citizen_at_bank_a(platform)
    await platform.bank_a.Pay(authorised_pay(platform, "bank-a", number, citizen, 150_00))
    held = ENTITLEMENT_SATANG - 150_00
    assert await balance(platform.bank_a, citizen) == held
    bank_a_before = await position(platform.settlement, "bank-a")
    bank_b_before = await position(platform.settlement, "bank-b")

    request = _move(platform, number, citizen)
    move = (await platform.bank_b.MoveWallet(request)).wallet_move
    citizen_id = citizen.removeprefix("citizens/")
    assert move.state == COMPLETED
    assert move.amount.amount_satang == held
    assert (move.from_participant, move.to_participant) == (
        "participants/bank-a",
        "participants/bank-b",
    )
    assert (move.from_account, move.to_account) == (
        f"citizens:{citizen_id}",
        f"citizens:{citizen_id}:2",
    )

    # Settlement: bank A owes bank B exactly what it no longer holds for the citizen.
    assert await position(platform.settlement, "bank-a") == bank_a_before - held
    assert await position(platform.settlement, "bank-b") == bank_b_before + held

    # Ledger: the old account is closed and empty but keeps every transfer it ever had.
    accounts = (
        await platform.ledger.LookupAccounts(
            ledger_pb2.LookupAccountsRequest(ids=[move.from_account, move.to_account])
        )
    ).accounts
    old, new = sorted(accounts, key=lambda a: a.id)
    assert old.flags.closed
    assert old.participant == "participants/bank-a"
    assert old.credits_posted - old.debits_posted == 0
    assert new.participant == "participants/bank-b"
    assert new.credits_posted - new.debits_posted == held
    assert new.flags.debits_must_not_exceed_credits == old.flags.debits_must_not_exceed_credits
    history = (
        await platform.ledger.ListAccountTransfers(
            ledger_pb2.ListAccountTransfersRequest(
                filter=ledger_pb2.AccountFilter(
                    account_id=move.from_account, debits=True, credits=True
                ),
                page_size=50,
            )
        )
    ).transfers
    ids = [t.id for t in history]
    assert f"entitlement:citizens:{citizen_id}" in ids
    assert move.ledger_transfer_id in ids

    # Only bank B hosts the wallet now, and it pays from the new account.
    assert await balance(platform.bank_b, citizen) == held
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await balance(platform.bank_a, citizen)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(refused.value) == "CITIZEN_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.Pay(authorised_pay(platform, "bank-a", number, citizen, 1_00))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    paid = await platform.bank_b.Pay(authorised_pay(platform, "bank-b", number, citizen, 40_00))
    assert paid.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    assert await balance(platform.bank_b, citizen) == held - 40_00

    # Both sides of the move can read it.
    for bank in (platform.bank_a, platform.bank_b):
        got = await bank.GetWalletMove(service_pb2.GetWalletMoveRequest(name=move.name))
        assert got.wallet_move.state == COMPLETED


async def test_a_retried_move_moves_nothing_twice(platform):
    number, citizen = await funded_citizen_at_bank_a(platform)
    request = _move(platform, number, citizen)
    first = (await platform.bank_b.MoveWallet(request)).wallet_move
    bank_b = await position(platform.settlement, "bank-b")
    again = (await platform.bank_b.MoveWallet(request)).wallet_move
    assert again.name == first.name
    assert again.amount == first.amount
    assert await position(platform.settlement, "bank-b") == bank_b
    assert await balance(platform.bank_b, citizen) == ENTITLEMENT_SATANG

    changed = _move(platform, number, citizen, key=request.idempotency_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_b.MoveWallet(changed)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(refused.value) == "IDEMPOTENCY_KEY_REUSED"


async def test_a_refused_move_stores_and_moves_nothing(platform):
    number, citizen = await funded_citizen_at_bank_a(platform)
    someone_else = _move(platform, citizen_number(), citizen)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_b.MoveWallet(someone_else)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(refused.value) == "INVALID_IDENTITY_ASSERTION"
    assert metadata_of(refused.value)["assertion_reason"] == "ASSERTION_SUBJECT_MISMATCH"
    assert number not in (refused.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.MoveWallet(_move(platform, number, citizen))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused.value) == "WALLET_ALREADY_HOSTED"

    # The same key works once the request is right: nothing was stored under it.
    fixed = _move(platform, number, citizen, key=someone_else.idempotency_key)
    moved = (await platform.bank_b.MoveWallet(fixed)).wallet_move
    assert moved.state == COMPLETED
    assert moved.amount.amount_satang == ENTITLEMENT_SATANG


async def test_a_move_of_a_wallet_elsewhere_is_not_found_by_a_bystander(platform):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.GetWalletMove(
            service_pb2.GetWalletMoveRequest(name="walletMoves/w000000000000000000000000")
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(refused.value) == "WALLET_MOVE_NOT_FOUND"
