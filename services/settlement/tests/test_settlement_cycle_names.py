"""Cycle, position and obligation names, and the new lists' page tokens, without a database."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openloop_runtime.errors import DomainError
from openloop_settlement import page_tokens, parse
from openloop_settlement.model import CycleState, ObligationKey


def test_names_are_parsed() -> None:
    assert parse.cycle_name("settlementCycles/42") == 42
    assert parse.cycles_parent("settlementCycles/-") is None
    assert parse.cycle_position_name("settlementCycles/3/positions/bank-a") == (3, "bank-a")
    assert parse.obligation_name("settlementCycles/-/obligations/pay:1.x") == (None, "pay:1.x")
    assert parse.obligation_name("settlementCycles/7/obligations/t") == (7, "t")


@pytest.mark.parametrize(
    "name",
    ["settlementCycles/0", "settlementCycles/+1", "settlementCycles/1/", "settlementCycles/\u0661"],
)
def test_cycle_numbers_are_plain_decimals_from_one(name: str) -> None:
    with pytest.raises(DomainError):
        parse.cycle_name(name)


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@given(
    cycle=st.integers(1, 2**63 - 1),
    transfer=st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
)
def test_obligation_tokens_round_trip(cycle: int, transfer: str) -> None:
    key = ObligationKey(cycle, transfer)
    token = page_tokens.obligations_token(None, "bank-a", key)
    assert page_tokens.obligations_after(token, None, "bank-a") == key


@pytest.mark.parametrize(
    "after",
    [
        [True, "t"],
        [1.5, "t"],
        [0, "t"],
        [2**63, "t"],
        ["1", "t"],
        [1, "a/b"],
        [1, ""],
        [1],
        [1, "t", 2],
        [[1], "t"],
    ],
)
def test_a_forged_obligation_token_is_refused(after: list[object]) -> None:
    token = _raw({"k": "obligations", "s": "-/", "a": after})
    with pytest.raises(DomainError) as caught:
        page_tokens.obligations_after(token, None, None)
    assert caught.value.metadata["field"] == "page_token"


def test_tokens_are_bound_to_their_list_and_filters() -> None:
    token = page_tokens.cycles_token(CycleState.CLOSED, 5)
    assert page_tokens.cycles_after(token, CycleState.CLOSED) == 5
    for attempt in (
        lambda: page_tokens.cycles_after(token, None),
        lambda: page_tokens.cycle_positions_after(token, 5),
        lambda: page_tokens.cycles_after(_raw([1]), None),
        lambda: page_tokens.cycles_after("x" * 600, None),
        lambda: page_tokens.cycles_after(_raw({"k": "cycles", "s": "", "a": [1]})[:-2], None),
    ):
        with pytest.raises(DomainError):
            attempt()


@given(st.text(max_size=300))
def test_no_text_makes_token_decoding_fail_other_than_invalid(token: str) -> None:
    try:
        page_tokens.obligations_after(token, 3, None)
    except DomainError as error:
        field = error.metadata["field"]
    else:
        field = "page_token"  # it happened to be a token we issue
    assert field == "page_token"
