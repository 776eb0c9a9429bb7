"""The whole mesh, started once for the end-to-end journeys: real PostgreSQL, five
service processes on real ports, and the real Envoy binary in front with mTLS."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from openloop.gateway.v1 import service_pb2_grpc
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_dev.bank import AuthorisingGateway, bank_channel
from openloop_dev.identity_provider import bank_signer
from openloop_dev.mesh import Mesh, MeshLayout
from openloop_dev.operators import dev_operator_channel
from openloop_dev.postgres import EmbeddedPostgres
from openloop_dev.seed import DemoProgram, seed_demo_program


@dataclass
class Platform:
    mesh: Mesh
    program: DemoProgram
    bank_a: AuthorisingGateway
    bank_b: service_pb2_grpc.GatewayServiceStub
    ledger: ledger_grpc.LedgerServiceStub
    settlement: settlement_grpc.SettlementServiceStub

    @property
    def workdir(self) -> Path:
        return self.mesh.layout.workdir


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory, postgres: EmbeddedPostgres) -> Iterator[Mesh]:
    # The reconciler is exercised by the gateway's own tests; here it must not race
    # the journeys that leave a payment pending on purpose.
    os.environ["OPENLOOP_GATEWAY_RECONCILE_AFTER_SECONDS"] = "3600"
    # A revoked certificate stops working within this; short so the journey need not wait.
    os.environ["OPENLOOP_GATEWAY_CERTIFICATE_CACHE_SECONDS"] = "1"
    with Mesh(
        MeshLayout.ephemeral(Path(tmp_path_factory.mktemp("mesh"))),
        external_postgres_url=postgres.url("postgres", driver="postgresql"),
    ) as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def platform(mesh: Mesh) -> AsyncIterator[Platform]:
    program = await seed_demo_program(mesh.layout)
    assert mesh.pki is not None
    edge = mesh.layout.edge_target
    async with (
        bank_channel(mesh.pki, "bank-a", edge) as a,
        bank_channel(mesh.pki, "bank-b", edge) as b,
        grpc.aio.insecure_channel(mesh.layout.target("ledger")) as ledger,
        # Settlement's reports are an operator's (or an auditor's) reads.
        dev_operator_channel(
            mesh.layout.workdir, "settlement", mesh.layout.target("settlement"), "e2e"
        ) as settlement,
    ):
        yield Platform(
            mesh,
            program,
            # Bank A signs its customer's payment authorisations, as its app would.
            AuthorisingGateway(
                service_pb2_grpc.GatewayServiceStub(a),
                bank_signer(mesh.layout.workdir, "bank-a"),
                {program.citizen: program.citizen_id},
            ),
            service_pb2_grpc.GatewayServiceStub(b),
            ledger_grpc.LedgerServiceStub(ledger),
            settlement_grpc.SettlementServiceStub(settlement),
        )
