"""CreateAccounts and LookupAccounts through a real server and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import grpc
import pytest

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_runtime.errors import error_info_of

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub
A = resources_pb2.CreateAccountResult


def _id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def _account(account_id: str, **fields: object) -> resources_pb2.Account:
    values: dict[str, object] = {
        "id": account_id,
        "ledger": 764,
        "code": 10,
        "participant": "participants/bank-a",
        "user_data": "citizens/c-1",
    }
    values.update(fields)
    return resources_pb2.Account(**values)  # type: ignore[arg-type]


async def _create(ledger: Stub, *accounts: resources_pb2.Account) -> list[int]:
    response = await ledger.CreateAccounts(service_pb2.CreateAccountsRequest(accounts=accounts))
    return list(response.results)


async def _lookup(ledger: Stub, *ids: str) -> list[resources_pb2.Account]:
    response = await ledger.LookupAccounts(service_pb2.LookupAccountsRequest(ids=ids))
    return list(response.accounts)


async def test_a_new_account_is_created_with_zero_totals(ledger: Stub) -> None:
    account_id = _id("wallet")
    flags = resources_pb2.AccountFlags(debits_must_not_exceed_credits=True)
    assert await _create(ledger, _account(account_id, flags=flags)) == [A.CREATE_ACCOUNT_RESULT_OK]

    [found] = await _lookup(ledger, account_id)
    assert found.id == account_id
    assert found.ledger == 764
    assert found.code == 10
    assert found.flags.debits_must_not_exceed_credits
    assert not found.flags.credits_must_not_exceed_debits
    assert found.participant == "participants/bank-a"
    assert found.user_data == "citizens/c-1"
    assert (found.debits_posted, found.credits_posted) == (0, 0)
    assert found.create_time.seconds > 0


async def test_creating_the_same_account_again_returns_exists(ledger: Stub) -> None:
    account = _account(_id("wallet"))
    assert await _create(ledger, account) == [A.CREATE_ACCOUNT_RESULT_OK]
    assert await _create(ledger, account) == [A.CREATE_ACCOUNT_RESULT_EXISTS]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"flags": resources_pb2.AccountFlags(credits_must_not_exceed_debits=True)},
            A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FLAGS,
        ),
        ({"user_data": "citizens/c-2"}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA),
        (
            {"participant": "participants/bank-b"},
            A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_PARTICIPANT,
        ),
        ({"ledger": 840}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_LEDGER),
        ({"code": 11}, A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE),
    ],
)
async def test_an_existing_id_with_other_fields_is_reported_and_kept(
    ledger: Stub, change: dict[str, object], expected: int
) -> None:
    account_id = _id("wallet")
    assert await _create(ledger, _account(account_id)) == [A.CREATE_ACCOUNT_RESULT_OK]
    assert await _create(ledger, _account(account_id, **change)) == [expected]
    [kept] = await _lookup(ledger, account_id)
    assert kept == (await _lookup(ledger, account_id))[0]
    assert (kept.ledger, kept.code, kept.participant) == (764, 10, "participants/bank-a")


async def test_each_account_of_a_batch_gets_its_own_result(ledger: Stub) -> None:
    good, repeated = _id("good"), _id("twice")
    both = resources_pb2.AccountFlags(
        debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True
    )
    results = await _create(
        ledger,
        _account(""),
        _account("not/valid"),
        _account(_id("flags"), flags=both),
        _account(_id("ledger"), ledger=0),
        _account(_id("code"), code=0),
        _account(good),
        _account(repeated),
        _account(repeated),
        _account(repeated, code=99),
    )
    assert results == [
        A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY,
        A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED,
        A.CREATE_ACCOUNT_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO,
        A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO,
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_EXISTS,
        A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE,
    ]
    assert [a.id for a in await _lookup(ledger, good, repeated)] == [good, repeated]
    [kept] = await _lookup(ledger, repeated)
    assert kept.code == 10


async def test_lookup_keeps_request_order_and_omits_unknown_ids(ledger: Stub) -> None:
    first, second = _id("a"), _id("b")
    await _create(ledger, _account(first), _account(second))
    found = await _lookup(ledger, second, "unknown", first, second, "not/an/id", "nul\x00")
    assert [a.id for a in found] == [second, first]
    assert await _lookup(ledger) == []


async def _invalid(ledger: Stub, request: service_pb2.CreateAccountsRequest) -> tuple[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ledger.CreateAccounts(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    assert info.domain == "ledger.openloop.dev"
    return info.reason, info.metadata.get("field", "")


@pytest.mark.parametrize(
    ("participant", "field"),
    [
        ("", "accounts[1].participant"),
        ("banks/bank-a", "accounts[1].participant"),
        ("participants/Bank A", "accounts[1].participant"),
    ],
)
async def test_a_malformed_participant_rejects_the_whole_request(
    ledger: Stub, participant: str, field: str
) -> None:
    untouched = _id("untouched")
    request = service_pb2.CreateAccountsRequest(
        accounts=[_account(untouched), _account(_id("bad"), participant=participant)]
    )
    assert await _invalid(ledger, request) == ("INVALID_FIELD", field)
    assert await _lookup(ledger, untouched) == []


async def test_clients_cannot_open_an_account_with_a_balance(ledger: Stub) -> None:
    request = service_pb2.CreateAccountsRequest(
        accounts=[_account(_id("rich"), credits_posted=1_000_000)]
    )
    assert await _invalid(ledger, request) == ("INVALID_FIELD", "accounts[0].credits_posted")


@pytest.mark.parametrize("user_data", ["u" * 257, "nul\x00"])
async def test_user_data_is_bounded_text(ledger: Stub, user_data: str) -> None:
    request = service_pb2.CreateAccountsRequest(accounts=[_account(_id("x"), user_data=user_data)])
    assert await _invalid(ledger, request) == ("INVALID_FIELD", "accounts[0].user_data")


async def test_an_empty_batch_is_invalid(ledger: Stub) -> None:
    assert await _invalid(ledger, service_pb2.CreateAccountsRequest()) == (
        "INVALID_FIELD",
        "accounts",
    )


async def test_a_batch_over_8189_accounts_is_too_large(ledger: Stub) -> None:
    prefix = _id("bulk")
    accounts = [_account(f"{prefix}-{i}") for i in range(8190)]
    request = service_pb2.CreateAccountsRequest(accounts=accounts)
    assert await _invalid(ledger, request) == ("BATCH_TOO_LARGE", "accounts")
    assert await _lookup(ledger, accounts[0].id) == []


async def test_a_full_batch_of_8189_accounts_is_created(ledger: Stub) -> None:
    prefix = _id("bulk")
    accounts = [_account(f"{prefix}-{i}") for i in range(8189)]
    results = await _create(ledger, *accounts)
    assert results == [A.CREATE_ACCOUNT_RESULT_OK] * 8189
    found = await _lookup(ledger, *(a.id for a in accounts))
    assert len(found) == 8189


async def test_looking_up_more_than_8189_ids_is_too_large(ledger: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ledger.LookupAccounts(
            service_pb2.LookupAccountsRequest(ids=[f"a{i}" for i in range(8190)])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == "BATCH_TOO_LARGE"
