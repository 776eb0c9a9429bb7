"""The platform operator's command line for settlement cycles.

    python -m openloop_settlement.admin [--target HOST:PORT] --key-file operator.pem \
        --kid ops-1 --operator alice [--role settlement-auditor] cycles [--state CLOSED]
    python -m openloop_settlement.admin ... close [--request-id ID]
    python -m openloop_settlement.admin ... report settlementCycles/7
    python -m openloop_settlement.admin ... settle settlementCycles/7 --request-id ID

``close`` cuts the OPEN cycle and prints its net settlement: what each participant pays in
or is paid out, and who pays whom if banks settle with each other. It prints the request id
it used first: if the answer is lost, run it again with ``--request-id`` and the same cycle
is answered, never a second one closed. ``cycles`` lists each cycle with who closed it: an
operator (``operator:<sub>``) or settlement itself at a scheduled cut-off
(``scheduler:cutoff``, with the cut-off). ``settle`` records that the central bank's transfers
for a CLOSED cycle are done.

Every call carries an operator token (EdDSA, audience ``openloop-settlement``) signed with
the private key in ``--key-file``, whose public key settlement trusts under ``--kid``
(``OPENLOOP_SETTLEMENT_OPERATOR_KEYS``); ``--operator`` is who you are, as settlement logs it
with every close and settle. ``--role settlement-auditor`` is enough for ``cycles`` and
``report``. On the local mesh the dev operator's key is ``.devstack/settlement-operator.pem``
under ``--kid dev-operator``. Exit status: 0 done, 1 refused (the reason is printed), 2 the
service could not be reached, or the command line is wrong (or the key file unreadable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC
from pathlib import Path

import grpc
import jwt

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_runtime.errors import error_info_of
from openloop_runtime.operator_calls import OperatorToken, operator_channel
from openloop_settlement.access import AUDIENCE, Role
from openloop_settlement.netting import settlement_instructions

Stub = service_pb2_grpc.SettlementServiceStub
_STATES = ("OPEN", "CLOSED", "SETTLED")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m openloop_settlement.admin")
    parser.add_argument("--target", default="127.0.0.1:50054")
    parser.add_argument(
        "--key-file", type=Path, required=True, help="the operator's Ed25519 private key (PEM)"
    )
    parser.add_argument("--kid", default="ops-1", help="the id settlement trusts the key under")
    parser.add_argument("--operator", required=True, help="who is calling (the token's sub)")
    parser.add_argument("--role", default=Role.OPERATOR.value, choices=[r.value for r in Role])
    commands = parser.add_subparsers(dest="command", required=True)
    cycles = commands.add_parser("cycles", help="list cycles, newest first")
    cycles.add_argument("--state", choices=sorted(_STATES))
    close = commands.add_parser("close", help="close the OPEN cycle and print its settlement")
    close.add_argument("--request-id", default="")
    close.add_argument("--cycle", default="", help="settlementCycles/N (default: the OPEN one)")
    report = commands.add_parser("report", help="print a cycle's net settlement")
    report.add_argument("cycle")
    settle = commands.add_parser("settle", help="mark a CLOSED cycle SETTLED")
    settle.add_argument("cycle")
    settle.add_argument("--request-id", required=True)
    return parser


def _baht(satang: int) -> str:
    sign = "-" if satang < 0 else ""
    return f"{sign}{abs(satang) // 100:,}.{abs(satang) % 100:02d} THB"


def _state(cycle: resources_pb2.SettlementCycle) -> str:
    return resources_pb2.SettlementCycle.State.Name(cycle.state).removeprefix("STATE_")


def _cycle_line(cycle: resources_pb2.SettlementCycle) -> str:
    """A cycle and who changed it: an operator (``operator:<sub>``) or, for a close at a
    scheduled cut-off, the scheduler, with the cut-off (UTC) it closed for."""
    line = f"{cycle.name}: {_state(cycle)}"
    if _state(cycle) == "OPEN":
        return line
    line += f", closed by {cycle.closed_by or '(not recorded)'}"
    if cycle.HasField("cutoff_time"):
        cutoff = cycle.cutoff_time.ToDatetime(tzinfo=UTC)
        line += f" for the cut-off of {cutoff:%Y-%m-%d %H:%M} UTC"
    if _state(cycle) == "SETTLED":
        line += f", settled by {cycle.settled_by or '(not recorded)'}"
    return line


async def _report(stub: Stub, cycle_name: str) -> list[str]:
    cycle = (
        await stub.GetSettlementCycle(service_pb2.GetSettlementCycleRequest(name=cycle_name))
    ).settlement_cycle
    positions: dict[str, int] = {}
    token = ""
    while True:
        page = await stub.ListCyclePositions(
            service_pb2.ListCyclePositionsRequest(
                parent=cycle_name, page_size=1000, page_token=token
            )
        )
        for p in page.cycle_positions:
            positions[p.participant] = p.net_position.amount_satang
        token = page.next_page_token
        if not token:
            break
    lines = [f"{cycle.name}: {_state(cycle)}"]
    if _state(cycle) == "OPEN":
        lines.append("  OPEN: positions still move; this is not a settlement report")
    for participant, net in sorted(positions.items()):
        if net < 0:
            lines.append(f"  {participant} pays {_baht(-net)}")
        elif net > 0:
            lines.append(f"  {participant} receives {_baht(net)}")
    lines.append(f"  sum of positions: {_baht(sum(positions.values()))}")
    if _state(cycle) != "OPEN":
        lines.append("  bank to bank:")
        lines += [
            f"    {i.payer} -> {i.payee}: {_baht(i.amount)}"
            for i in settlement_instructions(positions)
        ]
    return lines


async def _open_cycle(stub: Stub) -> str:
    reply = await stub.ListSettlementCycles(service_pb2.ListSettlementCyclesRequest(page_size=1))
    return reply.settlement_cycles[0].name


async def _close(
    stub: Stub, cycle: str, request_id: str, *, retarget: bool
) -> service_pb2.CloseSettlementCycleResponse:
    """Close ``cycle`` under ``request_id``. A retry with ``--request-id`` alone, after the
    first close committed, aims at the cycle OPEN now (the next one); settlement then names
    the cycle the key closed, and the retry asks about that one: it answers the close that
    was made and can close nothing new."""
    request = service_pb2.CloseSettlementCycleRequest(name=cycle, request_id=request_id)
    try:
        return await stub.CloseSettlementCycle(request)
    except grpc.aio.AioRpcError as error:
        info = error_info_of(error)
        closed_before = info.metadata.get("resource", "") if info is not None else ""
        if (
            not retarget
            or not closed_before
            or info is None
            or (info.reason != "IDEMPOTENCY_KEY_REUSED")
        ):
            raise
    request.name = closed_before
    return await stub.CloseSettlementCycle(request)


async def _run(args: argparse.Namespace, token: OperatorToken) -> list[str]:
    async with operator_channel(args.target, token) as channel:
        stub = Stub(channel)
        if args.command == "cycles":
            reply = await stub.ListSettlementCycles(
                service_pb2.ListSettlementCyclesRequest(
                    page_size=100,
                    state=resources_pb2.SettlementCycle.State.Value(f"STATE_{args.state}")
                    if args.state
                    else resources_pb2.SettlementCycle.STATE_UNSPECIFIED,
                )
            )
            return [_cycle_line(c) for c in reply.settlement_cycles]
        if args.command == "close":
            request_id = args.request_id or str(uuid.uuid4())
            cycle = args.cycle or await _open_cycle(stub)
            print(f"closing {cycle} with --request-id {request_id}", file=sys.stderr)
            closed = await _close(stub, cycle, request_id, retarget=not args.cycle)
            lines = await _report(stub, closed.settlement_cycle.name)
            return [*lines, f"now OPEN: {closed.next_cycle}"]
        if args.command == "settle":
            settled = await stub.SettleSettlementCycle(
                service_pb2.SettleSettlementCycleRequest(
                    name=args.cycle, request_id=args.request_id
                )
            )
            return [f"{settled.settlement_cycle.name}: {_state(settled.settlement_cycle)}"]
        return await _report(stub, args.cycle)


def _token(args: argparse.Namespace) -> OperatorToken | None:
    """The operator's tokens, or None (said on stderr) if the key file cannot sign one: told
    before any call, not as the first call's failure."""
    try:
        token = OperatorToken(
            args.key_file.read_bytes(),
            kid=args.kid,
            subject=args.operator,
            role=args.role,
            audience=AUDIENCE,
        )
        token()
    except (OSError, jwt.PyJWTError) as error:
        print(f"cannot sign with {args.key_file}: {error}", file=sys.stderr)
        return None
    return token


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    token = _token(args)
    if token is None:
        return 2
    try:
        lines = asyncio.run(_run(args, token))
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            print(f"settlement did not answer: {error.details()}", file=sys.stderr)
            return 2
        detail = {"code": error.code().name, "message": error.details()}
        info = error_info_of(error)
        if info is not None:
            detail.update(reason=info.reason, **dict(info.metadata))
        print(json.dumps(detail, ensure_ascii=False, indent=2), file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
