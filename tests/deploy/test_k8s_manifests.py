"""The kustomize trees render, pass strict offline schema validation, and keep our pod baseline."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from openloop_dev.render_k8s_envoy import render_k8s_envoy_config
from openloop_ledger.config import LedgerSettings
from openloop_settlement.config import SettlementSettings

from ._kustomize import TARGETS, Manifest, render, render_yaml, validate_offline

SERVICES = {
    "identity": 50051,
    "rules": 50052,
    "ledger": 50053,
    "settlement": 50054,
    "gateway": 50055,
}
SEALER, SEALER_HEALTH_PORT = "ledger-sealer", 50056
"""The ledger's Merkle-log sealer: its own Deployment, serving only grpc.health.v1."""
LEDGER_SHARED = ("OPENLOOP_LEDGER_DATABASE_URL", "OPENLOOP_LEDGER_LEAF_KEY")
"""What the ledger and its sealer both read, from the same Secrets."""
SIGNING_KEYS = ("OPENLOOP_LEDGER_LOG_SIGNING_KEY", "OPENLOOP_LEDGER_LOG_COSIGNING_KEYS")
"""Only the sealer signs checkpoints: only its pods get the private keys."""
GATEWAY_UPSTREAMS = {
    "OPENLOOP_GATEWAY_IDENTITY_TARGET": "identity:50051",
    "OPENLOOP_GATEWAY_RULES_TARGET": "rules:50052",
    "OPENLOOP_GATEWAY_LEDGER_TARGET": "ledger:50053",
    "OPENLOOP_GATEWAY_SETTLEMENT_TARGET": "settlement:50054",
}


def _of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


def _workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] in ("Deployment", "StatefulSet")]


def _pod(workload: Manifest) -> dict[str, Any]:
    pod: dict[str, Any] = workload["spec"]["template"]["spec"]
    return pod


def _containers(workload: Manifest) -> list[dict[str, Any]]:
    pod = _pod(workload)
    return [*pod.get("initContainers", []), *pod["containers"]]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in container.get("env", [])}


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_validates_strictly_offline(target: str, tmp_path: Path) -> None:
    manifests_file = tmp_path / "manifests.yaml"
    manifests_file.write_text(render_yaml(target))
    assert validate_offline(manifests_file) == ""


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_meets_the_restricted_baseline(target: str) -> None:
    workloads = _workloads(render(target))
    assert workloads
    for workload in workloads:
        name, pod = workload["metadata"]["name"], _pod(workload)
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        if name != "postgres":
            assert pod["securityContext"]["runAsUser"] == 10001, name
        for container in _containers(workload):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["runAsNonRoot"] is True, where
            assert "ALL" in security["capabilities"]["drop"], where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), where


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_has_its_own_token_less_service_account(target: str) -> None:
    manifests = render(target)
    accounts = _of_kind(manifests, "ServiceAccount")
    for workload in _workloads(manifests):
        account = _pod(workload)["serviceAccountName"]
        assert account == workload["metadata"]["name"]
        assert accounts[account]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("target", TARGETS)
