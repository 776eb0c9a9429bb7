"""The gateway's transfers over ledger streams, against a real ledger and PostgreSQL: streams
reused while they work, dropped when they fail, and a ledger restart survived."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop_dev.ports import free_port
from openloop_gateway.ledger_streams import METHOD, TransferStreams
from openloop_ledger.app import MIGRATIONS_DIR, build
from openloop_ledger.config import LedgerSettings
from openloop_runtime import migrations
from openloop_runtime.clients import open_channel
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
    # The gateway's own channel: gRPC's default reconnect backoff (1 s, then 1.6 s, ...)
    # would outlast the one-second timeout of the restart test below half the time.
    async with open_channel(f"127.0.0.1:{settings.port}") as channel:
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
        ),
        wait_for_ready=True,  # the ledger may have just started again
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


def _failure(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class _Stream:
    """A StreamingCreateTransfers call as TransferStreams uses it; ``fail`` is what its next
    exchange meets: an error its ``write`` or ``read`` raises, the ledger's end of the
    stream (EOF), or no answer at all (``hang``)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.trace_contexts: list[dict[str, str]] = []
        self.fail: tuple[str, object] | None = None
        self.cancelled = self.half_closed = False

    def done(self) -> bool:
        return self.cancelled

    def cancel(self) -> None:
        self.cancelled = True

    async def done_writing(self) -> None:
        self.half_closed = True

    async def write(self, request: ledger_pb2.StreamingCreateTransfersRequest) -> None:
        if self.fail is not None and self.fail[0] == "write":
            raise self.fail[1]  # type: ignore[misc]
        self.sent += [t.id for t in request.transfers]
        self.trace_contexts.append(dict(request.trace_context))

    async def read(self) -> object:
        if self.fail == ("read", "hang"):
            await asyncio.Event().wait()
        if self.fail == ("read", "EOF"):
            return grpc.aio.EOF
        if self.fail is not None and self.fail[0] == "read":
            raise self.fail[1]  # type: ignore[misc]
        return ledger_pb2.StreamingCreateTransfersResponse(results=[OK])


class _Channel:
    """Opens the next of ``streams`` for each StreamingCreateTransfers call."""

    def __init__(self, *streams: _Stream) -> None:
        self._streams = iter(streams)
        self.opened: list[_Stream] = []

    def stream_stream(self, *_: object, **__: object) -> object:
        def open_stream(**__: object) -> _Stream:
            stream = next(self._streams)
            self.opened.append(stream)
            return stream

        return open_stream

    def unary_unary(self, *_: object, **__: object) -> None:
        return None

    unary_stream = stream_unary = unary_unary


def _fake_streams(*streams: _Stream, timeout: float = 5) -> tuple[TransferStreams, _Channel]:
    channel = _Channel(*streams)
    return TransferStreams(channel, timeout=timeout), channel


@pytest.mark.parametrize(
    "broken",
    [
        # What gRPC reports when the write races the ledger's end of the stream.
        ("write", _failure(grpc.StatusCode.INTERNAL, "Internal error from Core")),
        ("write", _failure(grpc.StatusCode.UNAVAILABLE, "stopping")),
        ("read", _failure(grpc.StatusCode.UNAVAILABLE, "stopping")),
        ("read", "EOF"),
    ],
    ids=["write-internal", "write-unavailable", "read-unavailable", "read-eof"],
)
async def test_a_stream_the_ledger_ended_while_idle_is_replaced_once(broken) -> None:
    """A ledger that stops ends the gateway's idle streams; a payment that takes one before
    the gateway has seen the end is sent again on a new stream, not failed (and never as
    INTERNAL, which tells the bank to call support)."""
    reused, fresh = _Stream(), _Stream()
    streams, channel = _fake_streams(reused, fresh)
    assert await streams.create_transfers([_transfer("a", "b", "first")]) == [OK]
    reused.fail = broken
    again = _transfer("a", "b", "second")
    assert await streams.create_transfers([again]) == [OK]
    assert channel.opened == [reused, fresh]
    assert fresh.sent == [again.id]
    assert reused.cancelled
    assert streams.idle == 1


