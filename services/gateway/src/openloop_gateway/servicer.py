"""The public GatewayService: authenticate the caller, then hand over to the flows."""

from __future__ import annotations

import grpc

from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop_gateway.caller import calling_certificate
from openloop_gateway.certificates import RegisteredCertificates
from openloop_gateway.convert import payment_to_proto, wallet_move_to_proto
from openloop_gateway.payments import PaymentFlow
from openloop_gateway.store import PaymentStore
from openloop_gateway.upstreams import Upstreams
from openloop_gateway.wallet_move_store import MoveStore
from openloop_gateway.wallet_moves import WalletMoveFlow
from openloop_gateway.wallets import get_wallet
from openloop_runtime.errors import ErrorReason, not_found
from openloop_runtime.names import parse_name


class GatewayServicer(service_pb2_grpc.GatewayServiceServicer):
    def __init__(
        self,
        flow: PaymentFlow,
        store: PaymentStore,
        upstreams: Upstreams,
        uri_prefix: str,
        *,
        moves: WalletMoveFlow,
        move_store: MoveStore,
        certificates: RegisteredCertificates | None,
    ) -> None:
        self._certificates = certificates
        self._moves = moves
        self._move_store = move_store
        self._flow = flow
        self._store = store
        self._upstreams = upstreams
        self._uri_prefix = uri_prefix

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> str:
        """The calling participant, whose certificate the edge verified and, unless switched
        off, the participant registered."""
        caller = calling_certificate(context, self._uri_prefix)
        if self._certificates is not None:
            await self._certificates.require(caller)
        return caller.participant_id

    async def Pay(  # noqa: N802
        self, request: service_pb2.PayRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.PayResponse:
        participant = await self._authenticate(context)
        record = await self._flow.pay(participant, request)
        return service_pb2.PayResponse(payment=payment_to_proto(record))

    async def GetPayment(  # noqa: N802
        self, request: service_pb2.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetPaymentResponse:
        participant = await self._authenticate(context)
        payment_id = parse_name(request.name, "payments")
        record = await self._store.get(payment_id)
        # Another participant's payment is reported as absent, not forbidden: its
        # existence is not the caller's business.
        if record is None or record.participant_id != participant:
            raise not_found(ErrorReason.ERROR_REASON_PAYMENT_NOT_FOUND, request.name)
        return service_pb2.GetPaymentResponse(payment=payment_to_proto(record))

    async def GetWallet(  # noqa: N802
        self, request: service_pb2.GetWalletRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetWalletResponse:
        participant = await self._authenticate(context)
        wallet = await get_wallet(self._upstreams, participant, request.name)
        return service_pb2.GetWalletResponse(wallet=wallet)

    async def MoveWallet(  # noqa: N802
        self, request: service_pb2.MoveWalletRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.MoveWalletResponse:
        participant = await self._authenticate(context)
        record = await self._moves.move(participant, request)
        return service_pb2.MoveWalletResponse(wallet_move=wallet_move_to_proto(record))

    async def GetWalletMove(  # noqa: N802
        self, request: service_pb2.GetWalletMoveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetWalletMoveResponse:
        participant = await self._authenticate(context)
        record = await self._move_store.get(parse_name(request.name, "walletMoves"))
        # The participants on both sides of a move may see it; to anyone else it is absent.
        if record is None or participant not in (
            record.participant_id,
            record.from_participant_id,
        ):
            raise not_found(ErrorReason.ERROR_REASON_WALLET_MOVE_NOT_FOUND, request.name)
        return service_pb2.GetWalletMoveResponse(wallet_move=wallet_move_to_proto(record))
