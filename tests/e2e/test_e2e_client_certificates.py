"""Only a client certificate its participant registered, and has not revoked, opens the API:
the edge's CA check alone is not enough, so a participant can rotate and revoke certificates
without a new CA."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.identity.v1 import service_pb2_grpc as identity_grpc
from openloop_dev.bank import bank_channel
from openloop_dev.operators import dev_operator_channel
from tests.e2e.journeys import metadata_of, new_key, reason_of

PARTICIPANT = "treasury"
"""A participant the dev PKI issued a certificate to but the seed did not register."""


async def _get_payment(stub: service_pb2_grpc.GatewayServiceStub) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetPayment(service_pb2.GetPaymentRequest(name="payments/p0"))
    return refused.value


async def test_a_certificate_works_only_while_registered(platform):
    mesh = platform.mesh
    assert mesh.pki is not None
    pem = mesh.pki.clients[PARTICIPANT].cert.read_text(encoding="ascii")
    fingerprint = hashlib.sha256(
        x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    ).hexdigest()
    async with (
        bank_channel(mesh.pki, PARTICIPANT, mesh.layout.edge_target) as edge,
        # Registering and revoking certificates is an operator's act: every call is signed.
        dev_operator_channel(
            mesh.layout.workdir, "identity", mesh.layout.target("identity")
        ) as internal,
    ):
        gateway = service_pb2_grpc.GatewayServiceStub(edge)
        identity = identity_grpc.IdentityServiceStub(internal)

        unregistered = await _get_payment(gateway)
        assert unregistered.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason_of(unregistered) == "PARTICIPANT_NOT_AUTHENTICATED"
        assert metadata_of(unregistered)["certificate_sha256"] == fingerprint

        credential = (
            await identity.CreateParticipantCredential(
                identity_pb2.CreateParticipantCredentialRequest(
                    parent=f"participants/{PARTICIPANT}",
                    request_id=new_key(),
                    credential=identity_resources.ParticipantCredential(
                        kind=identity_resources.CREDENTIAL_KIND_CLIENT_CERTIFICATE,
                        certificate_pem=pem,
                    ),
                )
            )
        ).credential
        assert credential.certificate_sha256 == fingerprint
        await asyncio.sleep(1.2)  # an unknown certificate is looked up again after 1 s
        # Registered: the call is authenticated and answered (the payment does not exist).
        registered = await _get_payment(gateway)
        assert registered.code() == grpc.StatusCode.NOT_FOUND
        assert reason_of(registered) == "PAYMENT_NOT_FOUND"

        await identity.RevokeParticipantCredential(
            identity_pb2.RevokeParticipantCredentialRequest(name=credential.name)
        )
        await asyncio.sleep(1.2)  # the e2e mesh caches registered certificates for 1 s
        revoked = await _get_payment(gateway)
        assert revoked.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason_of(revoked) == "PARTICIPANT_NOT_AUTHENTICATED"
