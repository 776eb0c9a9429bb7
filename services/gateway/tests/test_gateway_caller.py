"""The participant comes only from the client certificate URI that Envoy forwards."""

from __future__ import annotations

import pytest

from openloop_gateway.caller import participant_from_xfcc

PREFIX = "spiffe://openloop.dev/participants/"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Hash=abc;URI={PREFIX}bank-a", "bank-a"),
        (f'Hash=abc;URI="{PREFIX}bank-b"', "bank-b"),
        (f"URI={PREFIX}evil,Hash=abc;URI={PREFIX}bank-a", "bank-a"),
        ("Hash=abc", None),
        ("Hash=abc;URI=spiffe://elsewhere/participants/bank-a", None),
        (f"Hash=abc;URI={PREFIX}Bank A", None),
        (f"Hash=abc;URI={PREFIX}", None),
        # Envoy forwards one URI= per URI SAN: a certificate naming two participants, or a
        # participant and anything else, authenticates nobody (it used to be the last one).
        (f"Hash=abc;URI={PREFIX}bank-a;URI={PREFIX}bank-b", None),
        (f"Hash=abc;URI={PREFIX}bank-a;URI=spiffe://openloop.dev/workloads/x", None),
    ],
)
def test_participant_from_xfcc(header, expected):
    assert participant_from_xfcc(header, PREFIX) == expected
