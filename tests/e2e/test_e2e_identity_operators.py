"""On the running mesh, identity's administrative and personal-data methods answer only an
operator with a token for identity; whoever merely reaches its port, as the review showed,
gets nothing (the network policies that keep such callers away are Kubernetes', not the
local mesh's)."""

from __future__ import annotations

import grpc
import pytest

from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.identity.v1 import service_pb2_grpc as identity_grpc
from openloop_dev.operators import dev_operator_channel, operator_token
from openloop_dev.seed import DEMO_ADDRESS, DEMO_BIRTH_DATE, DEMO_FULL_NAME
from tests.e2e.journeys import metadata_of, reason_of

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_identity_serves_personal_data_and_admin_methods_only_to_operators(platform):
    layout = platform.mesh.layout
    export = identity_pb2.ExportCitizenDataRequest(
        name=platform.program.citizen, acting_participant="participants/bank-a"
    )
    create = identity_pb2.CreateParticipantRequest(
        request_id="e2e-rogue",
        participant_id="rogue-e2e",
        participant=identity_resources.Participant(
            display_name="Rogue", role=identity_resources.PARTICIPANT_ROLE_BANK
        ),
    )
    rules_token = [("authorization", f"Bearer {operator_token(layout.workdir)}")]
    async with grpc.aio.insecure_channel(layout.target("identity")) as channel:
        stub = identity_grpc.IdentityServiceStub(channel)
        for call in (
            stub.ExportCitizenData(export),
            stub.CreateParticipant(create),
            # The dev mesh's rules operator: a real token, but for another service, signed by
            # the rules service's dev key, which identity does not trust.
            stub.ExportCitizenData(export, metadata=rules_token),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            error = refused.value
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert reason_of(error) == "OPERATOR_NOT_AUTHENTICATED"
            for personal in (DEMO_FULL_NAME, DEMO_BIRTH_DATE, DEMO_ADDRESS):
                assert personal not in (error.details() or "")
        assert metadata_of(error)["token_reason"] == "TOKEN_BAD_SIGNATURE"
        # The gateway's reads still answer without a token.
        found = await stub.GetCitizen(identity_pb2.GetCitizenRequest(name=export.name))
        assert found.citizen.hosting_participant == "participants/bank-a"

    async with dev_operator_channel(
        layout.workdir, "identity", layout.target("identity"), subject="e2e-dpo"
    ) as channel:
        stub = identity_grpc.IdentityServiceStub(channel)
        exported = await stub.ExportCitizenData(export)
        assert exported.personal_data.full_name == DEMO_FULL_NAME
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetParticipant(
                identity_pb2.GetParticipantRequest(name="participants/rogue-e2e")
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