async def test_a_new_stream_that_fails_is_not_retried() -> None:
    reused, fresh = _Stream(), _Stream()
    streams, channel = _fake_streams(reused, fresh)
    assert await streams.create_transfers([_transfer("a", "b", "first")]) == [OK]
    reused.fail = fresh.fail = ("read", _failure(grpc.StatusCode.UNAVAILABLE, "stopping"))
    with pytest.raises(DomainError) as caught:
        await streams.create_transfers([_transfer("a", "b", "second")])
    assert (caught.value.code, caught.value.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "UPSTREAM_UNAVAILABLE",
    )
    assert channel.opened == [reused, fresh]  # one retry, on a new stream
    assert reused.cancelled
    assert fresh.cancelled
    assert streams.idle == 0


async def test_a_refusal_on_a_reused_stream_is_not_sent_again() -> None:
    reused = _Stream()
    streams, channel = _fake_streams(reused)
    assert await streams.create_transfers([_transfer("a", "b", "first")]) == [OK]
    reused.fail = ("read", _failure(grpc.StatusCode.INVALID_ARGUMENT, "malformed"))
    with pytest.raises(DomainError):
        await streams.create_transfers([_transfer("a", "b", "second")])
    assert channel.opened == [reused]
    assert reused.cancelled


async def test_a_stream_that_timed_out_is_cancelled_and_its_late_answer_never_read() -> None:
    slow, fresh = _Stream(), _Stream()
    slow.fail = ("read", "hang")
    streams, channel = _fake_streams(slow, fresh, timeout=0.05)
    with pytest.raises(DomainError) as caught:
        await streams.create_transfers([_transfer("a", "b", "slow")])
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert slow.cancelled
    assert streams.idle == 0
    nxt = _transfer("a", "b", "next")
    assert await streams.create_transfers([nxt]) == [OK]
    assert channel.opened == [slow, fresh]
    assert (slow.sent, fresh.sent) == ([slow.sent[0]], [nxt.id])


async def test_payments_in_flight_when_the_ledger_stops_end_applied_or_unavailable(
    settings: LedgerSettings, channel: grpc.aio.Channel
) -> None:
    """Sixteen payments at a time go on while the ledger stops: each ends applied or
    UNAVAILABLE (the bank retries with its idempotency key), none INTERNAL, and the
    ledger's stop completes."""
    streams = TransferStreams(channel, timeout=0.5)
    outcomes: list[str] = []
    enough = asyncio.Event()
    running = True

    async def payer(n: int) -> None:
        for k in itertools.count():
            if not running:
                return
            try:
                assert await streams.create_transfers([_transfer(a, b, f"p{n}-{k}")]) == [OK]
                outcomes.append("OK")
                if len(outcomes) == 64:
                    enough.set()  # the ledger stops while payments go on
            except DomainError as error:
                outcomes.append(error.code.name)
                return

    async with running_server("ledger.openloop.dev", settings, build(settings)):
        a, b = await _accounts_pair(channel)
        payers = [asyncio.create_task(payer(n)) for n in range(16)]
        await enough.wait()
    running = False
    await asyncio.gather(*payers)
    assert set(outcomes) <= {"OK", "UNAVAILABLE"}, collections.Counter(outcomes)
    await streams.close()


async def test_each_transfer_carries_its_own_client_spans_context_in_the_payments_trace() -> None:
    """The ledger joins a payment's trace only through the context in the message: each
    request sends its own CLIENT span's, a child of the payment's span, also when resent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reused, fresh = _Stream(), _Stream()
    streams = TransferStreams(_Channel(reused, fresh), timeout=5, tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("Pay") as payment:
        assert await streams.create_transfers([_transfer("a", "b", "first")]) == [OK]
        reused.fail = ("read", "EOF")
        assert await streams.create_transfers([_transfer("a", "b", "second")]) == [OK]

    calls = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.name for s in calls] == [f"{METHOD} request"] * 2
    sent = [*reused.trace_contexts, *fresh.trace_contexts]  # first, second, second resent
    expected = [calls[0], calls[1], calls[1]]
    for context, span in zip(sent, expected, strict=True):
        _, trace_id, span_id, flags = context["traceparent"].split("-")
        assert (trace_id, span_id) == (
            f"{span.context.trace_id:032x}",
            f"{span.context.span_id:016x}",
        )
        assert int(flags, 16) & 1  # sampled
    for span in calls:
        assert span.context.trace_id == payment.get_span_context().trace_id
        assert span.parent is not None
        assert span.parent.span_id == payment.get_span_context().span_id
