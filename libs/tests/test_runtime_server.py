"""The shared server bootstrap: health, error mapping with ErrorInfo, INTERNAL for defects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop_dev.ports import free_port
from openloop_runtime.db import create_engine
from openloop_runtime.errors import DomainError, ErrorReason, error_info_of, not_found
from openloop_runtime.server import Registration, running_server, start_server
from openloop_runtime.settings import ServiceSettings


class _Gateway(service_pb2_grpc.GatewayServiceServicer):
    async def GetPayment(self, request, context):  # noqa: N802
        raise not_found(ErrorReason.ERROR_REASON_PAYMENT_NOT_FOUND, request.name)

    async def Pay(self, request, context):  # noqa: N802
        raise RuntimeError("secret 1345951597671 must not leak")

    async def GetWallet(self, request, context):  # noqa: N802
        # A real failure to reach PostgreSQL: nothing listens on this port.
        engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    async def MoveWallet(self, request, context):  # noqa: N802
        raise AssertionError("not called by these tests")

    async def GetWalletMove(self, request, context):  # noqa: N802
        raise AssertionError("not called by these tests")


@asynccontextmanager
async def _factory() -> AsyncIterator[Sequence[Registration]]:
    yield [
        Registration(
            service_pb2_grpc.add_GatewayServiceServicer_to_server,
            _Gateway(),
            service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,
        )
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channel():
    settings = ServiceSettings(port=0)
    async with (
        running_server("test.openloop.dev", settings, _factory) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan,
    ):
        yield chan


async def test_health_reports_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "openloop.gateway.v1.GatewayService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_can_be_watched(channel):
    """Watch streams by writing to its context, not by yielding: the interceptors keep it so."""
    stub = health_pb2_grpc.HealthStub(channel)
    call = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    first = await call.read()
    call.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING


async def test_domain_error_becomes_status_with_error_info(channel):
    stub = service_pb2_grpc.GatewayServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetPayment(service_pb2.GetPaymentRequest(name="payments/p1"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == "PAYMENT_NOT_FOUND"
    assert info.domain == "test.openloop.dev"
    assert info.metadata["resource"] == "payments/p1"


async def test_defect_is_internal_without_leaking_its_text(channel):
    stub = service_pb2_grpc.GatewayServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Pay(service_pb2.PayRequest())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "1345951597671" not in (caught.value.details() or "")
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == "INTERNAL_ERROR"


def test_reason_names_drop_the_enum_prefix():
    error = DomainError(
        grpc.StatusCode.INVALID_ARGUMENT, ErrorReason.ERROR_REASON_INVALID_AMOUNT, "x"
    )
    assert error.reason == "INVALID_AMOUNT"


async def test_a_database_out_of_reach_is_unavailable_not_internal(channel):
    stub = service_pb2_grpc.GatewayServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetWallet(service_pb2.GetWalletRequest(name="citizens/c1/wallet"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info_of(caught.value)
    assert info is not None
    assert info.reason == "DATABASE_UNAVAILABLE"


async def test_a_drain_that_fails_still_stops_the_server():
    """A registration's drain runs before the server stops; should it fail, the server
    stops all the same (its calls in progress get their grace period) and the failure is
    reported."""

    async def drain(domain: str) -> None:
        raise RuntimeError(f"drain failed in {domain}")

    registration = Registration.of(
        service_pb2, service_pb2_grpc, "GatewayService", _Gateway(), drain=drain
    )
    running = await start_server("test.openloop.dev", ServiceSettings(port=0), [registration])
    try:
        with pytest.raises(RuntimeError, match=r"drain failed in test\.openloop\.dev"):
            await running.stop(0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(chan).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # nothing serves the port
    finally:
        await running.server.stop(None)
