"""The gRPC face of settlement: check the caller, parse, record or read through the stores,
answer.

Each operator method first checks the caller's operator token against the roles
:mod:`openloop_settlement.access` gives it, before it reads the request: a caller without a
token learns nothing, not even whether a cycle exists. The methods other services call
(``access.INTERNAL``) take no token.
"""

from __future__ import annotations

import logging

import grpc
from typing_extensions import override

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.operators import Operator, OperatorVerifier
from openloop_settlement import access, errors, page_tokens, parse
from openloop_settlement.cutoffs import REQUEST_ID_PREFIX
from openloop_settlement.cycles import CycleStore
from openloop_settlement.model import ObligationKey
from openloop_settlement.netting import zero_position
from openloop_settlement.paging import encode_token, page_request, page_size_of
from openloop_settlement.render import (
    cycle_message,
    cycle_name,
    cycle_position_message,
    obligation_message,
    position_message,
)
from openloop_settlement.reports import ReportStore
from openloop_settlement.store import SettlementStore

_log = logging.getLogger(__name__)


class SettlementServicer(service_pb2_grpc.SettlementServiceServicer):
    """openloop.settlement.v1.SettlementService.

    RecordTransfer is idempotent by transfer id: recording the same transfer again
    returns the obligation recorded first (in the cycle it was first recorded in) and
    moves no position; the same id with other participants or amount is
    ALREADY_EXISTS / TRANSFER_ID_CONFLICT.

    GetPosition and GetCyclePosition answer a zero position (transfer_count 0, no
    update_time) for a well-formed participant that no inter-participant transfer has
    touched, rather than NOT_FOUND: settlement does not own the list of participants
    (identity does), and a bank with nothing recorded stands at zero, which is exactly
    what a settlement report must show for it. The lists show only participants that
    have a position row.

    Closing and settling cycles are the platform operator's changes, and every report is
    an operator's or an auditor's read: each needs an operator token (``access.py``), and
    a close or a settle is logged with the operator's subject.
    """

    def __init__(
        self,
        store: SettlementStore,
        cycles: CycleStore,
        reports: ReportStore,
        *,
        operators: OperatorVerifier,
    ) -> None:
        self._store = store
        self._cycles = cycles
        self._reports = reports
        self._operators = operators

    def _operator(self, context: grpc.aio.ServicerContext, method: str) -> Operator:
        """The operator calling ``method``, if their token is good and their role may."""
        return self._operators.require(
            context.invocation_metadata(), access.OPERATOR_METHODS[method]
        )

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
        self._operator(context, "ListPositions")
        page = page_request(request.page_size, request.page_token)
        found = await self._store.positions_after(page.after, page.size + 1)
        shown = found[: page.size]
        more = len(found) > page.size
        return service_pb2.ListPositionsResponse(
            positions=[position_message(p) for p in shown],
            next_page_token=encode_token(shown[-1].participant_id) if more else "",
        )

    @override
    async def GetSettlementCycle(
        self, request: service_pb2.GetSettlementCycleRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetSettlementCycleResponse:
        self._operator(context, "GetSettlementCycle")
        cycle_id = parse.cycle_name(request.name)
        cycle = await self._cycles.get(cycle_id)
        if cycle is None:
            raise errors.cycle_not_found(cycle_id)
        return service_pb2.GetSettlementCycleResponse(settlement_cycle=cycle_message(cycle))

    @override
    async def ListSettlementCycles(
        self, request: service_pb2.ListSettlementCyclesRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListSettlementCyclesResponse:
        self._operator(context, "ListSettlementCycles")
        size = page_size_of(request.page_size)
        state = parse.state_filter(request.state)
        before = page_tokens.cycles_after(request.page_token, state)
        found = await self._cycles.newest_before(before, size + 1, state)
        shown = found[:size]
        more = len(found) > size
        return service_pb2.ListSettlementCyclesResponse(
            settlement_cycles=[cycle_message(c) for c in shown],
            next_page_token=page_tokens.cycles_token(state, shown[-1].cycle_id) if more else "",
        )

    @override
    async def CloseSettlementCycle(
        self, request: service_pb2.CloseSettlementCycleRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CloseSettlementCycleResponse:
        operator = self._operator(context, "CloseSettlementCycle")
        cycle_id = parse.cycle_name(request.name)
        request_id = parse.request_id(request.request_id)
        if request_id.startswith(REQUEST_ID_PREFIX):
            # The cut-off scheduler's namespace: an operator's close under one of its ids
            # would make the scheduler count that cut-off applied and skip it.
            raise invalid_field(
                "request_id", f"request ids starting {REQUEST_ID_PREFIX!r} are the scheduler's"
            )
        closed = await self._cycles.close(cycle_id, request_id, operator.actor)
        # Who cut the cycle whose positions the banks are told to pay. A retry under the same
        # request_id is logged again (the store answers it as it answered the first), and the
        # request_id ties the two lines to one close.
        _log.info(
            "settlement cycle closed",
            extra={
                "cycle": cycle_name(cycle_id),
                "request_id": request_id,
                "operator": operator.subject,
            },
        )
        return service_pb2.CloseSettlementCycleResponse(
            settlement_cycle=cycle_message(closed.cycle),
            next_cycle=cycle_name(closed.next_cycle_id),
        )

    @override
    async def SettleSettlementCycle(
        self, request: service_pb2.SettleSettlementCycleRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.SettleSettlementCycleResponse:
        operator = self._operator(context, "SettleSettlementCycle")
        cycle_id = parse.cycle_name(request.name)
        request_id = parse.request_id(request.request_id)
        settled = await self._cycles.settle(cycle_id, request_id, operator.actor)
        _log.info(
            "settlement cycle settled",
            extra={
                "cycle": cycle_name(cycle_id),
                "request_id": request_id,
                "operator": operator.subject,
            },
        )
        return service_pb2.SettleSettlementCycleResponse(settlement_cycle=cycle_message(settled))

    @override
    async def GetCyclePosition(
        self, request: service_pb2.GetCyclePositionRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetCyclePositionResponse:
        self._operator(context, "GetCyclePosition")
        cycle_id, participant_id = parse.cycle_position_name(request.name)
        position = await self._reports.cycle_position(cycle_id, participant_id)
        if position is None:
            raise errors.cycle_not_found(cycle_id)
        return service_pb2.GetCyclePositionResponse(cycle_position=cycle_position_message(position))

    @override
    async def ListCyclePositions(
        self, request: service_pb2.ListCyclePositionsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListCyclePositionsResponse:
        self._operator(context, "ListCyclePositions")
        cycle_id = parse.cycle_name(request.parent, "parent")
        size = page_size_of(request.page_size)
        after = page_tokens.cycle_positions_after(request.page_token, cycle_id)
        found = await self._reports.cycle_positions_after(cycle_id, after, size + 1)
        if found is None:
            raise errors.cycle_not_found(cycle_id)
        shown = found[:size]
        more = len(found) > size
        return service_pb2.ListCyclePositionsResponse(
            cycle_positions=[cycle_position_message(p) for p in shown],
            next_page_token=(
                page_tokens.cycle_positions_token(cycle_id, shown[-1].participant_id)
                if more
                else ""
            ),
        )

    @override
    async def GetObligation(
        self, request: service_pb2.GetObligationRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetObligationResponse:
        self._operator(context, "GetObligation")
        cycle_id, transfer_id = parse.obligation_name(request.name)
        obligation = await self._reports.obligation(cycle_id, transfer_id)
        if obligation is None:
            raise errors.obligation_not_found(request.name)
        return service_pb2.GetObligationResponse(obligation=obligation_message(obligation))

    @override
    async def ListObligations(
        self, request: service_pb2.ListObligationsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListObligationsResponse:
        self._operator(context, "ListObligations")
        cycle_id = parse.cycles_parent(request.parent)
        participant_id = parse.participant_filter(request.participant)
        size = page_size_of(request.page_size)
        after = page_tokens.obligations_after(request.page_token, cycle_id, participant_id)
        if cycle_id is not None and not await self._reports.cycle_exists(cycle_id):
            raise errors.cycle_not_found(cycle_id)
        found = await self._reports.obligations_after(cycle_id, participant_id, after, size + 1)
        shown = found[:size]
        token = ""
        if len(found) > size:
            last = ObligationKey(shown[-1].cycle_id, shown[-1].record.transfer_id)
            token = page_tokens.obligations_token(cycle_id, participant_id, last)
        return service_pb2.ListObligationsResponse(
            obligations=[obligation_message(o) for o in shown], next_page_token=token
        )
