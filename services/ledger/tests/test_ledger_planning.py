"""How a batch applies in request order, without a database."""

from __future__ import annotations

from openloop_ledger.model import AccountFlags, AccountSpec, Balance, TransferSpec
from openloop_ledger.planning import (
    Posting,
    accounts_named,
    plan_accounts,
    plan_transfers,
    transfer_ids_named,
)
from openloop_ledger.validation import A, T

WALLET = AccountFlags(debits_must_not_exceed_credits=True)


def _account(account_id: str, **change: object) -> AccountSpec:
    fields: dict[str, object] = {
        "id": account_id,
        "ledger": 764,
        "code": 1,
        "flags": AccountFlags(),
        "user_data": "",
        "participant_id": "bank-a",
    }
    fields.update(change)
    return AccountSpec(**fields)  # type: ignore[arg-type]


def _transfer(transfer_id: str, debit: str, credit: str, amount: int) -> TransferSpec:
    return TransferSpec(transfer_id, debit, credit, amount, 764, 1, "")


def test_accounts_repeated_in_one_batch_are_created_once() -> None:
    plan = plan_accounts(
        [_account("a"), _account("a"), _account("a", code=2), _account(""), _account("b")],
        existing={},
    )
    assert plan.results == [
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_EXISTS,
        A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE,
        A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY,
        A.CREATE_ACCOUNT_RESULT_OK,
    ]
    assert [spec.id for spec in plan.created] == ["a", "b"]


def test_existing_accounts_are_not_created_again() -> None:
    plan = plan_accounts(
        [_account("a"), _account("b", flags=WALLET)], existing={"b": _account("b")}
    )
    assert plan.results == [
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FLAGS,
    ]
    assert [spec.id for spec in plan.created] == ["a"]


def test_transfers_apply_in_request_order_against_running_balances() -> None:
    balances = {
        "bank": Balance(764, AccountFlags(), 0, 0),
        "wallet": Balance(764, WALLET, 0, 0),
        "shop": Balance(764, AccountFlags(), 0, 0),
    }
    plan = plan_transfers(
        [
            _transfer("spend-early", "wallet", "shop", 10),
            _transfer("fund", "bank", "wallet", 100),
            _transfer("spend", "wallet", "shop", 60),
            _transfer("spend-again", "wallet", "shop", 60),
            _transfer("fund", "bank", "wallet", 100),
            _transfer("spend-rest", "wallet", "shop", 40),
        ],
        balances,
        existing={},
    )
    assert plan.results == [
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
        T.CREATE_TRANSFER_RESULT_EXISTS,
        T.CREATE_TRANSFER_RESULT_OK,
    ]
    assert [spec.id for spec in plan.accepted] == ["fund", "spend", "spend-rest"]
    assert plan.postings == {
        "bank": Posting(debits=100),
        "wallet": Posting(debits=100, credits=100),
        "shop": Posting(credits=100),
    }


def test_a_recorded_transfer_is_never_applied_again() -> None:
    balances = {"a": Balance(764, AccountFlags(), 0, 0), "b": Balance(764, AccountFlags(), 0, 0)}
    recorded = _transfer("t", "a", "b", 5)
    plan = plan_transfers(
        [recorded, _transfer("t", "b", "a", 5)], balances, existing={"t": recorded}
    )
    assert plan.results == [
        T.CREATE_TRANSFER_RESULT_EXISTS,
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
    ]
    assert plan.accepted == []
    assert plan.postings == {}


def test_a_malformed_transfer_is_rejected_even_when_its_id_exists() -> None:
    recorded = _transfer("t", "a", "b", 5)
    plan = plan_transfers([_transfer("t", "a", "b", 0)], {}, existing={"t": recorded})
    assert plan.results == [T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO]


def test_only_well_formed_events_name_ids_to_look_up() -> None:
    specs = [
        _transfer("t2", "b", "a", 1),
        _transfer("t1", "c", "a", 1),
        _transfer("bad", "d", "e", 0),
        _transfer("t3", "bad id", "a", 1),
    ]
    assert accounts_named(specs) == ["a", "b", "c"]
    assert transfer_ids_named(specs) == ["t1", "t2", "t3"]
