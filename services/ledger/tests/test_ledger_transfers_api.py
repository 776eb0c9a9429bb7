"""CreateTransfers and LookupTransfers through a real server and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_runtime.errors import error_info_of

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub

T = resources_pb2.CreateTransferResult
MAX = 2**63 - 1
WALLET = resources_pb2.AccountFlags(debits_must_not_exceed_credits=True)
CAPPED = resources_pb2.AccountFlags(credits_must_not_exceed_debits=True)


def _id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


async def _open(
    ledger: Stub,
    label: str,
    *,
    flags: resources_pb2.AccountFlags | None = None,
    ledger_number: int = 764,
) -> str:
    account_id = _id(label)
    account = resources_pb2.Account(
        id=account_id,
        ledger=ledger_number,
        code=1,
        flags=flags,
        participant="participants/bank-a",
    )
    response = await ledger.CreateAccounts(service_pb2.CreateAccountsRequest(accounts=[account]))
    assert list(response.results) == [resources_pb2.CREATE_ACCOUNT_RESULT_OK]
    return account_id


def _transfer(
    debit: str, credit: str, amount: int, *, transfer_id: str | None = None, **fields: object
) -> resources_pb2.Transfer:
    values: dict[str, object] = {
        "id": _id("t") if transfer_id is None else transfer_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "ledger": 764,
        "code": 1,
        "user_data": "payments/p-1",
    }
    values.update(fields)
    return resources_pb2.Transfer(**values)  # type: ignore[arg-type]


async def _submit(ledger: Stub, *transfers: resources_pb2.Transfer) -> list[int]:
    response = await ledger.CreateTransfers(service_pb2.CreateTransfersRequest(transfers=transfers))
    return list(response.results)


async def _totals(ledger: Stub, *ids: str) -> list[tuple[int, int]]:
    response = await ledger.LookupAccounts(service_pb2.LookupAccountsRequest(ids=ids))
    by_id = {a.id: (a.debits_posted, a.credits_posted) for a in response.accounts}
    return [by_id[i] for i in ids]


async def test_a_transfer_moves_its_amount_and_is_recorded(ledger: Stub) -> None:
    bank, wallet = await _open(ledger, "bank"), await _open(ledger, "wallet", flags=WALLET)
    transfer = _transfer(bank, wallet, 1_000_000, user_data="citizens/c-1")
    assert await _submit(ledger, transfer) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await _totals(ledger, bank, wallet) == [(1_000_000, 0), (0, 1_000_000)]

    response = await ledger.LookupTransfers(
        service_pb2.LookupTransfersRequest(ids=[transfer.id, "unknown"])
    )
    [recorded] = response.transfers
    assert recorded.create_time.seconds > 0
    assert recorded.HasField("flags")
    for output in ("create_time", "position", "flags"):
        recorded.ClearField(output)
    assert recorded == transfer


async def test_a_replayed_transfer_returns_exists_and_moves_nothing(ledger: Stub) -> None:
    bank, wallet = await _open(ledger, "bank"), await _open(ledger, "wallet")
    transfer = _transfer(bank, wallet, 700)
    assert await _submit(ledger, transfer) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await _submit(ledger, transfer, transfer) == [T.CREATE_TRANSFER_RESULT_EXISTS] * 2
    assert await _totals(ledger, bank, wallet) == [(700, 0), (0, 700)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("debit_account_id", T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
        ("credit_account_id", T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID),
        ("amount", T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT),
        ("user_data", T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA),
        ("ledger", T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_LEDGER),
        ("code", T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CODE),
    ],
)
async def test_a_reused_id_with_other_fields_is_reported_and_moves_nothing(
    ledger: Stub, change: str, expected: int
) -> None:
    bank, wallet, other = [await _open(ledger, n) for n in ("bank", "wallet", "other")]
    original = _transfer(bank, wallet, 700)
    assert await _submit(ledger, original) == [T.CREATE_TRANSFER_RESULT_OK]
    different = {
        "debit_account_id": other,
        "credit_account_id": other,
        "amount": 701,
        "user_data": "payments/p-2",
        "ledger": 840,
        "code": 2,
    }
    reused = _transfer(bank, wallet, 700, transfer_id=original.id)
    setattr(reused, change, different[change])
    assert await _submit(ledger, reused) == [expected]
    assert await _totals(ledger, bank, wallet, other) == [(700, 0), (0, 700), (0, 0)]


async def test_malformed_transfers_get_their_result_codes(ledger: Stub) -> None:
    a, b = await _open(ledger, "a"), await _open(ledger, "b")
    results = await _submit(
        ledger,
        _transfer(a, b, 1, transfer_id=""),
        _transfer(a, b, 1, transfer_id="no spaces"),
        _transfer(a, b, 1, transfer_id="nul\x00"),
        _transfer("", b, 1),
        _transfer(a, "", 1),
        _transfer(a, a, 1),
        _transfer(a, b, 1, ledger=0),
        _transfer(a, b, 1, code=0),
        _transfer(a, b, 0),
        _transfer(a, b, MAX + 1),
        _transfer(a, b, 2**64 - 1),
        _transfer(a, b, 1, pending_id="p"),
        _transfer(a, b, 1, timeout=5),
    )
    assert results == [
        T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY,
        T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED,
        T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY,
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY,
        T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT,
        T.CREATE_TRANSFER_RESULT_LEDGER_MUST_NOT_BE_ZERO,
        T.CREATE_TRANSFER_RESULT_CODE_MUST_NOT_BE_ZERO,
        T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO,
        T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED,
        T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED,
        T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_BE_EMPTY,
        T.CREATE_TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
    ]
    assert await _totals(ledger, a, b) == [(0, 0), (0, 0)]


async def test_accounts_must_exist_and_share_the_transfers_ledger(ledger: Stub) -> None:
    thb, usd = await _open(ledger, "thb"), await _open(ledger, "usd", ledger_number=840)
    thb2 = await _open(ledger, "thb2")
    results = await _submit(
        ledger,
        _transfer("missing", thb, 1),
        _transfer(thb, "missing", 1),
        _transfer("bad id!", thb, 1),
        _transfer("nul\x00", thb, 1),
        _transfer(thb, usd, 1),
        _transfer(thb, thb2, 1, ledger=840),
    )
    assert results == [
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND,
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_IS_MALFORMED,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_IS_MALFORMED,
        T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER,
        T.CREATE_TRANSFER_RESULT_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
    ]
    assert await _totals(ledger, thb, usd, thb2) == [(0, 0)] * 3


async def test_a_wallet_cannot_spend_more_than_it_was_credited(ledger: Stub) -> None:
    bank = await _open(ledger, "bank")
    wallet = await _open(ledger, "wallet", flags=WALLET)
    shop = await _open(ledger, "shop")
    results = await _submit(
        ledger,
        _transfer(wallet, shop, 1),
        _transfer(bank, wallet, 1_000),
        _transfer(wallet, shop, 600),
        _transfer(wallet, shop, 401),
        _transfer(wallet, shop, 400),
        _transfer(wallet, shop, 1),
    )
    assert results == [
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
    ]
    assert await _totals(ledger, bank, wallet, shop) == [(1_000, 0), (1_000, 1_000), (0, 1_000)]


async def test_a_capped_account_cannot_be_credited_beyond_its_debits(ledger: Stub) -> None:
    source = await _open(ledger, "source")
    capped = await _open(ledger, "capped", flags=CAPPED)
    sink = await _open(ledger, "sink")
    results = await _submit(
        ledger,
        _transfer(source, capped, 1),
        _transfer(capped, sink, 50),
        _transfer(source, capped, 51),
        _transfer(source, capped, 50),
    )
    assert results == [
        T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS,
        T.CREATE_TRANSFER_RESULT_OK,
    ]
    assert await _totals(ledger, capped) == [(50, 50)]


async def test_posted_totals_never_wrap_past_the_signed_64_bit_maximum(ledger: Stub) -> None:
    issuer, holder, other = [await _open(ledger, n) for n in ("issuer", "holder", "other")]
    assert await _submit(ledger, _transfer(issuer, holder, MAX)) == [T.CREATE_TRANSFER_RESULT_OK]
    results = await _submit(
        ledger,
        _transfer(issuer, other, 1),
        _transfer(other, holder, 1),
        _transfer(holder, issuer, MAX),
        _transfer(holder, issuer, 1),
    )
    assert results == [
        T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED,
        T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_POSTED,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED,
    ]
    assert await _totals(ledger, issuer, holder, other) == [(MAX, MAX), (MAX, MAX), (0, 0)]


async def test_positions_follow_the_order_the_batch_applied_transfers_without_gaps(
    ledger: Stub, ledger_database: str
) -> None:
    a, b = await _open(ledger, "a"), await _open(ledger, "b")
    ids = [f"z-{uuid.uuid4().hex[:6]}", f"m-{uuid.uuid4().hex[:6]}", f"a-{uuid.uuid4().hex[:6]}"]
    assert (
        await _submit(ledger, *(_transfer(a, b, 1, transfer_id=i) for i in ids))
        == [T.CREATE_TRANSFER_RESULT_OK] * 3
    )
    response = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=ids))
    positions = [t.position for t in response.transfers]
    assert positions == list(range(positions[0], positions[0] + 3))
    engine = create_async_engine(ledger_database)
    try:
        async with engine.connect() as conn:
            size = (await conn.execute(text("SELECT size FROM journal"))).scalar_one()
            stored = list((await conn.execute(text("SELECT position FROM transfers"))).scalars())
        assert sorted(stored) == list(range(size))
    finally:
        await engine.dispose()


async def _invalid(ledger: Stub, request: service_pb2.CreateTransfersRequest) -> tuple[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ledger.CreateTransfers(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    return info.reason, info.metadata.get("field", "")


async def test_an_empty_batch_is_invalid(ledger: Stub) -> None:
    assert await _invalid(ledger, service_pb2.CreateTransfersRequest()) == (
        "INVALID_FIELD",
        "transfers",
    )


async def test_a_batch_over_8189_transfers_is_too_large_and_moves_nothing(ledger: Stub) -> None:
    a, b = await _open(ledger, "a"), await _open(ledger, "b")
    request = service_pb2.CreateTransfersRequest(transfers=[_transfer(a, b, 1)] * 8190)
    assert await _invalid(ledger, request) == ("BATCH_TOO_LARGE", "transfers")
    assert await _totals(ledger, a) == [(0, 0)]


async def test_a_full_batch_of_8189_transfers_applies(ledger: Stub) -> None:
    a, b = await _open(ledger, "a"), await _open(ledger, "b")
    prefix = _id("bulk")
    transfers = [_transfer(a, b, 3, transfer_id=f"{prefix}-{i}") for i in range(8189)]
    assert await _submit(ledger, *transfers) == [T.CREATE_TRANSFER_RESULT_OK] * 8189
    assert await _totals(ledger, a, b) == [(3 * 8189, 0), (0, 3 * 8189)]


@pytest.mark.parametrize("user_data", ["u" * 257, "nul\x00"])
async def test_user_data_is_bounded_text(ledger: Stub, user_data: str) -> None:
    request = service_pb2.CreateTransfersRequest(
        transfers=[_transfer("a", "b", 1), _transfer("a", "b", 1, user_data=user_data)]
    )
    assert await _invalid(ledger, request) == ("INVALID_FIELD", "transfers[1].user_data")
