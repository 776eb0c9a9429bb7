"""The base's network policies allow exactly OpenLoop's call graph, evaluated like a CNI would.

Schema validation cannot tell a typo'd label from a real one; this small evaluator of the
NetworkPolicy rules we use (pod/namespace selectors, TCP/UDP ports) can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ._kustomize import K8S, Manifest, render

NAMESPACE = "openloop-dev"
DOMAIN_SERVICES = {"identity": 50051, "rules": 50052, "ledger": 50053, "settlement": 50054}
SEALER, SEALER_HEALTH_PORT = "ledger-sealer", 50056
"""The ledger's Merkle-log sealer: it reaches only Postgres and nothing reaches it."""
DATABASE_USERS = (*DOMAIN_SERVICES, "gateway", SEALER)
SERVICE_PORTS = [*DOMAIN_SERVICES.items(), ("gateway", 50055), ("envoy", 8443), ("envoy", 9901)]


@dataclass(frozen=True)
class Peer:
    """A pod (labels in a namespace) or, with no namespace, a client outside the cluster."""

    labels: dict[str, str] = field(default_factory=dict)
    namespace: str | None = NAMESPACE
    namespace_labels: dict[str, str] = field(default_factory=dict)


def _app(name: str) -> Peer:
    return Peer(
        labels={"app.kubernetes.io/name": name},
        namespace_labels={"kubernetes.io/metadata.name": NAMESPACE},
    )


@dataclass(frozen=True)
class Flow:
    source: Peer
    target: Peer
    port: int
    proto: str = "TCP"


EXTERNAL = Peer(namespace=None)
KUBE_DNS = Peer(
    labels={"k8s-app": "kube-dns"},
    namespace="kube-system",
    namespace_labels={"kubernetes.io/metadata.name": "kube-system"},
)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(_expression_holds(expr, labels) for expr in selector.get("matchExpressions", []))


