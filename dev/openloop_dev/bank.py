"""A bank's view of the platform: a mutual-TLS channel to the edge with its client certificate."""

from __future__ import annotations

import grpc

from openloop.gateway.v1 import service_pb2_grpc
from openloop_dev.pki import DevPki


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
