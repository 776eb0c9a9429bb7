"""ListAccountTransfers and ListAccountBalances: filters, order and pagination."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import grpc
import pytest

from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_runtime.errors import error_info_of
from services.ledger.tests.ledger_helpers import T, new_id, open_account, submit, transfer

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

HISTORY = resources_pb2.AccountFlags(history=True)


async def _list_transfers(ledger: Stub, **filter_fields: object) -> list[str]:
    """Every page, two transfers at a time."""
    ids: list[str] = []
    token = ""
    while True:
        response = await ledger.ListAccountTransfers(
            service_pb2.ListAccountTransfersRequest(
                filter=service_pb2.AccountFilter(**filter_fields),  # type: ignore[arg-type]
                page_size=2,
                page_token=token,
            )
        )
        ids += [t.id for t in response.transfers]
        token = response.next_page_token
        if not token:
            return ids


async def test_transfers_of_an_account_are_listed_in_journal_order(ledger: Stub) -> None:
    a, b, c = [await open_account(ledger, n) for n in ("a", "b", "c")]
    moves = [transfer(a, b, 1), transfer(b, c, 1), transfer(c, a, 1), transfer(b, a, 2)]
    for move in moves:
        assert await submit(ledger, move) == [T.CREATE_TRANSFER_RESULT_OK]
    ids = [m.id for m in moves]
    assert await _list_transfers(ledger, account_id=a) == [ids[0], ids[2], ids[3]]
    assert await _list_transfers(ledger, account_id=a, debits=True) == [ids[0]]
    assert await _list_transfers(ledger, account_id=a, credits=True) == [ids[2], ids[3]]
    assert await _list_transfers(ledger, account_id=a, reversed=True) == [ids[3], ids[2], ids[0]]


async def test_balances_after_each_transfer_are_kept_for_history_accounts(ledger: Stub) -> None:
    source = await open_account(ledger, "source")
    kept = await open_account(ledger, "kept", flags=HISTORY)
    for amount in (5, 7, 11):
        assert await submit(ledger, transfer(source, kept, amount)) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await submit(ledger, transfer(kept, source, 3)) == [T.CREATE_TRANSFER_RESULT_OK]
    response = await ledger.ListAccountBalances(
        service_pb2.ListAccountBalancesRequest(filter=service_pb2.AccountFilter(account_id=kept))
    )
    assert [(b.debits_posted, b.credits_posted) for b in response.balances] == [
        (0, 5),
        (0, 12),
        (0, 23),
        (3, 23),
    ]
    positions = [b.position for b in response.balances]
    assert positions == sorted(positions)
    plain = await ledger.ListAccountBalances(
        service_pb2.ListAccountBalancesRequest(filter=service_pb2.AccountFilter(account_id=source))
    )
    assert list(plain.balances) == []


async def _error(call: object) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info_of(caught.value)
    assert info is not None
    return caught.value.code(), info.reason, info.metadata.get("field", "")


async def test_list_errors_name_what_is_wrong(ledger: Stub) -> None:
    a = await open_account(ledger, "a")
    missing = ledger.ListAccountTransfers(
        service_pb2.ListAccountTransfersRequest(
            filter=service_pb2.AccountFilter(account_id=new_id("nobody"))
        )
    )
    assert (await _error(missing))[:2] == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    junk = ledger.ListAccountTransfers(
        service_pb2.ListAccountTransfersRequest(
            filter=service_pb2.AccountFilter(account_id=a), page_token="not-a-token"
        )
    )
    assert await _error(junk) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "page_token")
    unfiltered = ledger.ListAccountTransfers(service_pb2.ListAccountTransfersRequest())
    assert await _error(unfiltered) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "filter.account_id",
    )


async def test_a_page_token_only_continues_the_filter_it_came_from(ledger: Stub) -> None:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    assert (
        await submit(ledger, *(transfer(a, b, 1) for _ in range(3)))
        == [T.CREATE_TRANSFER_RESULT_OK] * 3
    )
    first = await ledger.ListAccountTransfers(
        service_pb2.ListAccountTransfersRequest(
            filter=service_pb2.AccountFilter(account_id=a), page_size=1
        )
    )
    assert first.next_page_token
    other = ledger.ListAccountTransfers(
        service_pb2.ListAccountTransfersRequest(
            filter=service_pb2.AccountFilter(account_id=b), page_token=first.next_page_token
        )
    )
    assert await _error(other) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "page_token")


async def test_a_malformed_account_id_in_a_filter_is_invalid(ledger: Stub) -> None:
    call = ledger.ListAccountTransfers(
        service_pb2.ListAccountTransfersRequest(
            filter=service_pb2.AccountFilter(account_id="not an id!")
        )
    )
    assert await _error(call) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "filter.account_id",
    )


async def test_a_page_token_past_the_journal_bound_is_invalid(ledger: Stub) -> None:
    a = await open_account(ledger, "a")
    forged = base64.urlsafe_b64encode(json.dumps({"after": 2**70, "filter": "x"}).encode()).decode()
    call = ledger.ListAccountTransfers(
        service_pb2.ListAccountTransfersRequest(
            filter=service_pb2.AccountFilter(account_id=a), page_token=forged
        )
    )
    assert await _error(call) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "page_token")
