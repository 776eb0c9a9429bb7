"""The gRPC face of settlement: parse, record or read through the store, answer."""

from __future__ import annotations

import grpc
from typing_extensions import override

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.errors import DomainError, ErrorReason
from openloop_settlement import parse
from openloop_settlement.netting import zero_position
from openloop_settlement.paging import encode_token, page_request
from openloop_settlement.render import obligation_message, position_message
from openloop_settlement.store import SettlementStore


class SettlementServicer(service_pb2_grpc.SettlementServiceServicer):
    """openloop.settlement.v1.SettlementService.

    RecordTransfer is idempotent by transfer id: recording the same transfer again
    returns the obligation recorded first and moves no position; the same id with
    other participants or amount is ALREADY_EXISTS / TRANSFER_ID_CONFLICT.

    GetPosition answers a zero position (transfer_count 0, no update_time) for a
    well-formed participant that no inter-participant transfer has touched yet,
    rather than NOT_FOUND: settlement does not own the list of participants
    (identity does), and a bank with nothing recorded stands at zero, which is
    exactly what a settlement report must show for it. ListPositions lists only
    participants that have a position row.
    """

    def __init__(self, store: SettlementStore) -> None:
        self._store = store

    @override
    async def RecordTransfer(
        self, request: service_pb2.RecordTransferRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.RecordTransferResponse:
        record = parse.transfer_record(request)
        recorded = await self._store.record(record)
        if recorded.obligation.record != record:
            raise DomainError(
                grpc.StatusCode.ALREADY_EXISTS,
                ErrorReason.ERROR_REASON_TRANSFER_ID_CONFLICT,
                "transfer_id was recorded before with other participants or amount",
                {"transfer_id": record.transfer_id},
            )
        return service_pb2.RecordTransferResponse(
            obligation=obligation_message(recorded.obligation)
        )

    @override
    async def GetPosition(
        self, request: service_pb2.GetPositionRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetPositionResponse:
        participant_id = parse.position_participant(request.name)
        position = await self._store.position(participant_id) or zero_position(participant_id)
        return service_pb2.GetPositionResponse(position=position_message(position))

    @override
    async def ListPositions(
        self, request: service_pb2.ListPositionsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListPositionsResponse:
        page = page_request(request.page_size, request.page_token)
        found = await self._store.positions_after(page.after, page.size + 1)
        shown = found[: page.size]
        more = len(found) > page.size
        return service_pb2.ListPositionsResponse(
            positions=[position_message(p) for p in shown],
            next_page_token=encode_token(shown[-1].participant_id) if more else "",
        )
