"""A bank's view of the platform: a mutual-TLS channel to the edge with its client certificate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop_dev.identity_provider import payment_authorisation
from openloop_dev.pki import DevPki
from openloop_identity.assertions import DevIssuer


def bank_channel(pki: DevPki, participant: str, edge_target: str) -> grpc.aio.Channel:
    client = pki.clients[participant]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )
    return grpc.aio.secure_channel(edge_target, credentials)


def gateway_stub(channel: grpc.aio.Channel) -> service_pb2_grpc.GatewayServiceStub:
    return service_pb2_grpc.GatewayServiceStub(channel)


class AuthorisingGateway:
    """A bank's gateway client that signs every ``Pay`` with the payer's authorisation of
    that payment (its payee and amount), as the bank's app does once its customer has
    authenticated and confirmed them. Payers it does not know (or requests that already
    carry an authorisation) go as they are; other calls pass through.
    """

    def __init__(
        self,
        stub: service_pb2_grpc.GatewayServiceStub,
        signer: DevIssuer,
        citizen_ids: Mapping[str, str],
    ) -> None:
        self._stub = stub
        self._signer = signer
        self._citizen_ids = citizen_ids

    async def Pay(  # noqa: N802 - the gRPC method's name
        self, request: service_pb2.PayRequest, **kwargs: Any
    ) -> service_pb2.PayResponse:
        citizen_id = self._citizen_ids.get(request.payer)
        if citizen_id is not None and not request.payer_authorization:
            signed = service_pb2.PayRequest()
            signed.CopyFrom(request)
            signed.payer_authorization = payment_authorisation(
                self._signer, citizen_id, request.payee, request.amount
            )
            request = signed
        response: service_pb2.PayResponse = await self._stub.Pay(request, **kwargs)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)
