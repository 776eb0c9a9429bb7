"""A server span's peer attributes, from each form of address gRPC reports."""

from __future__ import annotations

from typing import Any

import pytest

from openloop_runtime.tracing import peer_attributes


@pytest.mark.parametrize(
    ("peer", "attributes"),
    [
        ("ipv4:10.1.2.3:50051", {"network.peer.address": "10.1.2.3", "network.peer.port": 50051}),
        ("ipv6:%5B::1%5D:38762", {"network.peer.address": "::1", "network.peer.port": 38762}),
        ("ipv6:[fd00::7]:443", {"network.peer.address": "fd00::7", "network.peer.port": 443}),
        ("unix:/run/openloop.sock", {}),
        ("ipv4:garbled", {}),
        ("", {}),
    ],
)
def test_the_peer_address_is_read_from_each_form_grpc_gives(peer: str, attributes: dict[str, Any]):
    assert peer_attributes(peer) == attributes
