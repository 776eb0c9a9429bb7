"""The gateway's transfers over ledger streams, against a real ledger and PostgreSQL: streams
reused while they work, dropped when they fail, and a ledger restart survived."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop_dev.ports import free_port
from openloop_gateway.ledger_streams import TransferStreams
from openloop_ledger.app import MIGRATIONS_DIR, build
from openloop_ledger.config import LedgerSettings
from openloop_runtime import migrations
from openloop_runtime.errors import DomainError
from openloop_runtime.server import running_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

T = ledger_resources.CreateTransferResult
OK = T.CREATE_TRANSFER_RESULT_OK


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def settings(fresh_database) -> LedgerSettings:
    url = await fresh_database("gateway_streams_ledger")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    return LedgerSettings(port=free_port(), database_url=url, grace_period_seconds=30)


@pytest_asyncio.fixture(loop_scope="session")
async def channel(settings: LedgerSettings) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
        yield channel


_accounts = iter(range(10**6))


async def _accounts_pair(channel: grpc.aio.Channel) -> tuple[str, str]:
    n = next(_accounts)
    ids = (f"a-{n}-{time.time_ns()}", f"b-{n}-{time.time_ns()}")
    stub = ledger_grpc.LedgerServiceStub(channel)
    reply = await stub.CreateAccounts(
        ledger_pb2.CreateAccountsRequest(
            accounts=[
                ledger_resources.Account(id=i, ledger=764, code=1, participant="participants/b")
                for i in ids
            ]
        )
    )
    assert set(reply.results) == {ledger_resources.CREATE_ACCOUNT_RESULT_OK}
    return ids


def _transfer(debit: str, credit: str, label: str, **fields: object) -> ledger_resources.Transfer:
    message = ledger_resources.Transfer(
        id=f"{label}-{time.time_ns()}",
        debit_account_id=debit,
        credit_account_id=credit,
        amount=1,
        ledger=764,
        code=1,
    )
    for name, value in fields.items():
        setattr(message, name, value)
    return message


async def test_transfers_reuse_idle_streams_and_keep_at_most_keep_idle(
    settings: LedgerSettings, channel: grpc.aio.Channel
) -> None:
    async with running_server("ledger.openloop.dev", settings, build(settings)):
        streams = TransferStreams(channel, timeout=5, keep_idle=3)
        a, b = await _accounts_pair(channel)
        for n in range(4):
            assert await streams.create_transfers([_transfer(a, b, f"s{n}")]) == [OK]
            assert streams.idle == 1
        results = await asyncio.gather(
            *(streams.create_transfers([_transfer(a, b, f"c{n}")]) for n in range(8))
        )
        assert results == [[OK]] * 8
        assert streams.idle == 3
        # A transfer sent again answers EXISTS, as a retry after a lost answer would.
        again = _transfer(a, b, "again")
        assert await streams.create_transfers([again]) == [OK]
        assert await streams.create_transfers([again]) == [T.CREATE_TRANSFER_RESULT_EXISTS]
        await streams.close()
        assert streams.idle == 0


async def test_a_refused_request_passes_the_ledgers_reason_on_and_drops_its_stream(
    settings: LedgerSettings, channel: grpc.aio.Channel
) -> None:
    async with running_server("ledger.openloop.dev", settings, build(settings)):
        streams = TransferStreams(channel, timeout=5)
        a, b = await _accounts_pair(channel)
        assert await streams.create_transfers([_transfer(a, b, "before")]) == [OK]
        with pytest.raises(DomainError) as caught:
            await streams.create_transfers([_transfer(a, b, "bad", position=3)])
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.reason == "INVALID_FIELD"
        assert caught.value.metadata["field"] == "transfers[0].position"
        assert streams.idle == 0  # the stream the ledger ended is not kept
        assert await streams.create_transfers([_transfer(a, b, "after")]) == [OK]
        await streams.close()


async def test_a_ledger_restart_costs_no_payment_and_a_stopped_one_is_unavailable(
    settings: LedgerSettings, channel: grpc.aio.Channel
) -> None:
    streams = TransferStreams(channel, timeout=1)
    async with running_server("ledger.openloop.dev", settings, build(settings)):
        a, b = await _accounts_pair(channel)
        assert await streams.create_transfers([_transfer(a, b, "first")]) == [OK]
        assert streams.idle == 1
    # Stopped: the idle stream has ended, and a transfer waits its timeout, then gives up.
    started = time.monotonic()
    with pytest.raises(DomainError) as caught:
        await streams.create_transfers([_transfer(a, b, "while-down")])
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == "UPSTREAM_UNAVAILABLE"
    assert 0.9 < time.monotonic() - started < 5
    async with running_server("ledger.openloop.dev", settings, build(settings)):
        assert await streams.create_transfers([_transfer(a, b, "back")]) == [OK]
        await streams.close()
