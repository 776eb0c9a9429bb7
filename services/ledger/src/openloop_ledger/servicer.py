"""The gRPC face of the ledger: parse, apply through the store, answer."""

from __future__ import annotations

import grpc
from typing_extensions import override

from openloop.ledger.v1 import service_pb2, service_pb2_grpc
from openloop_ledger import parse
from openloop_ledger.render import account_message, transfer_message
from openloop_ledger.store import LedgerStore


class LedgerServicer(service_pb2_grpc.LedgerServiceServicer):
    """openloop.ledger.v1.LedgerService.

    A malformed request fails as a whole with INVALID_ARGUMENT. A well-formed one
    always succeeds at the RPC level and carries one result code per event: an
    event that fails changes nothing, while the others in the batch still apply.
    """

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

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
        results = await self._store.create_transfers(parse.transfer_specs(request))
        return service_pb2.CreateTransfersResponse(results=results)

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
