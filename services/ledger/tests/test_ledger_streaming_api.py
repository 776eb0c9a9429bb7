"""StreamingCreateTransfers through a real server and PostgreSQL: each message applied as a
CreateTransfers call would be, answered in order, and a malformed one ending the stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
from grpc._cython import cygrpc

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_ledger.app import build
from openloop_ledger.config import LedgerSettings
from openloop_ledger.servicer import STREAMING_CREATE_TRANSFERS, LedgerServicer
from openloop_runtime.errors import error_info_of
from openloop_runtime.interceptors import ErrorMappingInterceptor
from openloop_runtime.server import running_server
from openloop_runtime.wrapping import StreamBehavior
from services.ledger.tests.ledger_helpers import WALLET, T, balances, open_account, submit, transfer

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

OK = T.CREATE_TRANSFER_RESULT_OK


def _request(*transfers: resources_pb2.Transfer) -> service_pb2.StreamingCreateTransfersRequest:
    return service_pb2.StreamingCreateTransfersRequest(transfers=transfers)


async def _exchange(stream: Any, *transfers: resources_pb2.Transfer) -> list[int]:
    await stream.write(_request(*transfers))
    reply = await stream.read()
    assert reply is not grpc.aio.EOF
    return list(reply.results)


async def test_each_request_is_answered_in_order_with_createtransfers_results(
    ledger: Stub,
) -> None:
    bank, wallet = await open_account(ledger, "bank"), await open_account(ledger, "w", flags=WALLET)
    funding, spend, overspend = (
        transfer(bank, wallet, 500),
        transfer(wallet, bank, 200),
        transfer(wallet, bank, 301),
    )
    stream = ledger.StreamingCreateTransfers()
    assert await _exchange(stream, funding) == [OK]
    assert await _exchange(stream, spend, overspend) == [
        OK,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
    ]
    # The same transfer again is idempotent, on the stream as in a call.
    assert await _exchange(stream, funding) == [T.CREATE_TRANSFER_RESULT_EXISTS]
    await stream.done_writing()
    assert await stream.read() is grpc.aio.EOF
    assert await stream.code() == grpc.StatusCode.OK
    assert await balances(ledger, wallet) == (0, 200, 0, 500)
    # A call sees what the stream applied.
    assert await submit(ledger, spend) == [T.CREATE_TRANSFER_RESULT_EXISTS]


async def test_requests_written_ahead_are_answered_one_by_one_in_order(ledger: Stub) -> None:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    transfers = [transfer(a, b, amount) for amount in range(1, 11)]
    stream = ledger.StreamingCreateTransfers()
    for t in transfers:
        await stream.write(_request(t, t))  # each twice: OK, then EXISTS within the request
    await stream.done_writing()
    replies = [list(reply.results) async for reply in stream]
    assert replies == [[OK, T.CREATE_TRANSFER_RESULT_EXISTS]] * 10
    assert await balances(ledger, b) == (0, 0, 0, sum(range(1, 11)))


@pytest.mark.parametrize(
    ("malformed", "reason", "field"),
    [
        ([], "INVALID_FIELD", "transfers"),
        ("too many", "BATCH_TOO_LARGE", "transfers"),
        ("position", "INVALID_FIELD", "transfers[1].position"),
    ],
)
async def test_a_malformed_request_ends_the_stream_and_applies_nothing_of_itself(
    ledger: Stub, malformed: object, reason: str, field: str
) -> None:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    before = transfer(a, b, 7)
    if malformed == "too many":
        bad = _request(*[transfer(a, b, 1)] * 8190)
    elif malformed == "position":
        bad = _request(transfer(a, b, 1), transfer(a, b, 1, position=5))
    else:
        bad = _request()
    stream = ledger.StreamingCreateTransfers()
    assert await _exchange(stream, before) == [OK]
    await stream.write(bad)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    assert (info.reason, info.metadata.get("field")) == (reason, field)
    # Only the request answered before the malformed one moved money.
    assert await balances(ledger, b) == (0, 0, 0, 7)


async def test_many_streams_on_one_wallet_never_overdraw_it(ledger: Stub) -> None:
    """Thirty-two streams each spend from one wallet funded for exactly 100 spends."""
    bank, wallet = await open_account(ledger, "bank"), await open_account(ledger, "w", flags=WALLET)
    assert await submit(ledger, transfer(bank, wallet, 100 * 3)) == [OK]

    async def spender() -> list[int]:
        stream = ledger.StreamingCreateTransfers()
        results: list[int] = []
        for _ in range(5):
            results += await _exchange(stream, transfer(wallet, bank, 3))
        await stream.done_writing()
        return results

    outcomes = [
        r for results in await asyncio.gather(*(spender() for _ in range(32))) for r in results
    ]
    assert outcomes.count(OK) == 100
    assert outcomes.count(T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS) == 60
    assert await balances(ledger, wallet) == (0, 300, 0, 300)
    assert await balances(ledger, bank) == (0, 300, 0, 300)


async def test_a_stopping_ledger_ends_its_idle_streams_at_once(ledger_database: str) -> None:
    """A stream waiting for its next request would hold the stop for the whole grace
    period; it ends with UNAVAILABLE instead, and a stream that opens meanwhile too."""
    settings = LedgerSettings(port=0, database_url=ledger_database, grace_period_seconds=30)
    async with running_server("ledger.openloop.dev", settings, build(settings)) as running:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        stub: Any = service_pb2_grpc.LedgerServiceStub(channel)
        a, b = await open_account(stub, "a"), await open_account(stub, "b")
        stream = stub.StreamingCreateTransfers()
        assert await _exchange(stream, transfer(a, b, 1)) == [OK]
        started = time.monotonic()
        await running.stop(settings.grace_period_seconds)
        stopped_after = time.monotonic() - started
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        await channel.close()
    assert stopped_after < 5
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info_of(caught.value)
    assert info is not None
    assert (info.reason, info.domain) == ("UPSTREAM_UNAVAILABLE", "ledger.openloop.dev")
    assert caught.value.details() == "the ledger is stopping; send the next request on a new stream"


class _Context:
    """A ServicerContext as far as ending a call goes: gRPC refuses a second abort."""

    def __init__(self) -> None:
        self.aborted: list[grpc.StatusCode] = []

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        if self.aborted:
            raise grpc.aio.UsageError("Abort already called!")
        self.aborted.append(code)
        await asyncio.sleep(0.01)  # the status on its way: other streams' requests go on
        raise grpc.aio.AbortError("Locally aborted.")


class _Batcher:
    def __init__(self) -> None:
        self.applied: list[str] = []

    async def create_transfers(self, specs: Any) -> list[int]:
        self.applied += [spec.id for spec in specs]
        await asyncio.sleep(0)
        return [OK] * len(specs)


async def test_requests_arriving_while_the_ledger_ends_its_idle_streams() -> None:
    """Two streams wait for their next request when the ledger starts to stop, and both
    requests arrive while it ends the first. The stream it ended first does not apply its
    request (its caller hears UNAVAILABLE, so it must not move money behind it); the other
    answers its request, then ends: each stream is ended once, and the stop goes on (gRPC
    refuses a second abort of one call, which would leave the server's stop undone)."""
    batcher = _Batcher()
    servicer = LedgerServicer(store=None, batcher=batcher, log=None)  # type: ignore[arg-type]
    guarded = ErrorMappingInterceptor("ledger.openloop.dev").wrap_stream(
        # An async generator function, typed as the generated servicer's AsyncIterator.
        STREAMING_CREATE_TRANSFERS,
        cast("StreamBehavior", servicer.StreamingCreateTransfers),
    )
    a, b = "a", "b"
    queues = {name: asyncio.Queue[Any]() for name in (a, b)}
    contexts = {name: _Context() for name in (a, b)}
    answered: dict[str, list[str]] = {a: [], b: []}
    answers = asyncio.Queue[str]()

    async def requests(name: str) -> AsyncIterator[Any]:
        while (request := await queues[name].get()) is not None:
            yield request

    async def serve(name: str) -> None:
        with contextlib.suppress(grpc.aio.AbortError):
            async for reply in guarded(requests(name), contexts[name]):
                answered[name].append(str(list(reply.results)))
                answers.put_nowait(name)

    streams = [asyncio.create_task(serve(name)) for name in (a, b)]
    for name in (a, b):
        queues[name].put_nowait(_request(transfer("x", "y", 1, transfer_id=f"{name}-1")))
    for _ in (a, b):
        await asyncio.wait_for(answers.get(), 5)
    await asyncio.sleep(0.01)  # both back to waiting for their next request
    for name in (a, b):
        queues[name].put_nowait(_request(transfer("x", "y", 1, transfer_id=f"{name}-2")))
    await servicer.end_idle_streams("ledger.openloop.dev")
    await asyncio.wait_for(asyncio.gather(*streams), 5)

    ended_first = next(n for n in (a, b) if not answered[n][1:])
    other = b if ended_first == a else a
    assert f"{ended_first}-2" not in batcher.applied
    assert f"{other}-2" in batcher.applied
    assert answered[other] == [str([OK])] * 2
    assert [context.aborted for context in contexts.values()] == [[grpc.StatusCode.UNAVAILABLE]] * 2


class _CancelledContext(_Context):
    """A stream its client cancelled as the ledger began to stop: gRPC cannot abort it."""

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        raise cygrpc.ExecuteBatchError('Failed "execute_batch"')


async def test_a_stream_cancelled_as_the_ledger_stops_does_not_stop_the_drain() -> None:
    servicer = LedgerServicer(store=None, batcher=_Batcher(), log=None)  # type: ignore[arg-type]
    cancelled, idle = _CancelledContext(), _Context()
    servicer._idle_streams.update((cancelled, idle))  # two streams waiting for a request
    await servicer.end_idle_streams("ledger.openloop.dev")
    assert idle.aborted == [grpc.StatusCode.UNAVAILABLE]
