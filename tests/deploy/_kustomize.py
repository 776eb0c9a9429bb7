"""Render the kustomize trees the way CI and a developer would, and validate them offline."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ._binaries import find_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
"""Oldest API we promise to run on; native gRPC probes need >= 1.27."""

TARGETS = ("base", "overlays/dev")

Manifest = dict[str, Any]


@functools.cache
def render_yaml(target: str) -> str:
    """``kubectl kustomize`` output for a target (the network policies are in the base)."""
    return _kustomize(K8S / target)


def render(target: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(render_yaml(target)) if doc]


def _kustomize(directory: Path) -> str:
    result = subprocess.run(
        [find_binary("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate_offline(manifests_file: Path) -> str:
    """kubernetes-validate in strict mode; returns its report, empty when everything passed.

    A kind without a schema is only a WARN with exit code 0, so any output counts as failure.
    """
    result = subprocess.run(
        [
            find_binary("kubernetes-validate"),
            "--strict",
            "--quiet",
            "--kubernetes-version",
            KUBERNETES_VERSION,
            str(manifests_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = (result.stdout + result.stderr).strip()
    if result.returncode != 0 and not report:
        report = f"kubernetes-validate exited {result.returncode}"
    return report
