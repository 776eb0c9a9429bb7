"""Regenerate deploy/k8s/base/envoy/envoy.yaml from the Envoy template.

Kustomize's configMapGenerator can only read files inside the kustomization, so Kubernetes gets a
rendered copy. This is the only way that copy should change; a test fails when it drifts.

Run: ``python -m openloop_dev.render_k8s_envoy``.
"""

from __future__ import annotations

from pathlib import Path

from openloop_dev.envoy import REPO_ROOT, render_envoy_config

K8S_ENVOY_CONFIG = REPO_ROOT / "deploy" / "k8s" / "base" / "envoy" / "envoy.yaml"
K8S_CERT_DIR = Path("/etc/envoy/tls")
"""Where the envoy Deployment mounts the openloop-edge-tls Secret."""


def render_k8s_envoy_config() -> str:
    """The edge config as the Kubernetes envoy Deployment runs it."""
    return render_envoy_config(
        # All interfaces: inside the pod, the Service has to reach the listener.
        listen_address="0.0.0.0",
        listen_port=8443,
        admin_port=9901,
        gateway_host="gateway",
        gateway_port=50055,
        cert_dir=K8S_CERT_DIR,
        require_client_cert=True,
    )


def main() -> None:
    """Write the Kubernetes copy (only when it changed, so mtimes stay meaningful)."""
    rendered = render_k8s_envoy_config()
    if K8S_ENVOY_CONFIG.is_file() and K8S_ENVOY_CONFIG.read_text(encoding="utf-8") == rendered:
        print(f"{K8S_ENVOY_CONFIG.relative_to(REPO_ROOT)} is up to date")
        return
    K8S_ENVOY_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    K8S_ENVOY_CONFIG.write_text(rendered, encoding="utf-8")
    print(f"wrote {K8S_ENVOY_CONFIG.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
