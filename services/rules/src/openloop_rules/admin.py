"""The operators' command line: publish, activate, roll back and list rule sets.

    python -m openloop_rules.admin --target HOST:PORT --key-file operator.pem --kid ops-1 \\
        --operator alice publish rulesets/new.yaml --reason "phones allowed from 1 August"
    python -m openloop_rules.admin ... activate digital-wallet-2025.2 \\
        --at 2025-08-01T00:00:00+07:00 --reason "..." [--request-id ID]
    python -m openloop_rules.admin ... rollback --program digital-wallet [--to VERSION] \\
        --reason "..."
    python -m openloop_rules.admin ... list [--program digital-wallet]
    python -m openloop_rules.admin ... history --program digital-wallet
    python -m openloop_rules.admin keygen --out operator.pem   # prints the public key setting

Each call signs a five-minute operator token (EdDSA) with the private key in
``--key-file``; the service must trust its public key under ``--kid``
(``OPENLOOP_RULES_OPERATOR_KEYS``). Exit status: 0 done, 1 refused (the reason is printed),
2 the service could not be reached, or the command line is wrong (a time given to ``--at``
must carry its UTC offset).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import datetime
from pathlib import Path

import grpc
from google.protobuf import json_format

from openloop.rules.v1 import service_pb2, service_pb2_grpc
from openloop_rules.operators import Role, mint
from openloop_runtime.errors import error_info_of
from openloop_runtime.operators import OperatorKey
from openloop_runtime.timestamps import to_timestamp


def _time_with_offset(text: str) -> datetime:
    """An ``--at`` value: an ISO time with its UTC offset. Without one the moment would be
    a guess (2025-08-01T00:00 taken as UTC is 07:00 in Bangkok), so it is refused."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time") from error
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; write one, e.g. 2025-08-01T00:00:00+07:00"
        )
    return moment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m openloop_rules.admin")
    parser.add_argument("--target", default="127.0.0.1:50052")
    parser.add_argument("--key-file", type=Path)
    parser.add_argument("--kid", default="ops-1")
    parser.add_argument("--operator", default="")
    parser.add_argument("--role", default=Role.OPERATOR.value, choices=[r.value for r in Role])
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish")
    publish.add_argument("document", type=Path)
    publish.add_argument("--program-document", type=Path)
    publish.add_argument("--reason", required=True)
    activate = commands.add_parser("activate")
    activate.add_argument("version")
    activate.add_argument("--at", type=_time_with_offset, help="ISO time with offset")
    activate.add_argument("--reason", required=True)
    activate.add_argument("--request-id", default="")
    rollback = commands.add_parser("rollback")
    rollback.add_argument("--program", default="digital-wallet")
    rollback.add_argument("--to", default="")
    rollback.add_argument("--at", type=_time_with_offset, help="ISO time with offset")
    rollback.add_argument("--reason", required=True)
    rollback.add_argument("--request-id", default="")
    listing = commands.add_parser("list")
    listing.add_argument("--program", default="")
    history = commands.add_parser("history")
    history.add_argument("--program", default="digital-wallet")
    keygen = commands.add_parser("keygen")
    keygen.add_argument("--out", type=Path, required=True)
    return parser


def _keygen(out: Path, kid: str) -> None:
    key = OperatorKey.generate(kid)
    out.write_bytes(key.private_pem)
    out.chmod(0o600)
    print(f"private key written to {out}; trust it with:")
    print(f"OPENLOOP_RULES_OPERATOR_KEYS='{json.dumps(key.trusted())}'")


async def _call(args: argparse.Namespace) -> object:
    if args.key_file is None or not args.operator:
        raise SystemExit("--key-file and --operator are required")
    token = mint(
        args.key_file.read_bytes(), kid=args.kid, subject=args.operator, role=Role(args.role)
    )
    metadata = [("authorization", f"Bearer {token}")]
    async with grpc.aio.insecure_channel(args.target) as channel:
        stub = service_pb2_grpc.RulesServiceStub(channel)
        if args.command == "publish":
            return await stub.PublishRuleSet(
                service_pb2.PublishRuleSetRequest(
                    document=args.document.read_text(encoding="utf-8"),
                    program_document=(
                        args.program_document.read_text(encoding="utf-8")
                        if args.program_document
                        else ""
                    ),
                    reason=args.reason,
                ),
                metadata=metadata,
            )
        if args.command == "activate":
            request = service_pb2.ActivateRuleSetRequest(
                name=f"ruleSets/{args.version}",
                reason=args.reason,
                request_id=args.request_id or str(uuid.uuid4()),
            )
            if args.at is not None:
                request.effective_time.CopyFrom(to_timestamp(args.at))
            return await stub.ActivateRuleSet(request, metadata=metadata)
        if args.command == "rollback":
            rollback = service_pb2.RollbackRuleSetRequest(
                program=f"programs/{args.program}",
                rule_set=f"ruleSets/{args.to}" if args.to else "",
                reason=args.reason,
                request_id=args.request_id or str(uuid.uuid4()),
            )
            if args.at is not None:
                rollback.effective_time.CopyFrom(to_timestamp(args.at))
            return await stub.RollbackRuleSet(rollback, metadata=metadata)
        if args.command == "history":
            return await stub.ListActivations(
                service_pb2.ListActivationsRequest(program=f"programs/{args.program}"),
                metadata=metadata,
            )
        return await stub.ListRuleSets(
            service_pb2.ListRuleSetsRequest(
                program=f"programs/{args.program}" if args.program else "", page_size=100
            ),
            metadata=metadata,
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        _keygen(args.out, args.kid)
        return 0
    try:
        reply = asyncio.run(_call(args))
    except grpc.aio.AioRpcError as error:
        info = error_info_of(error)
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            print(f"the rules service did not answer: {error.details()}", file=sys.stderr)
            return 2
        detail = {"code": error.code().name, "message": error.details()}
        if info is not None:
            detail.update(reason=info.reason, **dict(info.metadata))
        print(json.dumps(detail, ensure_ascii=False, indent=2), file=sys.stderr)
        return 1
    assert hasattr(reply, "DESCRIPTOR")
    print(json_format.MessageToJson(reply, ensure_ascii=False))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
