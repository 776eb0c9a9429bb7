"""Developer commands: ``python -m openloop_dev up | demo | trace <trace-id>``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from openloop_dev.demo import run_demo
from openloop_dev.mesh import PARTICIPANTS, Mesh, MeshLayout
from openloop_dev.pki import ensure_dev_pki
from openloop_dev.seed import DemoProgram, seed_demo_program
from openloop_dev.traces import render_tree, spans_of

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKDIR = Path(os.environ.get("OPENLOOP_DEVSTACK_DIR", REPO_ROOT / ".devstack"))


def _start_mesh() -> tuple[Mesh, DemoProgram]:
    mesh = Mesh(
        MeshLayout.fixed(WORKDIR),
        external_postgres_url=os.environ.get("OPENLOOP_POSTGRES_URL") or None,
    )
    print(
        "starting PostgreSQL, identity, rules, ledger and its sealer, settlement, gateway"
        " and Envoy ..."
    )
    mesh.start()
    try:
        program = asyncio.run(seed_demo_program(mesh.layout))
    except BaseException:
        mesh.stop()
        raise
    (WORKDIR / "demo-program.json").write_text(json.dumps(program.as_dict(), indent=2))
    return mesh, program


def _print_banner(mesh: Mesh, program: DemoProgram) -> None:
    layout = mesh.layout
    pki = layout.pki_dir
    print(f"""
OpenLoop is up. Banks call the gateway through Envoy with mutual TLS:

  edge (Envoy):   {layout.edge_target}   admin http://127.0.0.1:{layout.admin_port}
  services:       {", ".join(f"{s} :{p}" for s, p in layout.service_ports.items())}
  databases:      {", ".join(layout.database_urls.values())}
  logs / traces:  {layout.log_dir}  {layout.trace_dir}

Demo program: citizen {program.citizen} (bank-a, 10,000 THB), small shop {program.small_shop},
other-district shop {program.far_shop}, large chain {program.large_chain},
online-only shop {program.online_shop} (all at bank-b).

Pay as bank A (grpcurl, if you have it):
  grpcurl -cacert {pki}/ca.pem -cert {pki}/clients/bank-a.pem -key {pki}/clients/bank-a-key.pem \\
    -d '{{"idempotency_key":"k1","payer":"{program.citizen}","payee":"{program.small_shop}",
         "amount":{{"currency_code":"THB","amount_satang":"25000"}}}}' \\
    {layout.edge_target} openloop.gateway.v1.GatewayService/Pay
or run `make demo` in another terminal. Ctrl-C stops everything.

Audit the ledger (recomputes every leaf, checkpoint signature and balance):
  OPENLOOP_LEDGER_LEAF_KEY=$(cat {layout.workdir}/ledger-leaf.key) \\
    python -m openloop_ledger.audit verify --database-url {layout.database_urls["ledger"]} \\
    --verifier-key '{mesh.ledger_verifier_key()}'

Administer it as the dev operator (identity, rules and settlement take operator tokens
signed by keys kept in {layout.workdir}; the gateway's calls need none):
  python -m openloop_rules.admin --target {layout.target("rules")} \\
    --key-file {layout.workdir}/rules-operator.pem --kid dev-operator --operator you list
  python -m openloop_identity.import_cli --target {layout.target("identity")} \\
    --key-file {layout.workdir}/identity-operator.pem --kid dev-operator --operator you \\
    --file cohort.csv --errors refused.csv
  python -m openloop_settlement.admin --target {layout.target("settlement")} \\
    --key-file {layout.workdir}/settlement-operator.pem --kid dev-operator --operator you \\
    cycles""")


def up() -> None:
    mesh, program = _start_mesh()
    _print_banner(mesh, program)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop:
            time.sleep(0.5)
    finally:
        print("\nstopping ...")
        mesh.stop()
        print("stopped.")


def demo() -> None:
    program_file = WORKDIR / "demo-program.json"
    running = program_file.exists() and _edge_running()
    mesh = None
    if running:
        program = DemoProgram(**json.loads(program_file.read_text()))
        layout = MeshLayout.load(WORKDIR)
    else:
        mesh, program = _start_mesh()
        layout = mesh.layout
    try:
        pki = ensure_dev_pki(layout.pki_dir, PARTICIPANTS)
        asyncio.run(run_demo(pki, layout.edge_target, program, layout.workdir))
    finally:
        if mesh is not None:
            mesh.stop()


def _edge_running() -> bool:
    try:
        layout = MeshLayout.load(WORKDIR)
        with socket.create_connection(("127.0.0.1", layout.edge_port), timeout=1):
            return True
    except (OSError, ValueError, KeyError):
        return False


def trace(trace_id: str) -> None:
    spans = spans_of(WORKDIR / "traces", trace_id)
    if not spans:
        sys.exit(f"no spans for trace {trace_id} in {WORKDIR / 'traces'} (spans flush within 1s)")
    print(render_tree(spans))


def main() -> None:
    parser = argparse.ArgumentParser(prog="openloop_dev")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the whole mesh and seed the demo program")
    sub.add_parser("demo", help="pay as a bank through Envoy")
    trace_parser = sub.add_parser("trace", help="print one trace from the local span files")
    trace_parser.add_argument("trace_id")
    args = parser.parse_args()
    if args.command == "up":
        up()
    elif args.command == "demo":
        demo()
    else:
        trace(args.trace_id)


if __name__ == "__main__":
    main()
