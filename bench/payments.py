"""Payments through Envoy: N concurrent bank clients for a fixed time.

    make bench BENCH_ARGS="--clients 32 --seconds 30"

Starts its own mesh (real PostgreSQL, five services, Envoy with mTLS), enrols one
funded citizen per client, then each client pays the demo small shop 1 satang at a
time with a fresh idempotency key. Prints sustained payments/s and latency
percentiles and writes bench/reports/payments-<time>.json. The client runs on the
same 2-core machine as the mesh, so figures are for comparison within one run
and between runs on this machine, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc

from bench.population import citizen_id, enrol_funded_citizens
from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop_dev.bank import AuthorisingGateway, bank_channel
from openloop_dev.identity_provider import bank_signer
from openloop_dev.mesh import Mesh, MeshLayout
from openloop_dev.seed import seed_demo_program
from openloop_runtime.money import thb

REPORT_DIR = Path(__file__).parent / "reports"


@dataclass
class Report:
    clients: int
    seconds: float
    payments: int
    errors: dict[str, int]
    payments_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    started_at: str
    machine: str


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def _client(
    stub: AuthorisingGateway,
    *,
    payer: str,
    payee: str,
    stop_at: float,
    latencies: list[float],
    errors: dict[str, int],
) -> None:
    while time.monotonic() < stop_at:
        request = service_pb2.PayRequest(
            idempotency_key=f"bench-{uuid.uuid4()}", payer=payer, payee=payee, amount=thb(1)
        )
        started = time.perf_counter()
        try:
            await stub.Pay(request, timeout=30)
        except grpc.aio.AioRpcError as error:
            errors[error.code().name] = errors.get(error.code().name, 0) + 1
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def drive(mesh: Mesh, clients: int, seconds: float, warmup: float) -> Report:
    program = await seed_demo_program(mesh.layout)
    citizens = await enrol_funded_citizens(mesh.layout, clients)
    assert mesh.pki is not None
    async with bank_channel(mesh.pki, "bank-a", mesh.layout.edge_target) as channel:
        # Bank A signs each payment's authorisation (ES256), as its app would: that cost is
        # the bank's and lands in the measured latency.
        stub = AuthorisingGateway(
            service_pb2_grpc.GatewayServiceStub(channel),
            bank_signer(mesh.layout.workdir, "bank-a"),
            {name: citizen_id(serial) for serial, name in enumerate(citizens)},
        )
        warm: list[float] = []
        await asyncio.gather(
            *(
                _client(
                    stub,
                    payer=c,
                    payee=program.small_shop,
                    stop_at=time.monotonic() + warmup,
                    latencies=warm,
                    errors={},
                )
                for c in citizens
            )
        )
        latencies: list[float] = []
        errors: dict[str, int] = {}
        started_at = datetime.now(UTC).isoformat()
        began = time.monotonic()
        await asyncio.gather(
            *(
                _client(
                    stub,
                    payer=c,
                    payee=program.small_shop,
                    stop_at=began + seconds,
                    latencies=latencies,
                    errors=errors,
                )
                for c in citizens
            )
        )
        elapsed = time.monotonic() - began
    latencies.sort()
    return Report(
        clients=clients,
        seconds=round(elapsed, 2),
        payments=len(latencies),
        errors=errors,
        payments_per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(statistics.median(latencies), 2) if latencies else 0.0,
        p95_ms=round(_percentile(latencies, 0.95), 2),
        p99_ms=round(_percentile(latencies, 0.99), 2),
        max_ms=round(latencies[-1], 2) if latencies else 0.0,
        started_at=started_at,
        machine=f"{platform.machine()} {os.cpu_count()} cpu {platform.python_version()}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="openloop-bench-") as workdir,
        Mesh(MeshLayout.ephemeral(Path(workdir))) as mesh,
    ):
        report = asyncio.run(drive(mesh, args.clients, args.seconds, args.warmup))
    REPORT_DIR.mkdir(exist_ok=True)
    path = REPORT_DIR / f"payments-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(asdict(report), indent=2))
    print(
        f"payments through Envoy: {report.clients} clients, {report.seconds}s\n"
        f"  sustained  {report.payments_per_second} payments/s ({report.payments} payments)\n"
        f"  latency    p50 {report.p50_ms} ms  p95 {report.p95_ms} ms  p99 {report.p99_ms} ms"
        f"  max {report.max_ms} ms\n"
        f"  errors     {report.errors or 'none'}\n"
        f"  report     {path}"
    )


if __name__ == "__main__":
    main()
