"""Moving a citizen's wallet to another participant, through the real server and PostgreSQL:
begin (on the citizen's own assertion) freezes the wallet, complete hands it over, and the
wallet's ledger account follows its generation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.domain.assurance import AAL, IAL
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    AUDIENCE,
    ISSUER,
    PRICE,
    Identity,
    authorise,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    register_payment_key,
    set_state,
)

IN_PROGRESS = resources_pb2.WalletMove.STATE_IN_PROGRESS
COMPLETED = resources_pb2.WalletMove.STATE_COMPLETED


def _assertion(number: str, *, ial: IAL = IAL.IAL_2_3, aal: AAL = AAL.AAL_2_1) -> str:
    return ISSUER.id_token(audience=AUDIENCE, pid=number, now=datetime.now(UTC), ial=ial, aal=aal)


def _begin(
    citizen: str, to: str, assertion: str, move_id: str = "move-1"
) -> service_pb2.BeginWalletMoveRequest:
    return service_pb2.BeginWalletMoveRequest(
        parent=citizen,
        wallet_move_id=move_id,
        to_participant=f"participants/{to}",
        identity_assertion=assertion,
    )


async def _citizen(identity: Identity) -> tuple[str, str, str]:
    """A citizen enrolled at a bank, and another bank it may move to: (number, name, old, new)."""
    old = await create_participant(identity)
    number = new_citizen_number()
    name = (await identity.stub.EnrollCitizen(enroll_request(old, number))).citizen.name
    return number, name, old


async def _get(identity: Identity, name: str) -> resources_pb2.Citizen:
    return (await identity.stub.GetCitizen(service_pb2.GetCitizenRequest(name=name))).citizen


async def test_a_move_freezes_the_wallet_then_hands_it_to_the_new_participant(
    identity: Identity,
) -> None:
    number, citizen, old = await _citizen(identity)
    new = await create_participant(identity)
    citizen_id = citizen.removeprefix("citizens/")
    assert (await _get(identity, citizen)).wallet_account == f"citizens:{citizen_id}"

    begun = (
        await identity.stub.BeginWalletMove(_begin(citizen, new, _assertion(number)))
    ).wallet_move
    assert begun.name == f"{citizen}/walletMoves/move-1"
    assert begun.state == IN_PROGRESS
    assert (begun.from_participant, begun.to_participant) == (
        f"participants/{old}",
        f"participants/{new}",
    )
    assert begun.from_account == f"citizens:{citizen_id}"
    assert begun.to_account == f"citizens:{citizen_id}:2"
    frozen = await _get(identity, citizen)
    assert frozen.wallet_move == begun.name
    assert frozen.hosting_participant == f"participants/{old}"

    done = (
        await identity.stub.CompleteWalletMove(
            service_pb2.CompleteWalletMoveRequest(name=begun.name)
        )
    ).wallet_move
    assert done.state == COMPLETED
    assert done.HasField("complete_time")
    moved = await _get(identity, citizen)
    assert moved.hosting_participant == f"participants/{new}"
    assert moved.wallet_account == f"citizens:{citizen_id}:2"
    assert moved.wallet_move == ""

    again = (
        await identity.stub.CompleteWalletMove(
            service_pb2.CompleteWalletMoveRequest(name=begun.name)
        )
    ).wallet_move
    assert again == done
    fetched = await identity.stub.GetWalletMove(service_pb2.GetWalletMoveRequest(name=begun.name))
    assert fetched.wallet_move == done


async def test_a_second_move_opens_a_third_account_and_can_go_back(identity: Identity) -> None:
    number, citizen, old = await _citizen(identity)
    new = await create_participant(identity)
    citizen_id = citizen.removeprefix("citizens/")
    for move_id, to in (("there", new), ("back", old)):
        move = (
            await identity.stub.BeginWalletMove(
                _begin(citizen, to, _assertion(number), move_id=move_id)
            )
        ).wallet_move
        await identity.stub.CompleteWalletMove(
            service_pb2.CompleteWalletMoveRequest(name=move.name)
        )
    back = await _get(identity, citizen)
    assert back.hosting_participant == f"participants/{old}"
    assert back.wallet_account == f"citizens:{citizen_id}:3"


async def test_a_frozen_wallet_cannot_pay_or_move_again(identity: Identity) -> None:
    number, citizen, old = await _citizen(identity)
    new, other = await create_participant(identity), await create_participant(identity)
    payment_key = await register_payment_key(identity, old)
    merchant = (
        await identity.stub.CreateMerchant(merchant_request(await create_participant(identity)))
    ).merchant.name
    move = (
        await identity.stub.BeginWalletMove(_begin(citizen, new, _assertion(number)))
    ).wallet_move

    await expect_error(
        identity.stub.VerifyPaymentParties(
            service_pb2.VerifyPaymentPartiesRequest(
                acting_participant=f"participants/{old}",
                payer=citizen,
                payee=merchant,
                payer_authorization=authorise(payment_key, number, merchant),
                amount=thb(PRICE),
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WALLET_MOVE_IN_PROGRESS",
        wallet_move=move.name,
    )
    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, other, _assertion(number), move_id="move-2")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WALLET_MOVE_IN_PROGRESS",
        wallet_move=move.name,
    )


async def test_after_the_move_only_the_new_participant_pays_from_the_new_account(
    identity: Identity,
) -> None:
    number, citizen, old = await _citizen(identity)
    new = await create_participant(identity)
    old_key, new_key = (
        await register_payment_key(identity, old),
        await register_payment_key(identity, new),
    )
    merchant = (
        await identity.stub.CreateMerchant(merchant_request(await create_participant(identity)))
    ).merchant
    move = (
        await identity.stub.BeginWalletMove(_begin(citizen, new, _assertion(number)))
    ).wallet_move
    await identity.stub.CompleteWalletMove(service_pb2.CompleteWalletMoveRequest(name=move.name))

    def verify(bank: str, key_token: str) -> service_pb2.VerifyPaymentPartiesRequest:
        return service_pb2.VerifyPaymentPartiesRequest(
            acting_participant=f"participants/{bank}",
            payer=citizen,
            payee=merchant.name,
            payer_authorization=key_token,
            amount=thb(PRICE),
        )

    await expect_error(
        identity.stub.VerifyPaymentParties(verify(old, authorise(old_key, number, merchant.name))),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
    )
    reply = await identity.stub.VerifyPaymentParties(
        verify(new, authorise(new_key, number, merchant.name))
    )
    assert reply.payer.hosting_participant == f"participants/{new}"
    assert reply.payer_wallet_account == move.to_account
    assert reply.payee_wallet_account == merchant.wallet_account
    assert merchant.wallet_account == merchant.name.replace("/", ":")


async def test_a_retry_returns_the_same_move_without_spending_the_token_again(
    identity: Identity,
) -> None:
    number, citizen, _ = await _citizen(identity)
    new = await create_participant(identity)
    assertion = _assertion(number)
    first = await identity.stub.BeginWalletMove(_begin(citizen, new, assertion))
    retried = await identity.stub.BeginWalletMove(_begin(citizen, new, assertion))
    assert retried == first

    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, new, _assertion(number))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
        field="wallet_move_id",
    )


async def test_concurrent_moves_of_one_wallet_begin_exactly_one(identity: Identity) -> None:
    number, citizen, _ = await _citizen(identity)
    targets = [await create_participant(identity) for _ in range(4)]
    results = await asyncio.gather(
        *(
            identity.stub.BeginWalletMove(
                _begin(citizen, to, _assertion(number), move_id=f"race-{i}")
            )
            for i, to in enumerate(targets)
        ),
        return_exceptions=True,
    )
    begun = [r for r in results if isinstance(r, service_pb2.BeginWalletMoveResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(begun) == 1
    assert len(refused) == 3
    assert {r.code() for r in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert (await _get(identity, citizen)).wallet_move == begun[0].wallet_move.name


async def test_a_move_needs_the_citizens_own_strong_assertion(identity: Identity) -> None:
    number, citizen, old = await _citizen(identity)
    new = await create_participant(identity)
    denied, unauthenticated = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED
    cases = [
        (_assertion(new_citizen_number()), denied, "ASSERTION_SUBJECT_MISMATCH"),
        (_assertion(number, ial=IAL.IAL_2_1), denied, "ASSERTION_IAL_TOO_LOW"),
        (_assertion(number, aal=AAL.AAL_1), denied, "ASSERTION_AAL_TOO_LOW"),
        (_assertion(number)[:-4] + "AAAA", unauthenticated, "ASSERTION_BAD_SIGNATURE"),
    ]
    for index, (assertion, code, assertion_reason) in enumerate(cases):
        await expect_error(
            identity.stub.BeginWalletMove(_begin(citizen, new, assertion, move_id=f"bad-{index}")),
            code,
            "INVALID_IDENTITY_ASSERTION",
            field="identity_assertion",
            assertion_reason=assertion_reason,
        )
    unchanged = await _get(identity, citizen)
    assert unchanged.hosting_participant == f"participants/{old}"
    assert unchanged.wallet_move == ""


async def test_nothing_of_the_citizen_is_told_before_their_assertion_verifies(
    identity: Identity,
) -> None:
    """A participant without the citizen's own assertion learns nothing of the citizen's
    state: not that a move is under way (nor its name), nor that the data was erased."""
    number, moving, _ = await _citizen(identity)
    new, other = await create_participant(identity), await create_participant(identity)
    await identity.stub.BeginWalletMove(_begin(moving, new, _assertion(number)))
    _, erased, host = await _citizen(identity)
    await identity.stub.EraseCitizenData(
        service_pb2.EraseCitizenDataRequest(name=erased, acting_participant=f"participants/{host}")
    )
    probes = [
        ("not-a-token", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_IDENTITY_ASSERTION"),
        # A real assertion, of someone else: the caller does not act for this citizen.
        (
            _assertion(new_citizen_number()),
            grpc.StatusCode.PERMISSION_DENIED,
            "INVALID_IDENTITY_ASSERTION",
        ),
    ]
    for citizen in (moving, erased):
        for index, (assertion, code, reason) in enumerate(probes):
            await expect_error(
                identity.stub.BeginWalletMove(
                    _begin(citizen, other, assertion, move_id=f"probe-{index}")
                ),
                code,
                reason,
                field="identity_assertion",
            )


async def test_a_move_to_the_current_or_an_unfit_host_is_refused(identity: Identity) -> None:
    number, citizen, old = await _citizen(identity)
    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, old, _assertion(number))),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WALLET_ALREADY_HOSTED",
    )
    suspended = await create_participant(identity)
    await set_state(identity, suspended, "SUSPENDED")
    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, suspended, _assertion(number))),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
    )
    treasury = await create_participant(identity, role=resources_pb2.PARTICIPANT_ROLE_TREASURY)
    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, treasury, _assertion(number))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="to_participant",
    )
    assert (await _get(identity, citizen)).wallet_move == ""


async def test_a_wallet_leaves_a_suspended_participant(identity: Identity) -> None:
    number, citizen, old = await _citizen(identity)
    new = await create_participant(identity)
    await set_state(identity, old, "SUSPENDED")
    move = (
        await identity.stub.BeginWalletMove(_begin(citizen, new, _assertion(number)))
    ).wallet_move
    assert move.from_participant == f"participants/{old}"


async def test_malformed_requests_and_unknown_names(identity: Identity) -> None:
    number, citizen, _ = await _citizen(identity)
    new = await create_participant(identity)
    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, new, _assertion(number), move_id="Bad_Id")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="wallet_move_id",
    )
    await expect_error(
        identity.stub.BeginWalletMove(_begin("citizens/c-none", new, _assertion(number))),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
    )
    await expect_error(
        identity.stub.BeginWalletMove(_begin(citizen, new, "")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="identity_assertion",
    )
    await expect_error(
        identity.stub.CompleteWalletMove(
            service_pb2.CompleteWalletMoveRequest(name=f"{citizen}/walletMoves/none")
        ),
        grpc.StatusCode.NOT_FOUND,
        "WALLET_MOVE_NOT_FOUND",
    )
    await expect_error(
        identity.stub.GetWalletMove(service_pb2.GetWalletMoveRequest(name="walletMoves/x")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="name",
    )