def test_services_probe_grpc_health_on_their_port(target: str) -> None:
    manifests = render(target)
    deployments = _of_kind(manifests, "Deployment")
    services = _of_kind(manifests, "Service")
    assert set(deployments) == {*SERVICES, SEALER, "envoy"}
    for name, port in SERVICES.items():
        (container,) = _pod(deployments[name])["containers"]
        assert container["ports"] == [{"name": "grpc", "containerPort": port}]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, f"{name} {probe}"
        assert _env(container)[f"OPENLOOP_{name.upper()}_PORT"]["value"] == str(port)
        # Bound to loopback (the settings' default), the probes and the other pods, which
        # reach the pod on its own address, would never get an answer.
        assert _env(container)[f"OPENLOOP_{name.upper()}_HOST"]["value"] == "0.0.0.0"  # noqa: S104
        assert services[name]["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("target", TARGETS)
def test_services_migrate_their_own_database_before_serving(target: str) -> None:
    deployments = _of_kind(render(target), "Deployment")
    for name in SERVICES:
        pod = _pod(deployments[name])
        (migrate,) = pod["initContainers"]
        assert migrate["command"] == ["python", "-m", f"openloop_{name}", "migrate"]
        assert pod["containers"][0]["command"] == ["python", "-m", f"openloop_{name}"]
        for container in (migrate, *pod["containers"]):
            secret = _env(container)[f"OPENLOOP_{name.upper()}_DATABASE_URL"]["valueFrom"]
            assert secret["secretKeyRef"]["name"].startswith(f"openloop-{name}-db")
            assert secret["secretKeyRef"]["key"] == "url"


@pytest.mark.parametrize("target", TARGETS)
def test_ledger_sealer_runs_apart_from_the_ledger(target: str) -> None:
    """The sealer has its own Deployment, reading the ledger's database and keys from the
    ledger's Secrets, and the ledger itself does not seal (two processes would each plan or
    seal with one GIL between them for nothing)."""
    manifests = render(target)
    deployments = _of_kind(manifests, "Deployment")
    sealer, ledger = deployments[SEALER], deployments["ledger"]
    labels = {"app.kubernetes.io/name": SEALER, "app.kubernetes.io/component": "merkle-sealer"}
    assert labels.items() <= sealer["spec"]["template"]["metadata"]["labels"].items()
    # One leader per database (the advisory lock) and a standby, on another node if any.
    assert sealer["spec"]["replicas"] == 2
    anti = sealer["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": SEALER
    }
    assert sealer["spec"].get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"
    pod = _pod(sealer)
    # The ledger's own initContainer migrates; the sealer retries until the schema exists.
    assert "initContainers" not in pod
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "openloop_ledger", "seal"]
    assert container["ports"] == [{"name": "health", "containerPort": SEALER_HEALTH_PORT}]
    assert SEALER_HEALTH_PORT not in SERVICES.values()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": SEALER_HEALTH_PORT}, probe
    env = _env(container)
    assert env["OPENLOOP_LEDGER_PORT"]["value"] == str(SEALER_HEALTH_PORT)
    assert env["OPENLOOP_LEDGER_HOST"]["value"] == "0.0.0.0"  # noqa: S104
    ledger_env = _env(_pod(ledger)["containers"][0])
    for name in LEDGER_SHARED:
        assert "valueFrom" in env[name], name
        assert env[name]["valueFrom"] == ledger_env[name]["valueFrom"], name
    # The Secret the leaf key comes from (an overlay's generator suffixes its name).
    log_secret = env["OPENLOOP_LEDGER_LEAF_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    assert env["OPENLOOP_LEDGER_LOG_SIGNING_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": log_secret,
        "key": "signing-key",
    }
    cosigning = env["OPENLOOP_LEDGER_LOG_COSIGNING_KEYS"]["valueFrom"]["secretKeyRef"]
    assert (cosigning["name"], cosigning["key"], cosigning["optional"]) == (
        log_secret,
        "cosigning-keys",
        True,
    )
    for name in SIGNING_KEYS:
        assert name not in ledger_env, name
    assert ledger_env["OPENLOOP_LEDGER_SEALER_IN_PROCESS"]["value"] == "false"
    assert "OPENLOOP_LEDGER_SEALER_IN_PROCESS" not in env
    # Nothing calls the sealer: no Service of its own, and neither the ledger's Service nor
    # the ledger's Deployment selects its pods (or the ledger's pods would include it).
    pod_labels = sealer["spec"]["template"]["metadata"]["labels"]
    for service in _of_kind(manifests, "Service").values():
        selector = service["spec"].get("selector", {})
        assert not selector.items() <= pod_labels.items(), service["metadata"]["name"]
    ledger_selector = ledger["spec"]["selector"]["matchLabels"]
    assert not ledger_selector.items() <= pod_labels.items()


def test_gateway_reaches_upstreams_by_service_name() -> None:
    gateway = _of_kind(render("base"), "Deployment")["gateway"]
    env = _env(_pod(gateway)["containers"][0])
    assert {name: env[name]["value"] for name in GATEWAY_UPSTREAMS} == GATEWAY_UPSTREAMS


def test_envoy_runs_the_generated_config_with_the_edge_tls_secret() -> None:
    manifests = render("base")
    (config_map,) = [doc for doc in manifests if doc["kind"] == "ConfigMap"]
    assert config_map["data"]["envoy.yaml"] == render_k8s_envoy_config()
    envoy = _of_kind(manifests, "Deployment")["envoy"]
    pod = _pod(envoy)
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert volumes["tls"]["secret"]["secretName"] == "openloop-edge-tls"
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert f"{mounts['config']}/envoy.yaml" in container["args"]
    tls = yaml.safe_load(config_map["data"]["envoy.yaml"])["static_resources"]["listeners"][0]
    certificate = tls["filter_chains"][0]["transport_socket"]["typed_config"]
    chain = certificate["common_tls_context"]["tls_certificates"][0]["certificate_chain"]
    assert chain["filename"] == f"{mounts['tls']}/server.pem"
    assert "tcpSocket" in container["readinessProbe"]


