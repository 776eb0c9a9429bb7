"""What this machine allows at all, measured in the same run as the ledger's figures.

Two ceilings bound what any ledger written like ours could reach here:

- the **gRPC floor**: a Python gRPC server that answers ``CreateTransfers`` with OK and
  does nothing else, driven by the very client the single-transfer scenario uses. No
  single-request figure can beat it on this machine.
- the **database ceiling**: the database half of a batch (journal lock, duplicate lookup,
  COPY of the transfers, one UPDATE of the accounts, commit) with every row prepared
  before the clock starts. Batches are serialised by the journal lock, so this is the
  most one ordered journal on this PostgreSQL can take, with no Python work at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
from google.protobuf.message import Message

from bench.cpu import CpuMeter
from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_dev.ports import free_port
from openloop_ledger import pg
from openloop_ledger.model import Transfer, TransferSpec
from openloop_runtime.server import freeze_startup_heap

_OK = resources_pb2.CREATE_TRANSFER_RESULT_OK


def _serve_constant(
    port: int,
    method: str,
    request_type: type[Message],
    reply: bytes,
    streaming: tuple[str, type[Message], bytes] | None,
) -> None:
    """Serve ``method`` ("package.Service/Method") on ``port``: parse each request, answer
    ``reply``; and ``streaming`` (name, request type, reply), if given, a method of the same
    service that answers each message of a stream so. Runs in a process of its own."""
    service, name = method.rsplit("/", 1)

    async def answer(request: Message, context: Any) -> bytes:
        return reply

    async def serve() -> None:
        server = grpc.aio.server()
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                answer, request_deserializer=request_type.FromString
            )
        }
        if streaming is not None:
            stream_name, stream_request_type, stream_reply = streaming

            async def answer_each(requests: AsyncIterator[Message], context: Any) -> Any:
                async for _ in requests:
                    yield stream_reply

            handlers[stream_name] = grpc.stream_stream_rpc_method_handler(
                answer_each, request_deserializer=stream_request_type.FromString
            )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        freeze_startup_heap()  # as every service does once it serves
        await server.wait_for_termination()

    asyncio.run(serve())


@contextlib.contextmanager
def do_nothing_server(
    method: str = "openloop.ledger.v1.LedgerService/CreateTransfers",
    request_type: type[Message] = service_pb2.CreateTransfersRequest,
    reply: Message | None = None,
) -> Iterator[tuple[str, int]]:
    """A server that answers ``method`` with ``reply`` and does nothing else, in its own
    process; yields its address and process id. By default a ``LedgerService`` whose
    ``CreateTransfers`` answers one OK, and whose ``StreamingCreateTransfers`` answers each
    request so (the single-transfer scenarios' floors)."""
    streaming = None
    if reply is None:
        reply = service_pb2.CreateTransfersResponse(results=[_OK])
        streaming = (
            "StreamingCreateTransfers",
            service_pb2.StreamingCreateTransfersRequest,
            service_pb2.StreamingCreateTransfersResponse(results=[_OK]).SerializeToString(),
        )
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_constant,
        args=(port, method, request_type, reply.SerializeToString(), streaming),
        daemon=True,
    )
    process.start()
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        assert process.pid is not None
        yield target, process.pid
    finally:
        process.terminate()
        process.join(10)


async def database_ceiling(
    dsn: str, *, accounts: int, batch: int, batches: int, postmaster: int | None
) -> tuple[float, dict[str, float]]:
    """Transfers/s through the database half of a batch alone, on an empty migrated ledger
    database at ``dsn``, with rows and account totals prepared up front; and the CPU it
    cost per transfer, in PostgreSQL and in this process (see :class:`bench.cpu.CpuMeter`)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
            " credits_must_not_exceed_debits, user_data, participant_id)"
            " SELECT 'acct-' || g, 764, 1, false, false, '', 'ceiling'"
            " FROM generate_series(0, $1::int - 1) AS g",
            accounts,
        )
        prepared = _prepared_batches(accounts=accounts, batch=batch, batches=batches)
        meter = CpuMeter(os.getpid(), postmaster=postmaster)
        started = time.perf_counter()
        for transfers, totals in prepared:
            async with conn.transaction():
                size, _, _ = await pg.lock_journal(conn)
                await pg.transfers_with_resolutions(conn, [t.spec.id for t in transfers])
                await pg.set_journal(
                    conn, size + len(transfers), random.getrandbits(63), datetime.now(UTC)
                )
                await pg.copy_transfers(conn, transfers, size)
                await pg.write_accounts(conn, totals)
        rate = batch * batches / (time.perf_counter() - started)
        cpu = meter.per_unit(rate)
        del cpu["cpu_us_server"]  # no server: this process is the client, feeding PostgreSQL
        return rate, cpu
    finally:
        await conn.close()


def _prepared_batches(
    *, accounts: int, batch: int, batches: int
) -> list[tuple[list[Transfer], list[tuple[str, int, int, int, int, bool]]]]:
    rng = random.Random(11)
    now = datetime.now(UTC)
    debits = [0] * accounts
    credits = [0] * accounts
    prepared = []
    number = 0
    for _ in range(batches):
        transfers = []
        touched: set[int] = set()
        for _ in range(batch):
            number += 1
            debit = rng.randrange(accounts)
            credit = (debit + 1 + rng.randrange(accounts - 1)) % accounts
            amount = rng.randrange(1, 10_000)
            debits[debit] += amount
            credits[credit] += amount
            touched.update((debit, credit))
            spec = TransferSpec(
                f"ceiling-{number}", f"acct-{debit}", f"acct-{credit}", amount, 764, 1, "x"
            )
            transfers.append(Transfer(spec, now, -1))
        totals = [(f"acct-{a}", 0, debits[a], 0, credits[a], False) for a in sorted(touched)]
        prepared.append((transfers, totals))
    return prepared
