"""The gRPC face of the ledger: parse, apply through the batcher or read, answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
from grpc_status import rpc_status
from typing_extensions import override

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_ledger import parse
from openloop_ledger.batcher import Batcher
from openloop_ledger.log import CheckpointRecord, LogReader
from openloop_ledger.render import (
    account_message,
    balance_message,
    transfer_message,
)
from openloop_ledger.store import LedgerStore
from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.timestamps import to_timestamp
from openloop_runtime.tracing import StreamedRequestSpans

STREAMING_CREATE_TRANSFERS = "/openloop.ledger.v1.LedgerService/StreamingCreateTransfers"
JOURNAL_PAGE = 1024
"""Entries per WatchJournal message."""
JOURNAL_POLL_SECONDS = 0.2
"""How often a follower looks for entries other replicas committed."""


class LedgerServicer(service_pb2_grpc.LedgerServiceServicer):
    """openloop.ledger.v1.LedgerService.

    A malformed request fails as a whole with INVALID_ARGUMENT. A well-formed one
    always succeeds at the RPC level and carries one result code per event: an
    event that fails changes nothing, while the others in the batch still apply.
    """

    def __init__(self, store: LedgerStore, batcher: Batcher, log: LogReader) -> None:
        self._store = store
        self._batcher = batcher
        self._log = log
        self._requests = StreamedRequestSpans(STREAMING_CREATE_TRANSFERS)
        self._idle_streams: set[grpc.aio.ServicerContext] = set()
        self._stopping = False

    @override
    async def CreateAccounts(
        self, request: service_pb2.CreateAccountsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CreateAccountsResponse:
        results = await self._store.create_accounts(parse.account_specs(request))
        return service_pb2.CreateAccountsResponse(results=results)

    @override
    async def CreateTransfers(
        self, request: service_pb2.CreateTransfersRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CreateTransfersResponse:
        results = await self._batcher.create_transfers(parse.transfer_specs(request))
        return service_pb2.CreateTransfersResponse(results=results)

    @override
    async def StreamingCreateTransfers(
        self,
        request_iterator: AsyncIterator[service_pb2.StreamingCreateTransfersRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[service_pb2.StreamingCreateTransfersResponse]:
        # One request at a time: the next is read once this one is answered, so the
        # answers come in request order and a stream holds one batch slot at most.
        while not self._stopping:
            self._idle_streams.add(context)
            try:
                request = await anext(request_iterator, None)
            except BaseException:
                self._idle_streams.discard(context)
                raise
            if context not in self._idle_streams:
                # A stopping server took this stream while it waited and has ended it with
                # UNAVAILABLE: a request that arrived meanwhile is not applied (its caller
                # has been told to resend it), and the stream is not ended a second time.
                return
            self._idle_streams.discard(context)
            if request is None:
                return
            with self._requests.serve(request.trace_context):
                results = await self._batcher.create_transfers(parse.transfer_specs(request))
            yield service_pb2.StreamingCreateTransfersResponse(results=results)
        raise _stream_ended()

    async def end_idle_streams(self, domain: str) -> None:
        """The server is stopping: streams waiting for a request end now with UNAVAILABLE,
        the others once their request in progress is answered, so a stop does not wait its
        grace period for the gateway's idle streams. Their clients open new ones (on
        another replica, or here once it is back)."""
        self._stopping = True
        status = rpc_status.to_status(_stream_ended().to_status(domain))
        # One at a time, each taken out of the set before it is ended: a stream whose
        # request arrives while the others are being ended is still in the set, and is
        # answered (then ended) by its own handler instead; ending it here as well would
        # abort it twice (gRPC's UsageError) and leave the server's stop undone.
        while self._idle_streams:
            context = self._idle_streams.pop()
            # AbortError is an abort that worked. A stream its client cancelled a moment ago
            # cannot be aborted (gRPC raises its own ExecuteBatchError): it has ended anyway,
            # and must not keep the others from being ended nor the server from stopping.
            with contextlib.suppress(Exception):
                await context.abort(
                    status.code, status.details, trailing_metadata=status.trailing_metadata
                )

    @override
    async def LookupAccounts(
        self, request: service_pb2.LookupAccountsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.LookupAccountsResponse:
        found = await self._store.lookup_accounts(parse.lookup_ids(request.ids))
        return service_pb2.LookupAccountsResponse(accounts=[account_message(a) for a in found])

    @override
    async def LookupTransfers(
        self, request: service_pb2.LookupTransfersRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.LookupTransfersResponse:
        found = await self._store.lookup_transfers(parse.lookup_ids(request.ids))
        return service_pb2.LookupTransfersResponse(transfers=[transfer_message(t) for t in found])

    @override
    async def ListAccountTransfers(
        self, request: service_pb2.ListAccountTransfersRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListAccountTransfersResponse:
        page = await self._store.list_account_transfers(
            parse.account_filter(request.filter),
            parse.page_size(request.page_size),
            request.page_token,
        )
        return service_pb2.ListAccountTransfersResponse(
            transfers=[transfer_message(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    @override
    async def ListAccountBalances(
        self, request: service_pb2.ListAccountBalancesRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListAccountBalancesResponse:
        page = await self._store.list_account_balances(
            parse.account_filter(request.filter),
            parse.page_size(request.page_size),
            request.page_token,
        )
        return service_pb2.ListAccountBalancesResponse(
            balances=[balance_message(b) for b in page.items],
            next_page_token=page.next_page_token,
        )

    @override
    async def WatchJournal(
        self, request: service_pb2.WatchJournalRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[service_pb2.WatchJournalResponse]:
        position = parse.position(request.start_position, "start_position")
        while True:
            entries = await self._store.journal(position, JOURNAL_PAGE)
            if entries:
                yield service_pb2.WatchJournalResponse(
                    entries=[
                        resources_pb2.JournalEntry(
                            position=t.position, transfer=transfer_message(t)
                        )
                        for t in entries
                    ]
                )
                position += len(entries)
                continue
            await self._next_commit()

    async def _next_commit(self) -> None:
        """Wait for this replica's next commit, or a poll interval for other replicas'."""
        committed = self._batcher.committed
        async with committed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(committed.wait(), JOURNAL_POLL_SECONDS)

    @override
    async def GetCheckpoint(
        self, request: service_pb2.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetCheckpointResponse:
        checkpoint = await self._log.checkpoint(parse.position(request.tree_size, "tree_size"))
        return service_pb2.GetCheckpointResponse(checkpoint=checkpoint_message(checkpoint))

    @override
    async def GetInclusionProof(
        self, request: service_pb2.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetInclusionProofResponse:
        leaf = request.WhichOneof("leaf")
        proof = await self._log.inclusion_proof(
            transfer_id=request.transfer_id if leaf == "transfer_id" else None,
            leaf_index=parse.position(request.leaf_index, "leaf_index")
            if leaf == "leaf_index"
            else None,
            tree_size=parse.position(request.tree_size, "tree_size"),
        )
        return service_pb2.GetInclusionProofResponse(
            leaf_index=proof.leaf_index,
            leaf=proof.leaf,
            hashes=proof.hashes,
            checkpoint=checkpoint_message(proof.checkpoint),
        )

    @override
    async def GetConsistencyProof(
        self, request: service_pb2.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetConsistencyProofResponse:
        proof = await self._log.consistency_proof(
            parse.position(request.first_tree_size, "first_tree_size"),
            parse.position(request.second_tree_size, "second_tree_size"),
        )
        return service_pb2.GetConsistencyProofResponse(
            hashes=proof.hashes,
            first=checkpoint_message(proof.first),
            second=checkpoint_message(proof.second),
        )


def _stream_ended() -> DomainError:
    """Why a stopping ledger ends a stream between requests: every request sent before
    was answered, and none after it was read."""
    return DomainError(
        grpc.StatusCode.UNAVAILABLE,
        ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        "the ledger is stopping; send the next request on a new stream",
        {"upstream": "ledger"},
    )


def checkpoint_message(checkpoint: CheckpointRecord) -> resources_pb2.Checkpoint:
    return resources_pb2.Checkpoint(
        origin=checkpoint.origin,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        signed_note=checkpoint.signed_note,
        create_time=to_timestamp(checkpoint.create_time),
    )
