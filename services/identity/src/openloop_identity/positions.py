"""Whether a participant still owes or is owed money: the check closing a participant needs.

Settlement owns the positions, so identity asks it (``GetPosition``) rather than keep a copy.
``PositionCheck`` is the seam: the closing rule depends on the protocol, and settlement's
answer (today its running net position; a settlement cycle's unsettled amount once cycles
exist) plugs in behind it.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.clients import upstream_error
from openloop_runtime.names import format_name


class PositionCheck(Protocol):
    async def net_position_satang(self, participant_id: str) -> int:
        """The participant's net position; 0 when it has none."""
        ...


class SettlementPositions:
    """``PositionCheck`` over settlement's gRPC API."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float = 3.0) -> None:
        self._stub = service_pb2_grpc.SettlementServiceStub(channel)
        self._timeout = timeout_seconds

    async def net_position_satang(self, participant_id: str) -> int:
        name = format_name("participants", participant_id) + "/position"
        try:
            reply = await self._stub.GetPosition(
                service_pb2.GetPositionRequest(name=name), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return 0  # never part of an inter-participant transfer
            raise upstream_error("settlement", error) from None
        return reply.position.net_position.amount_satang
