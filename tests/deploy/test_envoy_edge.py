"""Journeys through a real Envoy, rendered from the template, in front of a stand-in gateway.

``envoy --mode validate`` proves the config loads; these prove it does what the gateway relies
on: only participants with a CA-issued certificate get in, the gateway learns exactly their
SPIFFE URI (and cannot be fooled by a forged header), trace context arrives untouched, and
nothing outside the gateway's API is routed.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from openloop_dev.envoy import envoy_binary, render_envoy_config
from openloop_dev.pki import DevPki, ensure_dev_pki, participant_uri
from openloop_dev.ports import free_port

ECHO_METHOD = "/openloop.gateway.v1.EdgeProbeService/Echo"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Edge:
    port: int
    admin_port: int
    access_log: Path

    def tls_counter(self, name: str) -> int:
        """Sum of listener ``ssl.<name>`` counters, e.g. why a handshake was refused."""
        query = urllib.parse.urlencode({"filter": rf"ssl\.{name}$"})
        url = f"http://127.0.0.1:{self.admin_port}/stats?{query}"
        with urllib.request.urlopen(url, timeout=5) as response:
            lines = response.read().decode().splitlines()
        return sum(int(line.rsplit(":", 1)[1]) for line in lines if line.startswith("listener."))


def _echo_headers(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Plays the gateway: reports which edge-supplied headers reached it."""
    seen = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
    wanted = ("x-forwarded-client-cert", "traceparent", "x-request-id")
    return json.dumps({key: seen.get(key) for key in wanted}).encode()


@pytest.fixture(scope="module")
def gateway_port() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    echo = grpc.unary_unary_rpc_method_handler(_echo_headers)
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "openloop.gateway.v1.EdgeProbeService", {"Echo": echo}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None)


@contextmanager
def _running_edge(
    tmp_path: Path, dev_pki: DevPki, gateway_port: int, *, require_client_cert: bool
) -> Iterator[Edge]:
    edge = Edge(port=free_port(), admin_port=free_port(), access_log=tmp_path / "access.log")
    config = tmp_path / "envoy.yaml"
    config.write_text(
        render_envoy_config(
            listen_address="127.0.0.1",
            listen_port=edge.port,
            admin_port=edge.admin_port,
            gateway_host="127.0.0.1",
            gateway_port=gateway_port,
            cert_dir=dev_pki.ca_cert.parent,
            require_client_cert=require_client_cert,
        )
    )
    command = [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--concurrency", "1"]
    with edge.access_log.open("wb") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE)
    try:
        _wait_until_live(process, edge.admin_port)
        yield edge
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_live(process: subprocess.Popen[bytes], admin_port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"envoy exited with {process.returncode}:\n{stderr}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail("envoy did not become ready within 30s")


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki, gateway_port: int
) -> Iterator[Edge]:
    tmp_path = tmp_path_factory.mktemp("edge")
    with _running_edge(tmp_path, dev_pki, gateway_port, require_client_cert=True) as running:
        yield running


def _channel(
    edge: Edge, dev_pki: DevPki, participant_id: str | None, *, client_pki: DevPki | None = None
) -> grpc.Channel:
    """A participant's channel; ``client_pki`` lets the certificate come from another CA."""
    issuer = client_pki or dev_pki
    client = issuer.clients[participant_id] if participant_id else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=dev_pki.ca_cert.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.secure_channel(f"localhost:{edge.port}", credentials)


def _echo(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    call = channel.unary_unary(ECHO_METHOD)
    reply: bytes = call(b"", metadata=metadata, timeout=10, wait_for_ready=True)
    seen: dict[str, str] = json.loads(reply)
    return seen


def test_gateway_sees_the_participant_uri_and_nothing_else(edge: Edge, dev_pki: DevPki) -> None:
    forged = ("x-forwarded-client-cert", f"URI={participant_uri('bank-b')}")
    with _channel(edge, dev_pki, "bank-a") as channel:
        seen = _echo(channel, metadata=(forged, ("traceparent", TRACEPARENT)))
    xfcc = seen["x-forwarded-client-cert"]
    assert f"URI={participant_uri('bank-a')}" in xfcc
    assert "bank-b" not in xfcc
    assert "Cert=" not in xfcc
    assert "Subject=" not in xfcc
    assert seen["traceparent"] == TRACEPARENT
    assert seen["x-request-id"]


def test_health_is_routed_to_the_gateway(edge: Edge, dev_pki: DevPki) -> None:
    with _channel(edge, dev_pki, "bank-b") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=10, wait_for_ready=True)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_other_services_are_not_routable(edge: Edge, dev_pki: DevPki) -> None:
    with _channel(edge, dev_pki, "bank-a") as channel, pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary("/openloop.ledger.v1.LedgerService/CreateTransfers")(
            b"", timeout=10, wait_for_ready=True
        )
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_clients_without_a_certificate_are_refused(edge: Edge, dev_pki: DevPki) -> None:
    before = edge.tls_counter("fail_verify_no_cert")
    with _channel(edge, dev_pki, None) as channel, pytest.raises(grpc.RpcError) as raised:
        _echo_without_waiting(channel)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert edge.tls_counter("fail_verify_no_cert") > before


def test_certificates_from_another_ca_are_refused(
    edge: Edge, dev_pki: DevPki, tmp_path: Path
) -> None:
    impostor = ensure_dev_pki(tmp_path / "impostor", ["bank-a"])
    before = edge.tls_counter("fail_verify_error")
    with (
        _channel(edge, dev_pki, "bank-a", client_pki=impostor) as channel,
        pytest.raises(grpc.RpcError) as raised,
    ):
        _echo_without_waiting(channel)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert edge.tls_counter("fail_verify_error") > before


def _echo_without_waiting(channel: grpc.Channel) -> None:
    channel.unary_unary(ECHO_METHOD)(b"", timeout=5)


def test_access_log_has_the_call_but_not_the_participant(edge: Edge, dev_pki: DevPki) -> None:
    with _channel(edge, dev_pki, "bank-a") as channel:
        _echo(channel, metadata=(("traceparent", TRACEPARENT),))
    entries = _wait_for_log_entries(edge.access_log, TRACEPARENT)
    entry = entries[-1]
    assert entry["path"] == ECHO_METHOD
    assert entry["grpc_status"] == 0
    assert entry["x_request_id"]
    assert "bank-a" not in edge.access_log.read_text()


def _wait_for_log_entries(access_log: Path, traceparent: str) -> list[dict[str, object]]:
    """Envoy flushes access logs on a timer, so poll rather than read once."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [line for line in access_log.read_text().splitlines() if line.startswith("{")]
        entries = [json.loads(line) for line in lines]
        matching = [entry for entry in entries if entry.get("traceparent") == traceparent]
        if matching:
            return matching
        time.sleep(0.2)
    pytest.fail(f"no access log entry with traceparent {traceparent} in {access_log}")


def test_switch_off_admits_anonymous_clients_without_identity(
    tmp_path: Path, dev_pki: DevPki, gateway_port: int
) -> None:
    with _running_edge(tmp_path, dev_pki, gateway_port, require_client_cert=False) as relaxed:
        with _channel(relaxed, dev_pki, None) as channel:
            seen = _echo(channel)
        assert seen["x-forwarded-client-cert"] is None
