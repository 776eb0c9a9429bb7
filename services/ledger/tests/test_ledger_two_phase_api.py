"""Pending, post, void, expiry, linked chains and balancing through a real server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from openloop.ledger.v1 import resources_pb2, service_pb2
from services.ledger.tests.ledger_helpers import (
    WALLET,
    T,
    balances,
    new_id,
    open_account,
    submit,
    transfer,
)

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

PENDING = resources_pb2.TransferFlags(pending=True)
POST = resources_pb2.TransferFlags(post_pending_transfer=True)
VOID = resources_pb2.TransferFlags(void_pending_transfer=True)
LINKED = resources_pb2.TransferFlags(linked=True)


async def _funded_wallet(ledger: Stub, amount: int) -> tuple[str, str, str]:
    funding = await open_account(ledger, "funding")
    wallet = await open_account(ledger, "wallet", flags=WALLET)
    shop = await open_account(ledger, "shop")
    assert await submit(ledger, transfer(funding, wallet, amount)) == [T.CREATE_TRANSFER_RESULT_OK]
    return funding, wallet, shop


async def test_a_pending_transfer_reserves_and_a_partial_post_moves_part(ledger: Stub) -> None:
    _, wallet, shop = await _funded_wallet(ledger, 1_000)
    hold = transfer(wallet, shop, 600, flags=PENDING)
    assert await submit(ledger, hold) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await balances(ledger, wallet) == (600, 0, 0, 1_000)
    # The reservation counts against the wallet's limit.
    assert await submit(ledger, transfer(wallet, shop, 401)) == [
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
    ]
    post = transfer("", "", 250, flags=POST, pending_id=hold.id, ledger=0, code=0)
    assert await submit(ledger, post) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await balances(ledger, wallet) == (0, 250, 0, 1_000)
    assert await balances(ledger, shop) == (0, 0, 0, 250)
    again = transfer("", "", 0, flags=VOID, pending_id=hold.id, ledger=0, code=0)
    assert await submit(ledger, again) == [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED]
    recorded = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=[post.id]))
    [stored] = recorded.transfers
    assert (stored.debit_account_id, stored.credit_account_id, stored.amount) == (
        wallet,
        shop,
        250,
    )


async def test_a_void_releases_the_reservation(ledger: Stub) -> None:
    _, wallet, shop = await _funded_wallet(ledger, 500)
    hold = transfer(wallet, shop, 500, flags=PENDING)
    void = transfer(wallet, shop, 0, flags=VOID, pending_id=hold.id)
    assert await submit(ledger, hold, void) == [T.CREATE_TRANSFER_RESULT_OK] * 2
    assert await balances(ledger, wallet) == (0, 0, 0, 500)
    post = transfer(wallet, shop, 0, flags=POST, pending_id=hold.id)
    assert await submit(ledger, post) == [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED]


async def test_a_timed_out_pending_transfer_expires_on_its_own(ledger: Stub) -> None:
    _, wallet, shop = await _funded_wallet(ledger, 300)
    hold = transfer(wallet, shop, 300, flags=PENDING, timeout=1)
    assert await submit(ledger, hold) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await balances(ledger, wallet) == (300, 0, 0, 300)
    for _ in range(100):
        if await balances(ledger, wallet) == (0, 0, 0, 300):
            break
        await asyncio.sleep(0.05)
    assert await balances(ledger, wallet) == (0, 0, 0, 300)
    assert await balances(ledger, shop) == (0, 0, 0, 0)
    expiry = await ledger.LookupTransfers(
        service_pb2.LookupTransfersRequest(ids=[f"@expiry:{hold.id}"])
    )
    [recorded] = expiry.transfers
    assert recorded.flags.void_pending_transfer
    assert recorded.pending_id == hold.id
    post = transfer(wallet, shop, 0, flags=POST, pending_id=hold.id)
    assert await submit(ledger, post) == [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED]


async def test_a_linked_chain_is_all_or_nothing(ledger: Stub) -> None:
    funding, wallet, shop = await _funded_wallet(ledger, 100)
    chain = [
        transfer(funding, wallet, 50, flags=LINKED),
        transfer(wallet, shop, 120, flags=LINKED),
        transfer(wallet, shop, 10_000),
    ]
    assert await submit(ledger, *chain) == [
        T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED,
        T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
    ]
    assert await balances(ledger, wallet) == (0, 0, 0, 100)
    chain = [transfer(funding, wallet, 50, flags=LINKED), transfer(wallet, shop, 150)]
    assert await submit(ledger, *chain) == [T.CREATE_TRANSFER_RESULT_OK] * 2
    assert await balances(ledger, wallet) == (0, 150, 0, 150)
    open_chain = [transfer(funding, shop, 1), transfer(funding, shop, 1, flags=LINKED)]
    assert await submit(ledger, *open_chain) == [
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN,
    ]


async def test_a_balancing_debit_moves_only_what_the_wallet_holds(ledger: Stub) -> None:
    _, wallet, shop = await _funded_wallet(ledger, 700)
    sweep = transfer(wallet, shop, 10_000, flags=resources_pb2.TransferFlags(balancing_debit=True))
    assert await submit(ledger, sweep) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await balances(ledger, wallet) == (0, 700, 0, 700)
    recorded = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=[sweep.id]))
    assert recorded.transfers[0].amount == 700


async def test_closing_an_account_refuses_transfers_until_voided(ledger: Stub) -> None:
    funding, wallet, shop = await _funded_wallet(ledger, 10)
    closing = transfer(
        funding,
        wallet,
        1,
        flags=resources_pb2.TransferFlags(pending=True, closing_credit=True),
    )
    assert await submit(ledger, closing) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await submit(ledger, transfer(funding, wallet, 1)) == [
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED
    ]
    looked = await ledger.LookupAccounts(service_pb2.LookupAccountsRequest(ids=[wallet]))
    assert looked.accounts[0].flags.closed
    reopen = transfer(funding, wallet, 0, flags=VOID, pending_id=closing.id)
    assert await submit(ledger, reopen) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await submit(ledger, transfer(wallet, shop, 10)) == [T.CREATE_TRANSFER_RESULT_OK]


async def test_concurrent_requests_on_one_hot_account_never_overdraw_it(ledger: Stub) -> None:
    """Many clients drain one funding account with a limit: exactly its credit moves."""
    source = await open_account(ledger, "treasury")
    funding = await open_account(ledger, "funding", flags=WALLET)
    wallets = [await open_account(ledger, "w") for _ in range(8)]
    assert await submit(ledger, transfer(source, funding, 5_000)) == [T.CREATE_TRANSFER_RESULT_OK]

    async def client(wallet: str) -> list[int]:
        results: list[int] = []
        for _ in range(20):
            results += await submit(ledger, transfer(funding, wallet, 37))
        return results

    outcomes = [r for rs in await asyncio.gather(*(client(w) for w in wallets)) for r in rs]
    ok = outcomes.count(T.CREATE_TRANSFER_RESULT_OK)
    assert ok == 5_000 // 37
    assert outcomes.count(T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS) == len(outcomes) - ok
    assert await balances(ledger, funding) == (0, ok * 37, 0, 5_000)


async def test_an_expiry_id_cannot_be_chosen_by_a_client(ledger: Stub) -> None:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    forged = transfer(a, b, 1, transfer_id=f"@expiry:{new_id('x')}")
    assert await submit(ledger, forged) == [T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED]
