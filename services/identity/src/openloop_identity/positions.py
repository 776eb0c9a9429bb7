"""Whether a participant still owes or is owed money: the check closing a participant needs.

Settlement owns the positions, so identity asks it (``GetPosition``) rather than keep a copy.
``PositionCheck`` is the seam: the closing rule depends on the protocol, and settlement's
answer plugs in behind it.

The figure read is the *unsettled* one, not the lifetime net position. Settlement cuts
obligations into cycles and each CLOSED cycle is paid through the central bank, after which
the operator marks it SETTLED. A bank whose customers spent more than its merchants took in
has a negative lifetime position for ever, though it paid every satang of it; what decides
whether it may leave is whether any cycle not yet settled still asks it to pay or to be
paid. Each cycle settles on its own, so it is the count of such cycles that must be zero (a
-100 in a CLOSED cycle and a +100 in the OPEN one net to zero but are two payments still due).
A settlement that predates cycles sends no unsettled figure; its lifetime position is then
the unsettled one, since nothing was ever settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.clients import upstream_error
from openloop_runtime.names import format_name


@dataclass(frozen=True, slots=True)
class Unsettled:
    net_position_satang: int
    """The sum of the participant's positions in cycles not yet settled."""
    cycles: int
    """How many cycles not yet settled hold a non-zero position for the participant."""

    @property
    def nothing_due(self) -> bool:
        return self.cycles == 0 and self.net_position_satang == 0


class PositionCheck(Protocol):
    async def unsettled(self, participant_id: str) -> Unsettled:
        """What the participant still owes or is owed; nothing when it has no position."""
        ...


class SettlementPositions:
    """``PositionCheck`` over settlement's gRPC API."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float = 3.0) -> None:
        self._stub = service_pb2_grpc.SettlementServiceStub(channel)
        self._timeout = timeout_seconds

    async def unsettled(self, participant_id: str) -> Unsettled:
        name = format_name("participants", participant_id) + "/position"
        try:
            reply = await self._stub.GetPosition(
                service_pb2.GetPositionRequest(name=name), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return Unsettled(0, 0)  # never part of an inter-participant transfer
            raise upstream_error("settlement", error) from None
        position = reply.position
        if not position.HasField("unsettled_position"):  # a settlement without cycles
            net = position.net_position.amount_satang
            return Unsettled(net, 1 if net else 0)
        return Unsettled(position.unsettled_position.amount_satang, position.unsettled_cycle_count)
