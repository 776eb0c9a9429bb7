"""Netting, paging and request parsing, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openloop.common.v1 import money_pb2
from openloop.settlement.v1 import service_pb2
from openloop_runtime.errors import DomainError
from openloop_settlement.model import TransferRecord
from openloop_settlement.netting import (
    POSITION_MAX,
    POSITION_MIN,
    PositionAtLimit,
    PositionChange,
    position_at_limit,
    position_changes,
    settlement_instructions,
    zero_position,
)
from openloop_settlement.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PageRequest,
    decode_token,
    encode_token,
    page_request,
)
from openloop_settlement.parse import position_participant, transfer_record


def test_the_payer_bank_goes_down_and_the_payee_bank_up() -> None:
    changes = position_changes(TransferRecord("t1", "bank-z", "bank-a", 1_500))
    assert changes == [PositionChange("bank-a", 1_500), PositionChange("bank-z", -1_500)]


def test_a_transfer_inside_one_bank_changes_no_position() -> None:
    record = TransferRecord("t1", "bank-a", "bank-a", 1_500)
    assert not record.inter_participant
    assert position_changes(record) == []


@given(
    debit=st.sampled_from(["bank-a", "bank-b", "bank-c"]),
    credit=st.sampled_from(["bank-a", "bank-b", "bank-c"]),
    amount=st.integers(1, 2**63 - 1),
)
def test_changes_always_net_to_zero_in_participant_order(
    debit: str, credit: str, amount: int
) -> None:
    changes = position_changes(TransferRecord("t", debit, credit, amount))
    assert sum(change.delta for change in changes) == 0
    ids = [change.participant_id for change in changes]
    assert ids == sorted(ids)


def test_the_position_at_its_limit_is_the_one_the_transfer_would_overflow() -> None:
    credit_side = position_changes(TransferRecord("t1", "bank-z", "bank-a", 1))
    # The payee's OPEN-cycle position is at the top; its lifetime one is not (it paid as
    # much in an earlier cycle).
    assert position_at_limit(credit_side, 7, {"bank-a": POSITION_MAX}, {"bank-a": 0}) == (
        PositionAtLimit("bank-a", 7)
    )
    # Its lifetime position is at the top, its cycle's is not.
    assert position_at_limit(credit_side, 7, {}, {"bank-a": POSITION_MAX}) == PositionAtLimit(
        "bank-a", None
    )
    # The payer's positions at the bottom: the cycle's first when both are, as the store
    # moves it first.
    assert position_at_limit(
        credit_side, 7, {"bank-z": POSITION_MIN}, {"bank-z": POSITION_MIN}
    ) == PositionAtLimit("bank-z", 7)
    with pytest.raises(ValueError, match="no position"):
        position_at_limit([], 7, {}, {})


def test_a_participant_with_nothing_recorded_stands_at_zero() -> None:
    position = zero_position("bank-a")
    assert (position.net_position, position.transfer_count, position.update_time) == (0, 0, None)


@pytest.mark.parametrize(
    ("size", "expected"), [(0, DEFAULT_PAGE_SIZE), (1, 1), (1000, 1000), (5000, MAX_PAGE_SIZE)]
)
def test_page_sizes_default_and_are_capped(size: int, expected: int) -> None:
    assert page_request(size, "") == PageRequest(size=expected, after=None)


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True))
def test_page_tokens_round_trip(participant_id: str) -> None:
    assert decode_token(encode_token(participant_id)) == participant_id


def _invalid_field(error: DomainError) -> str:
    assert error.reason == "INVALID_FIELD"
    return error.metadata["field"]


@pytest.mark.parametrize("token", ["%%%", "bm90IGFuIGlk!", encode_token("Not An Id"), "é", "YQ"])
def test_a_token_we_did_not_issue_is_refused(token: str) -> None:
    with pytest.raises(DomainError) as caught:
        page_request(10, token)
    assert _invalid_field(caught.value) == "page_token"


def test_a_negative_page_size_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        page_request(-1, "")
    assert _invalid_field(caught.value) == "page_size"


def _request(**fields: object) -> service_pb2.RecordTransferRequest:
    values: dict[str, object] = {
        "transfer_id": "pay:2025.01-abc",
        "debit_participant": "participants/bank-a",
        "credit_participant": "participants/bank-b",
        "amount": money_pb2.Money(currency_code="THB", amount_satang=250),
    }
    values.update(fields)
    return service_pb2.RecordTransferRequest(**values)  # type: ignore[arg-type]


def test_a_well_formed_request_is_parsed() -> None:
    assert transfer_record(_request()) == TransferRecord("pay:2025.01-abc", "bank-a", "bank-b", 250)


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"transfer_id": ""}, "INVALID_FIELD", "transfer_id"),
        ({"transfer_id": "a/b"}, "INVALID_FIELD", "transfer_id"),
        ({"transfer_id": "x" * 65}, "INVALID_FIELD", "transfer_id"),
        ({"debit_participant": "bank-a"}, "INVALID_FIELD", "debit_participant"),
        ({"credit_participant": "participants/"}, "INVALID_FIELD", "credit_participant"),
        ({"amount": None}, "INVALID_FIELD", "amount"),
        (
            {"amount": money_pb2.Money(currency_code="USD", amount_satang=1)},
            "CURRENCY_NOT_SUPPORTED",
            "amount.currency_code",
        ),
        (
            {"amount": money_pb2.Money(currency_code="THB", amount_satang=0)},
            "INVALID_AMOUNT",
            "amount.amount_satang",
        ),
        (
            {"amount": money_pb2.Money(currency_code="THB", amount_satang=-5)},
            "INVALID_AMOUNT",
            "amount.amount_satang",
        ),
    ],
)
def test_malformed_requests_name_the_field(
    fields: dict[str, object], reason: str, field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        transfer_record(_request(**fields))
    assert (caught.value.reason, caught.value.metadata["field"]) == (reason, field)


def test_position_names_are_parsed() -> None:
    assert position_participant("participants/bank-a/position") == "bank-a"
    for name in ("participants/bank-a", "bank-a/position", "participants/Bank/position", ""):
        with pytest.raises(DomainError):
            position_participant(name)


@given(
    st.dictionaries(
        st.sampled_from([f"bank-{c}" for c in "abcdefg"]),
        st.integers(-(10**12), 10**12),
        max_size=7,
    )
)
def test_settlement_instructions_square_every_position(raw: dict[str, int]) -> None:
    positions = dict(raw)
    if positions:  # make them sum to zero, as a cycle's do
        first = sorted(positions)[0]
        positions[first] -= sum(positions.values())
    instructions = settlement_instructions(positions)
    moved = dict.fromkeys(positions, 0)
    for instruction in instructions:
        assert instruction.amount > 0
        moved[instruction.payer] -= instruction.amount
        moved[instruction.payee] += instruction.amount
    assert moved == positions
    assert len(instructions) <= max(0, sum(1 for v in positions.values() if v) - 1)


def test_instructions_refuse_positions_that_do_not_balance() -> None:
    with pytest.raises(ValueError, match="sum to zero"):
        settlement_instructions({"bank-a": -1})
