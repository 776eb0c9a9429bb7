"""A payment's transfer to the ledger over a long-lived stream (``StreamingCreateTransfers``).

A payment moves its money with one transfer. As a ``CreateTransfers`` call it costs the
ledger about twice the CPU the same request costs on an open stream (the README's ledger
benchmark), so the gateway keeps streams open and sends each transfer on an idle one: one
request in flight per stream, its answer read before the stream is used again, and as many
streams as payments in flight (at most ``keep_idle`` kept once they are done).

A stream whose exchange failed or timed out is cancelled, never reused: its answer could
still arrive and be read as the next request's. A reused stream can have been broken
while idle (the ledger restarted); its request is then sent once more on a new stream.
That is safe whether or not the first attempt was applied: transfers are idempotent by id,
and an applied one answers EXISTS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeAlias

import grpc
from opentelemetry import trace

from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop_runtime.clients import upstream_error, upstream_unavailable
from openloop_runtime.tracing import StreamedRequestSpans

Stream: TypeAlias = Any
"""A ``grpc.aio.StreamStreamCall`` of the method (grpc ships no types)."""

METHOD = "/openloop.ledger.v1.LedgerService/StreamingCreateTransfers"
KEEP_IDLE = 64
"""Idle streams kept open for the next payments; beyond these, a finished one is closed."""


class TransferStreams:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        timeout: float,
        *,
        keep_idle: int = KEEP_IDLE,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        stub: Any = ledger_grpc.LedgerServiceStub(channel)
        self._open = stub.StreamingCreateTransfers
        self._timeout = timeout
        self._keep_idle = keep_idle
        self._idle: list[Stream] = []
        self._spans = StreamedRequestSpans(METHOD, tracer_provider)

    @property
    def idle(self) -> int:
        """Streams open and waiting for a request."""
        return len(self._idle)

    async def create_transfers(
        self, transfers: Sequence[ledger_resources.Transfer]
    ) -> list[ledger_resources.CreateTransferResult.ValueType]:
        """The ledger's result for each transfer, as ``CreateTransfers`` answers them."""
        try:
            with self._spans.call() as trace_context:
                request = ledger_pb2.StreamingCreateTransfersRequest(
                    transfers=transfers, trace_context=trace_context
                )
                async with asyncio.timeout(self._timeout):
                    reply = await self._send(request)
        except grpc.aio.AioRpcError as error:
            raise upstream_error("ledger", error) from error
        except TimeoutError as error:
            raise upstream_unavailable("ledger") from error
        return list(reply.results)

    async def _send(
        self, request: ledger_pb2.StreamingCreateTransfersRequest
    ) -> ledger_pb2.StreamingCreateTransfersResponse:
        stream = self._take_idle()
        if stream is not None:
            try:
                return await self._exchange(stream, request)
            except _StreamEndedError:
                pass
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
        try:
            return await self._exchange(self._open(wait_for_ready=True), request)
        except _StreamEndedError as ended:
            raise upstream_unavailable("ledger") from ended

    def _take_idle(self) -> Stream | None:
        while self._idle:
            stream = self._idle.pop()
            if not stream.done():
                return stream
        return None

    async def _exchange(
        self, stream: Stream, request: ledger_pb2.StreamingCreateTransfersRequest
    ) -> ledger_pb2.StreamingCreateTransfersResponse:
        try:
            await stream.write(request)
        except grpc.aio.AioRpcError as error:
            # The ledger ended the stream before it took this request, which only a stopping
            # or unreachable ledger does: gRPC says UNAVAILABLE, or INTERNAL ("Internal error
            # from Core") when the write raced the end. The request never left.
            stream.cancel()
            raise _StreamEndedError from error
        except BaseException:
            stream.cancel()
            raise
        try:
            reply = await stream.read()
        except BaseException:
            stream.cancel()
            raise
        if reply is grpc.aio.EOF:  # the ledger ended the stream without an error: stopping
            stream.cancel()
            raise _StreamEndedError
        if len(self._idle) < self._keep_idle:
            self._idle.append(stream)
        else:
            await stream.done_writing()
        return reply

    async def close(self) -> None:
        """Ends the idle streams (the ledger sees each end cleanly)."""
        idle, self._idle = self._idle, []
        for stream in idle:
            if not stream.done():
                await stream.done_writing()


class _StreamEndedError(Exception):
    """The ledger ended a stream before answering the request sent on it (stopping): on a
    reused stream the request is sent again on a new one, else the ledger is unavailable."""