def test_base_carries_no_secrets_and_no_namespace() -> None:
    manifests = render("base")
    assert not [doc for doc in manifests if doc["kind"] in ("Secret", "Namespace")]
    assert not [doc for doc in manifests if "namespace" in doc["metadata"]]


def test_operator_methods_trust_only_keys_the_overlay_configures() -> None:
    """Rules, identity and settlement read their operators' public keys from ConfigMaps an
    overlay supplies (public keys: no Secret needed); the base trusts no one by itself, and
    the dev overlay supplies each (trusting no one until a key is added)."""
    deployments = _of_kind(render("base"), "Deployment")
    assert not [name for name in _of_kind(render("base"), "ConfigMap") if "operator" in name]
    dev = render("overlays/dev")
    dev_deployments, config_maps = _of_kind(dev, "Deployment"), _of_kind(dev, "ConfigMap")
    for name in ("rules", "identity", "settlement"):
        variable = f"OPENLOOP_{name.upper()}_OPERATOR_KEYS"
        env = _env(_pod(deployments[name])["containers"][0])
        ref = env[variable]["valueFrom"]["configMapKeyRef"]
        assert ref == {"name": f"openloop-{name}-operator-keys", "key": "operator-keys.json"}
        dev_env = _env(_pod(dev_deployments[name])["containers"][0])
        dev_ref = dev_env[variable]["valueFrom"]["configMapKeyRef"]
        assert config_maps[dev_ref["name"]]["data"] == {"operator-keys.json": "{}"}


@pytest.mark.parametrize("target", TARGETS)
def test_settlement_closes_its_cycle_daily_at_23_00_bangkok_time(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cut-off the Deployment sets is one settlement accepts (it refuses to start on a
    malformed one), read as pydantic-settings reads the container's environment."""
    settlement = _of_kind(render(target), "Deployment")["settlement"]
    env = _env(_pod(settlement)["containers"][0])
    for name in ("OPENLOOP_SETTLEMENT_CUTOFF_TIMES", "OPENLOOP_SETTLEMENT_CUTOFF_TIMEZONE"):
        monkeypatch.setenv(name, env[name]["value"])
    settings = SettlementSettings()
    assert (settings.cutoff_times, settings.cutoff_timezone) == (("23:00",), "Asia/Bangkok")


def test_the_ledger_reads_its_manifest_as_not_sealing(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = _of_kind(render("base"), "Deployment")["ledger"]
    env = _env(_pod(ledger)["containers"][0])
    name = "OPENLOOP_LEDGER_SEALER_IN_PROCESS"
    monkeypatch.setenv(name, env[name]["value"])
    assert LedgerSettings().sealer_in_process is False


def test_dev_overlay_is_self_contained() -> None:
    manifests = render("overlays/dev")
    secrets = _of_kind(manifests, "Secret")
    config_maps = _of_kind(manifests, "ConfigMap")
    for workload in _workloads(manifests):
        for container in _containers(workload):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):  # an optional key may be left out
                    assert ref["key"] in secrets[ref["name"]]["data"], var["name"]
                ref = var.get("valueFrom", {}).get("configMapKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["key"] in config_maps[ref["name"]]["data"], var["name"]
    namespace = _of_kind(manifests, "Namespace")["openloop-dev"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    namespaced = [doc for doc in manifests if doc["kind"] != "Namespace"]
    assert {doc["metadata"].get("namespace") for doc in namespaced} == {"openloop-dev"}
    assert _of_kind(manifests, "Service")["postgres"]["spec"]["ports"][0]["port"] == 5432
    for name in SERVICES:
        (secret,) = [
            s for s in secrets.values() if s["metadata"]["name"].startswith(f"openloop-{name}-db")
        ]
        url = base64.b64decode(secret["data"]["url"]).decode()
        assert url.startswith(f"postgresql+asyncpg://openloop_{name}:")
        assert url.endswith(f"@postgres:5432/openloop_{name}")