def _expression_holds(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    if operator == "In":
        return labels.get(key) in expression["values"]
    if operator == "NotIn":
        return labels.get(key) not in expression["values"]
    if operator == "Exists":
        return key in labels
    assert operator == "DoesNotExist", operator
    return key not in labels


def _peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    if peer.namespace is None:  # outside the cluster: only an ipBlock could match it
        return "ipBlock" in rule_peer
    if "namespaceSelector" in rule_peer:
        if not _selects(rule_peer["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != NAMESPACE:
        return False
    return _selects(rule_peer.get("podSelector", {}), peer.labels)


def _rule_allows(rule: dict[str, Any], direction: str, peer: Peer, port: int, proto: str) -> bool:
    peers = rule.get(direction)
    if peers is not None and not any(_peer_matches(p, peer) for p in peers):
        return False
    ports = rule.get("ports")
    return ports is None or any(
        p.get("port") == port and p.get("protocol", "TCP") == proto for p in ports
    )


def _allowed(policies: list[Manifest], flow: Flow) -> bool:
    """A connection needs both the source's egress and the target's ingress policies to agree."""
    return _side_allows(policies, flow, "Egress") and _side_allows(policies, flow, "Ingress")


def _side_allows(policies: list[Manifest], flow: Flow, kind: str) -> bool:
    pod, peer = (flow.source, flow.target) if kind == "Egress" else (flow.target, flow.source)
    if pod.namespace != NAMESPACE:
        return True  # our policies do not govern other namespaces or the outside world
    selecting = [
        policy["spec"]
        for policy in policies
        if kind in policy["spec"]["policyTypes"]
        and _selects(policy["spec"]["podSelector"], pod.labels)
    ]
    direction = "to" if kind == "Egress" else "from"
    return not selecting or any(
        _rule_allows(rule, direction, peer, flow.port, flow.proto)
        for spec in selecting
        for rule in spec.get(kind.lower(), [])
    )


@pytest.fixture(scope="module", params=["base", "overlays/dev"])
def policies(request: pytest.FixtureRequest) -> list[Manifest]:
    """The policies of the base itself, and of an overlay built on it."""
    found = [doc for doc in render(request.param) if doc["kind"] == "NetworkPolicy"]
    assert found, f"{request.param} should carry the network policies"
    return found


ALLOWED = [
    (EXTERNAL, _app("envoy"), 8443),
    (_app("envoy"), _app("gateway"), 50055),
    *[(_app("gateway"), _app(name), port) for name, port in DOMAIN_SERVICES.items()],
    *[(_app(name), _app("postgres"), 5432) for name in DATABASE_USERS],
    (_app("identity"), _app("settlement"), 50054),
]
DENIED = [
    (EXTERNAL, _app("gateway"), 50055),
    (EXTERNAL, _app("identity"), 50051),
    (EXTERNAL, _app("postgres"), 5432),
    (EXTERNAL, _app("envoy"), 9901),
    (_app("envoy"), _app("identity"), 50051),
    (_app("envoy"), _app("postgres"), 5432),
    (_app("envoy"), _app("gateway"), 9901),
    (_app("identity"), _app("ledger"), 50053),
    (_app("identity"), _app("rules"), 50052),
    (_app("settlement"), _app("identity"), 50051),
    (_app("ledger"), _app("gateway"), 50055),
    (_app("settlement"), _app("envoy"), 8443),
    (_app("gateway"), _app("ledger"), 50051),
    # The sealer's one peer is Postgres, and its port serves only the kubelet's probes.
    *[(_app(SEALER), _app(name), port) for name, port in SERVICE_PORTS],
    *[
        (_app(name), _app(SEALER), SEALER_HEALTH_PORT)
        for name in (*DOMAIN_SERVICES, "gateway", "envoy", "postgres")
    ],
    (EXTERNAL, _app(SEALER), SEALER_HEALTH_PORT),
]


@pytest.mark.parametrize(("source", "target", "port"), ALLOWED)
def test_call_graph_edges_are_allowed(
    policies: list[Manifest], source: Peer, target: Peer, port: int
) -> None:
    assert _allowed(policies, Flow(source, target, port))


@pytest.mark.parametrize(("source", "target", "port"), DENIED)
def test_everything_else_is_denied(
    policies: list[Manifest], source: Peer, target: Peer, port: int
) -> None:
    assert not _allowed(policies, Flow(source, target, port))


@pytest.mark.parametrize("name", ["envoy", *DATABASE_USERS, "postgres"])
def test_every_pod_resolves_names(policies: list[Manifest], name: str) -> None:
    assert _allowed(policies, Flow(_app(name), KUBE_DNS, 53, "UDP"))
    assert _allowed(policies, Flow(_app(name), KUBE_DNS, 53, "TCP"))
    assert not _allowed(policies, Flow(_app(name), EXTERNAL, 443))


def test_no_policy_lets_anything_reach_the_sealer(policies: list[Manifest]) -> None:
    """Whatever the port or the peer: the policies that select the sealer for ingress
    (default deny) allow none, so a new rule opening it would have to be deliberate."""
    sealer = _app(SEALER)
    selecting = [
        policy
        for policy in policies
        if "Ingress" in policy["spec"]["policyTypes"]
        and _selects(policy["spec"]["podSelector"], sealer.labels)
    ]
    assert selecting
    assert not [policy["metadata"]["name"] for policy in selecting if policy["spec"].get("ingress")]


def test_the_base_denies_every_ingress_and_egress_by_default() -> None:
    """Not an opt-in: whoever deploys the base gets default deny. Without it any pod could
    act as any bank at the gateway, and call identity's methods that take no operator
    token (the gateway's) as if it were the gateway."""
    policies = {
        doc["metadata"]["name"]: doc for doc in render("base") if doc["kind"] == "NetworkPolicy"
    }
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny


@pytest.mark.parametrize(
    "overlay", sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
)
def test_every_overlay_enables_the_network_policies(overlay: str) -> None:
    """The gateway trusts x-forwarded-client-cert only because nothing but Envoy can
    reach it: an overlay without the default-deny policies would let any pod act as
    any bank."""
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in render(f"overlays/{overlay}")}
    assert any(kind == "NetworkPolicy" and "default-deny" in name for kind, name in kinds), kinds
