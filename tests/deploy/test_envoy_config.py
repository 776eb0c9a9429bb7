"""The Envoy edge template renders to a config Envoy accepts and that keeps the edge's promises."""

from __future__ import annotations

import string
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from openloop_dev.envoy import ENVOY_TEMPLATE, envoy_binary, render_envoy_config
from openloop_dev.pki import DevPki
from openloop_dev.render_k8s_envoy import K8S_ENVOY_CONFIG, render_k8s_envoy_config

PLACEHOLDERS = {
    "LISTEN_ADDRESS",
    "LISTEN_PORT",
    "ADMIN_PORT",
    "GATEWAY_HOST",
    "GATEWAY_PORT",
    "CERT_DIR",
    "REQUIRE_CLIENT_CERT",
}


def _render(dev_pki: DevPki, *, require_client_cert: bool = True) -> str:
    return render_envoy_config(
        listen_address="127.0.0.1",
        listen_port=18443,
        admin_port=19901,
        gateway_host="127.0.0.1",
        gateway_port=50055,
        cert_dir=dev_pki.ca_cert.parent,
        require_client_cert=require_client_cert,
    )


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    typed: dict[str, Any] = hcm["typed_config"]
    return typed


@pytest.mark.parametrize("require_client_cert", [True, False])
def test_envoy_accepts_the_rendered_config(
    dev_pki: DevPki, tmp_path: Path, require_client_cert: bool
) -> None:
    config_path = tmp_path / "envoy.yaml"
    config_path.write_text(_render(dev_pki, require_client_cert=require_client_cert))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config_path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_k8s_copy_is_the_rendered_template() -> None:
    assert K8S_ENVOY_CONFIG.read_text(encoding="utf-8") == render_k8s_envoy_config(), (
        "deploy/k8s/base/envoy/envoy.yaml drifted: run python -m openloop_dev.render_k8s_envoy"
    )


def test_template_placeholders_are_the_documented_ones() -> None:
    template = string.Template(ENVOY_TEMPLATE.read_text(encoding="utf-8"))
    assert template.is_valid()
    assert set(template.get_identifiers()) == PLACEHOLDERS


def test_mtls_switch_is_the_only_difference(dev_pki: DevPki) -> None:
    strict = yaml.safe_load(_render(dev_pki, require_client_cert=True))
    relaxed = yaml.safe_load(_render(dev_pki, require_client_cert=False))
    tls_path = ("static_resources", "listeners", 0, "filter_chains", 0, "transport_socket")
    strict_tls, relaxed_tls = strict, relaxed
    for key in tls_path:
        strict_tls, relaxed_tls = strict_tls[key], relaxed_tls[key]
    assert strict_tls["typed_config"]["require_client_certificate"] is True
    assert relaxed_tls["typed_config"]["require_client_certificate"] is False
    relaxed_tls["typed_config"]["require_client_certificate"] = True
    assert relaxed == strict


def test_edge_forwards_only_the_participant_uri(dev_pki: DevPki) -> None:
    config = yaml.safe_load(_render(dev_pki))
    tls = config["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]
    context = tls["typed_config"]["common_tls_context"]
    assert context["alpn_protocols"] == ["h2"]
    assert context["validation_context"]["trusted_ca"]["filename"].endswith("/ca.pem")
    hcm = _hcm(config)
    assert hcm["codec_type"] == "HTTP2"
    assert hcm["forward_client_cert_details"] == "SANITIZE_SET"
    assert hcm["set_current_client_cert_details"] == {"uri": True, "cert": False}


def test_only_gateway_api_and_health_are_routed(dev_pki: DevPki) -> None:
    (vhost,) = _hcm(yaml.safe_load(_render(dev_pki)))["route_config"]["virtual_hosts"]
    routes = {route["match"]["prefix"]: route["route"] for route in vhost["routes"]}
    assert set(routes) == {"/openloop.gateway.v1.", "/grpc.health.v1."}
    assert {route["cluster"] for route in routes.values()} == {"gateway"}
    assert routes["/openloop.gateway.v1."]["timeout"] == "15s"


def test_access_log_is_json_without_identities_or_bodies(dev_pki: DevPki) -> None:
    (access_log,) = _hcm(yaml.safe_load(_render(dev_pki)))["access_log"]
    fields: dict[str, str] = access_log["typed_config"]["log_format"]["json_format"]
    values = " ".join(fields.values()).upper()
    for required in ("%REQ(:PATH)%", "GRPC_STATUS", "%DURATION%", "TRACEPARENT", "X-REQUEST-ID"):
        assert required in values
    for forbidden in ("PEER", "SUBJECT", "FORWARDED-CLIENT-CERT", "BODY", "SAN"):
        assert forbidden not in values


def test_trace_context_is_left_alone(dev_pki: DevPki) -> None:
    config = yaml.safe_load(_render(dev_pki))
    hcm = _hcm(config)
    assert "tracing" not in config
    assert "tracing" not in hcm
    assert "request_headers_to_remove" not in hcm["route_config"]


def test_gateway_cluster_is_health_checked_h2c(dev_pki: DevPki) -> None:
    config = yaml.safe_load(_render(dev_pki))
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    (cluster,) = config["static_resources"]["clusters"]
    options = cluster["typed_extension_protocol_options"]
    http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in http["explicit_http_config"]
    assert "transport_socket" not in cluster
    (health_check,) = cluster["health_checks"]
    assert health_check["grpc_health_check"] == {}
