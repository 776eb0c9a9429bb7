"""Every result code the ledger returns, and which one wins when an event breaks two rules."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from openloop.ledger.v1 import resources_pb2
from openloop_ledger.model import (
    MAX_AMOUNT,
    NO_FLAGS,
    AccountFlags,
    AccountSpec,
    AccountState,
    Balances,
    Resolution,
    Transfer,
    TransferFlags,
    TransferSpec,
    expiry_id,
)
from openloop_ledger.planning import LedgerView, TransferBatch, plan_accounts
from openloop_ledger.validation import (
    A,
    AccountResult,
    T,
    TransferResult,
    balancing_amount,
    check_account,
    check_pending_state,
    check_resolution_accounts,
    check_totals,
    compare_transfer,
    is_expired,
    is_lookup_id,
    is_well_formed_id,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WALLET = AccountFlags(debits_must_not_exceed_credits=True)
LIMITED_CREDIT = AccountFlags(credits_must_not_exceed_debits=True)
PENDING = TransferFlags(pending=True)
POST = TransferFlags(post_pending_transfer=True)
VOID = TransferFlags(void_pending_transfer=True)
LINKED = TransferFlags(linked=True)


def _state(
    account_id: str,
    *,
    ledger: int = 764,
    flags: AccountFlags = AccountFlags(),  # noqa: B008 - frozen value
    closed: bool = False,
    **balances: int,
) -> AccountState:
    spec = AccountSpec(account_id, ledger, 1, flags, "", "bank-a")
    return AccountState(spec, Balances(**balances), closed)


def _tx(
    transfer_id: str,
    debit: str = "bank",
    credit: str = "merchant",
    amount: int = 100,
    *,
    flags: TransferFlags = NO_FLAGS,
    pending_id: str = "",
    timeout: int = 0,
    ledger: int = 764,
    code: int = 1,
    user_data: str = "",
) -> TransferSpec:
    return TransferSpec(
        transfer_id, debit, credit, amount, ledger, code, user_data, flags, pending_id, timeout
    )


def _resolving(
    transfer_id: str, pending_id: str, flags: TransferFlags, **change: object
) -> TransferSpec:
    """A post or void that leaves every optional field empty."""
    bare = _tx(transfer_id, "", "", 0, flags=flags, pending_id=pending_id, ledger=0, code=0)
    return replace(bare, **change)  # type: ignore[arg-type]


ACCOUNTS = [
    _state("bank"),
    _state("merchant"),
    _state("wallet", flags=WALLET, credits_posted=1_000),
    _state("capped", flags=LIMITED_CREDIT),
    _state("usd", ledger=840),
    _state("shut", closed=True),
    _state("deep-pending", debits_pending=MAX_AMOUNT - 5),
    _state("full-pending", credits_pending=MAX_AMOUNT - 5),
    _state("full-posted", credits_posted=MAX_AMOUNT - 5),
]
RECORDED = [
    Transfer(_tx("paid", "bank", "wallet", 1_000, user_data="u", code=7), NOW, 0),
    Transfer(_tx("held", flags=PENDING), NOW, 1),
    Transfer(_tx("held-long", flags=PENDING, timeout=3600), NOW, 2),
    Transfer(_tx("was-posted", flags=PENDING), NOW, 3),
    Transfer(_tx("posting", "bank", "merchant", 100, flags=POST, pending_id="was-posted"), NOW, 4),
    Transfer(_tx("was-voided", flags=PENDING), NOW, 5),
    Transfer(_tx("was-expired", flags=PENDING, timeout=1), NOW - timedelta(hours=1), 6),
    Transfer(_tx("overdue", flags=PENDING, timeout=60), NOW - timedelta(minutes=2), 7),
]
RESOLUTIONS = {
    "was-posted": Resolution.POSTED,
    "was-voided": Resolution.VOIDED,
    "was-expired": Resolution.EXPIRED,
}


def _view() -> LedgerView:
    return LedgerView(
        {state.spec.id: state for state in ACCOUNTS},
        {transfer.spec.id: transfer for transfer in RECORDED},
        RESOLUTIONS,
    )


def _results(*request: TransferSpec) -> list[TransferResult]:
    return TransferBatch(_view(), NOW).apply(request)


# Every transfer code -----------------------------------------------------------------------

TRANSFER_CASES: list[tuple[str, list[TransferSpec], list[TransferResult]]] = [
    ("ok", [_tx("new")], [T.CREATE_TRANSFER_RESULT_OK]),
    (
        "linked event failed",
        [_tx("a", flags=LINKED), _tx("b", amount=0)],
        [
            T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED,
            T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO,
        ],
    ),
    (
        "linked event chain open",
        [_tx("a"), _tx("b", flags=LINKED)],
        [T.CREATE_TRANSFER_RESULT_OK, T.CREATE_TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN],
    ),
    ("id empty", [_tx("")], [T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY]),
    ("id malformed", [_tx("has space")], [T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED]),
    ("id too long", [_tx("x" * 65)], [T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED]),
    (
        "expiry ids are not client ids",
        [_tx(expiry_id("held"))],
        [T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED],
    ),
    (
        "exists with different flags",
        [_tx("paid", "bank", "wallet", 1_000, user_data="u", code=7, flags=PENDING)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FLAGS],
    ),
    (
        "exists with different pending id",
        [_resolving("posting", "held", POST)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_PENDING_ID],
    ),
    (
        "exists with different timeout",
        [_tx("held", flags=PENDING, timeout=5)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_TIMEOUT],
    ),
    (
        "exists with different debit account",
        [_tx("paid", "merchant", "wallet", 1_000, user_data="u", code=7)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID],
    ),
    (
        "exists with different credit account",
        [_tx("paid", "bank", "merchant", 1_000, user_data="u", code=7)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID],
    ),
    (
        "exists with different amount",
        [_tx("paid", "bank", "wallet", 999, user_data="u", code=7)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT],
    ),
    (
        "exists with different user data",
        [_tx("paid", "bank", "wallet", 1_000, user_data="v", code=7)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA],
    ),
    (
        "exists with different ledger",
        [_tx("paid", "bank", "wallet", 1_000, user_data="u", code=7, ledger=840)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_LEDGER],
    ),
    (
        "exists with different code",
        [_tx("paid", "bank", "wallet", 1_000, user_data="u", code=8)],
        [T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_CODE],
    ),
    (
        "exists",
        [_tx("paid", "bank", "wallet", 1_000, user_data="u", code=7)],
        [T.CREATE_TRANSFER_RESULT_EXISTS],
    ),
    (
        "pending and post",
        [_tx("new", flags=TransferFlags(pending=True, post_pending_transfer=True))],
        [T.CREATE_TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE],
    ),
    (
        "void and balancing",
        [
            _resolving(
                "new", "held", TransferFlags(void_pending_transfer=True, balancing_debit=True)
            )
        ],
        [T.CREATE_TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE],
    ),
    (
        "post and closing",
        [_resolving("new", "held", TransferFlags(post_pending_transfer=True, closing_credit=True))],
        [T.CREATE_TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE],
    ),
    (
        "debit empty",
        [_tx("new", debit="")],
        [T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY],
    ),
    (
        "debit malformed",
        [_tx("new", debit="b/nk")],
        [T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_IS_MALFORMED],
    ),
    (
        "debit of a post malformed",
        [_resolving("new", "held", POST, debit_account_id="b nk")],
        [T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_IS_MALFORMED],
    ),
    (
        "credit empty",
        [_tx("new", credit="")],
        [T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY],
    ),
    (
        "credit malformed",
        [_tx("new", credit="m?")],
        [T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_IS_MALFORMED],
    ),
    (
        "same accounts",
        [_tx("new", "bank", "bank")],
        [T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT],
    ),
    (
        "pending id on a plain transfer",
        [_tx("new", pending_id="held")],
        [T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_BE_EMPTY],
    ),
    (
        "post without pending id",
        [_resolving("new", "", POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_NOT_BE_EMPTY],
    ),
    (
        "void of a malformed id",
        [_resolving("new", "he ld", VOID)],
        [T.CREATE_TRANSFER_RESULT_PENDING_ID_IS_MALFORMED],
    ),
    (
        "post of an expiry id",
        [_resolving("new", expiry_id("held"), POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_ID_IS_MALFORMED],
    ),
    (
        "post of itself",
        [_resolving("new", "new", POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_BE_DIFFERENT],
    ),
    (
        "timeout on a plain transfer",
        [_tx("new", timeout=5)],
        [T.CREATE_TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER],
    ),
    (
        "timeout on a void",
        [_resolving("new", "held", VOID, timeout=5)],
        [T.CREATE_TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER],
    ),
    (
        "closing without pending",
        [_tx("new", flags=TransferFlags(closing_debit=True))],
        [T.CREATE_TRANSFER_RESULT_CLOSING_TRANSFER_MUST_BE_PENDING],
    ),
    ("zero amount", [_tx("new", amount=0)], [T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO]),
    (
        "zero amount, pending but not closing",
        [_tx("new", amount=0, flags=TransferFlags(pending=True))],
        [T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO],
    ),
    (
        "zero amount closing transfer",
        [_tx("new", amount=0, flags=TransferFlags(pending=True, closing_credit=True))],
        [T.CREATE_TRANSFER_RESULT_OK],
    ),
    (
        "zero balancing amount",
        [_tx("new", amount=0, flags=TransferFlags(balancing_debit=True))],
        [T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO],
    ),
    ("zero ledger", [_tx("new", ledger=0)], [T.CREATE_TRANSFER_RESULT_LEDGER_MUST_NOT_BE_ZERO]),
    ("zero code", [_tx("new", code=0)], [T.CREATE_TRANSFER_RESULT_CODE_MUST_NOT_BE_ZERO]),
    (
        "no debit account",
        [_tx("new", debit="ghost")],
        [T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND],
    ),
    (
        "no credit account",
        [_tx("new", credit="ghost")],
        [T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND],
    ),
    (
        "ledgers differ",
        [_tx("new", credit="usd")],
        [T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER],
    ),
    (
        "transfer ledger differs",
        [_tx("new", ledger=840)],
        [T.CREATE_TRANSFER_RESULT_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS],
    ),
    (
        "no pending transfer",
        [_resolving("new", "ghost", POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_NOT_FOUND],
    ),
    (
        "post of a plain transfer",
        [_resolving("new", "paid", POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_NOT_PENDING],
    ),
    (
        "post naming another debit",
        [_resolving("new", "held", POST, debit_account_id="wallet")],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID],
    ),
    (
        "void naming another credit",
        [_resolving("new", "held", VOID, credit_account_id="wallet")],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID],
    ),
    (
        "post naming another ledger",
        [_resolving("new", "held", POST, ledger=840)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER],
    ),
    (
        "post naming another code",
        [_resolving("new", "held", POST, code=2)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_CODE],
    ),
    (
        "post of more than pending",
        [_resolving("new", "held", POST, amount=101)],
        [T.CREATE_TRANSFER_RESULT_EXCEEDS_PENDING_TRANSFER_AMOUNT],
    ),
    (
        "partial void",
        [_resolving("new", "held", VOID, amount=50)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT],
    ),
    (
        "void of more than pending",
        [_resolving("new", "held", VOID, amount=101)],
        [T.CREATE_TRANSFER_RESULT_EXCEEDS_PENDING_TRANSFER_AMOUNT],
    ),
    (
        "post after post",
        [_resolving("new", "was-posted", POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED],
    ),
    (
        "void after void",
        [_resolving("new", "was-voided", VOID)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED],
    ),
    (
        "post after expiry",
        [_resolving("new", "was-expired", POST)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED],
    ),
    (
        "void when overdue",
        [_resolving("new", "overdue", VOID)],
        [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED],
    ),
    (
        "debit closed",
        [_tx("new", "shut", "merchant")],
        [T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED],
    ),
    (
        "credit closed",
        [_tx("new", "bank", "shut")],
        [T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED],
    ),
    (
        "debits pending overflow",
        [_tx("new", amount=MAX_AMOUNT + 1, flags=PENDING)],
        [T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_PENDING],
    ),
    (
        "credits pending overflow",
        [_tx("new", "bank", "full-pending", 10, flags=PENDING)],
        [T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_PENDING],
    ),
    (
        "debits posted overflow",
        [_tx("new", amount=2**64 - 1)],
        [T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED],
    ),
    (
        "credits posted overflow",
        [_tx("new", "bank", "full-posted", 10)],
        [T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS_POSTED],
    ),
    (
        "debits overflow",
        [_tx("new", "deep-pending", "merchant", 10)],
        [T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS],
    ),
    (
        "credits overflow",
        [_tx("new", "bank", "full-pending", 10)],
        [T.CREATE_TRANSFER_RESULT_OVERFLOWS_CREDITS],
    ),
    (
        "wallet overdrawn",
        [_tx("new", "wallet", "merchant", 1_001)],
        [T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS],
    ),
    (
        "wallet overdrawn by a pending transfer",
        [_tx("new", "wallet", "merchant", 1_001, flags=PENDING)],
        [T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS],
    ),
    (
        "credit limit passed",
        [_tx("new", "bank", "capped", 1)],
        [T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS],
    ),
]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [pytest.param(request, expected, id=label) for label, request, expected in TRANSFER_CASES],
)
def test_transfer_result(request_: list[TransferSpec], expected: list[TransferResult]) -> None:
    assert _results(*request_) == expected


def test_the_table_covers_every_transfer_code() -> None:
    produced = {code for _, _, expected in TRANSFER_CASES for code in expected}
    every = set(resources_pb2.CreateTransferResult.values()) - {
        T.CREATE_TRANSFER_RESULT_UNSPECIFIED
    }
    assert every - produced == set()


# Precedence: an event that breaks two rules gets the earlier code -------------------------

TRANSFER_PRECEDENCE: list[tuple[str, TransferSpec, TransferResult, TransferResult]] = [
    (
        "malformed id before zero amount",
        _tx("bad id", amount=0),
        T.CREATE_TRANSFER_RESULT_ID_IS_MALFORMED,
        T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO,
    ),
    (
        "exists before mutually exclusive flags",
        _tx("paid", flags=TransferFlags(pending=True, void_pending_transfer=True)),
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FLAGS,
        T.CREATE_TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    ),
    (
        "exists before a missing account",
        _tx("paid", "ghost", "wallet", 1_000, user_data="u", code=7),
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND,
    ),
    (
        "different debit before different amount",
        _tx("paid", "merchant", "wallet", 5, user_data="u", code=7),
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT,
    ),
    (
        "different amount before different user data",
        _tx("paid", "bank", "wallet", 5, user_data="v", code=7),
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT,
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA,
    ),
    (
        "empty debit before empty credit",
        _tx("new", "", ""),
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY,
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY,
    ),
    (
        "same accounts before pending id",
        _tx("new", "bank", "bank", pending_id="held"),
        T.CREATE_TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT,
        T.CREATE_TRANSFER_RESULT_PENDING_ID_MUST_BE_EMPTY,
    ),
    (
        "timeout before closing",
        _tx("new", timeout=5, flags=TransferFlags(closing_credit=True)),
        T.CREATE_TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
        T.CREATE_TRANSFER_RESULT_CLOSING_TRANSFER_MUST_BE_PENDING,
    ),
    (
        "zero amount before zero ledger",
        _tx("new", amount=0, ledger=0),
        T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO,
        T.CREATE_TRANSFER_RESULT_LEDGER_MUST_NOT_BE_ZERO,
    ),
    (
        "missing debit before missing credit",
        _tx("new", "ghost", "phantom"),
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND,
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND,
    ),
    (
        "ledger mismatch before closed account",
        _tx("new", "shut", "merchant", ledger=840),
        T.CREATE_TRANSFER_RESULT_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED,
    ),
    (
        "different ledger of pending before more than pending",
        _resolving("new", "held", POST, ledger=840, amount=500),
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_PENDING_TRANSFER_AMOUNT,
    ),
    (
        "more than pending before expired",
        _resolving("new", "overdue", POST, amount=500),
        T.CREATE_TRANSFER_RESULT_EXCEEDS_PENDING_TRANSFER_AMOUNT,
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED,
    ),
    (
        "closed before overdrawn",
        _tx("new", "wallet", "shut", 5_000),
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
    ),
    (
        "overflow before overdrawn",
        _tx("new", "wallet", "merchant", MAX_AMOUNT + 1),
        T.CREATE_TRANSFER_RESULT_OVERFLOWS_DEBITS_POSTED,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS,
    ),
]


@pytest.mark.parametrize(
    ("spec", "earlier", "later"),
    [
        pytest.param(spec, earlier, later, id=label)
        for label, spec, earlier, later in TRANSFER_PRECEDENCE
    ],
)
def test_the_earlier_transfer_code_wins(
    spec: TransferSpec, earlier: TransferResult, later: TransferResult
) -> None:
    assert earlier < later, "the pair must be listed in enum order"
    assert _results(spec) == [earlier]


# Accounts ---------------------------------------------------------------------------------

ACCOUNT = AccountSpec("wallet:bank-a.citizen-abc", 764, 10, WALLET, "citizens/abc", "bank-a")


def _account(**change: object) -> AccountSpec:
    return replace(ACCOUNT, **change)  # type: ignore[arg-type]


ACCOUNT_CASES: list[tuple[str, list[AccountSpec], list[AccountResult]]] = [
    ("ok", [ACCOUNT], [A.CREATE_ACCOUNT_RESULT_OK]),
    (
        "linked event failed",
        [_account(id="a", linked=True), _account(id="b", code=0)],
        [
            A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_FAILED,
            A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO,
        ],
    ),
    (
        "linked event chain open",
        [_account(linked=True)],
        [A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_CHAIN_OPEN],
    ),
    ("id empty", [_account(id="")], [A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY]),
    ("id malformed", [_account(id="wallet/abc")], [A.CREATE_ACCOUNT_RESULT_ID_IS_MALFORMED]),
    (
        "exists with different flags",
        [_account(id="old", flags=AccountFlags())],
        [A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FLAGS],
    ),
    (
        "exists with different user data",
        [_account(id="old", user_data="x")],
        [A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA],
    ),
    (
        "exists with different participant",
        [_account(id="old", participant_id="bank-b")],
        [A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_PARTICIPANT],
    ),
    (
        "exists with different ledger",
        [_account(id="old", ledger=840)],
        [A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_LEDGER],
    ),
    (
        "exists with different code",
        [_account(id="old", code=11)],
        [A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE],
    ),
    ("exists", [_account(id="old")], [A.CREATE_ACCOUNT_RESULT_EXISTS]),
    (
        "linked is not compared",
        [_account(id="old", linked=True), ACCOUNT],
        [A.CREATE_ACCOUNT_RESULT_EXISTS, A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_FAILED],
    ),
    (
        "both limits",
        [
            _account(
                flags=AccountFlags(
                    debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True
                )
            )
        ],
        [A.CREATE_ACCOUNT_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE],
    ),
    ("zero ledger", [_account(ledger=0)], [A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO]),
    ("zero code", [_account(code=0)], [A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO]),
]


@pytest.mark.parametrize(
    ("specs", "expected"),
    [pytest.param(specs, expected, id=label) for label, specs, expected in ACCOUNT_CASES],
)
def test_account_result(specs: list[AccountSpec], expected: list[AccountResult]) -> None:
    assert plan_accounts(specs, {"old": _account(id="old")}).results == expected


def test_the_table_covers_every_account_code() -> None:
    produced = {code for _, _, expected in ACCOUNT_CASES for code in expected}
    every = set(resources_pb2.CreateAccountResult.values()) - {A.CREATE_ACCOUNT_RESULT_UNSPECIFIED}
    assert every - produced == set()


@pytest.mark.parametrize(
    ("spec", "earlier", "later"),
    [
        (
            _account(id="", ledger=0),
            A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY,
            A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO,
        ),
        (
            _account(id="old", ledger=0),
            A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_LEDGER,
            A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO,
        ),
        (
            _account(
                id="old",
                flags=AccountFlags(
                    debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True
                ),
            ),
            A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_FLAGS,
            A.CREATE_ACCOUNT_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        (
            _account(id="old", user_data="x", code=1),
            A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA,
            A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE,
        ),
        (
            _account(ledger=0, code=0),
            A.CREATE_ACCOUNT_RESULT_LEDGER_MUST_NOT_BE_ZERO,
            A.CREATE_ACCOUNT_RESULT_CODE_MUST_NOT_BE_ZERO,
        ),
    ],
)
def test_the_earlier_account_code_wins(
    spec: AccountSpec, earlier: AccountResult, later: AccountResult
) -> None:
    assert earlier < later
    assert check_account(spec, {"old": _account(id="old")}.get(spec.id)) == earlier


# The rules one by one ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "client", "lookup"),
    [
        ("payments.p-1:x_y", True, True),
        ("a" * 64, True, True),
        ("a" * 65, False, False),
        ("", False, False),
        ("café", False, False),
        ("line\n", False, False),
        (expiry_id("payments.p-1"), False, True),
        (expiry_id(""), False, False),
        (expiry_id(expiry_id("p")), False, False),
    ],
)
def test_ids(value: str, client: bool, lookup: bool) -> None:
    assert is_well_formed_id(value) is client
    assert is_lookup_id(value) is lookup


@dataclass(frozen=True)
class _Totals:
    ledger: int = 764
    closed: bool = False
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0


@pytest.mark.parametrize(
    ("flags", "requested", "expected"),
    [
        (TransferFlags(balancing_debit=True), 1_000, 70),
        (TransferFlags(balancing_debit=True), 50, 50),
        (TransferFlags(balancing_credit=True), 1_000, 180),
        (TransferFlags(balancing_debit=True, balancing_credit=True), 1_000, 70),
        (TransferFlags(balancing_debit=True, balancing_credit=True), 60, 60),
        (NO_FLAGS, 1_000, 1_000),
    ],
)
def test_balancing_moves_at_most_what_the_accounts_allow(
    flags: TransferFlags, requested: int, expected: int
) -> None:
    # The debit account can give 100 - 20 - 10 = 70; the credit account take 300 - 100 - 20.
    debit = _Totals(credits_posted=100, debits_posted=20, debits_pending=10)
    credit = _Totals(debits_posted=300, credits_posted=100, credits_pending=20)
    spec = _tx("b", amount=requested, flags=flags)
    assert balancing_amount(spec, debit, credit) == expected


def test_balancing_on_an_overdrawn_account_moves_nothing() -> None:
    debit = _Totals(credits_posted=10, debits_posted=50)
    spec = _tx("b", amount=5, flags=TransferFlags(balancing_debit=True))
    assert balancing_amount(spec, debit, _Totals()) == 0


def test_limits_count_pending_debits_and_credits() -> None:
    wallet = _Totals(debits_must_not_exceed_credits=True, credits_posted=100, debits_pending=60)
    assert check_totals(False, 40, wallet, _Totals()) is None
    assert check_totals(False, 41, wallet, _Totals()) == T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
    capped = _Totals(credits_must_not_exceed_debits=True, debits_posted=100, credits_pending=60)
    assert check_totals(True, 40, _Totals(), capped) is None
    assert check_totals(True, 41, _Totals(), capped) == T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS


def test_a_post_or_void_replayed_with_empty_fields_exists() -> None:
    recorded = _tx("p-1", "bank", "merchant", 60, flags=POST, pending_id="held", user_data="x")
    held = _tx("held", "bank", "merchant", 60, flags=TransferFlags(pending=True), user_data="x")
    bare = _resolving("p-1", "held", POST)
    # Amount 0 is the pending transfer's full amount and an empty user_data its user_data:
    # the same as this post of all 60 ...
    assert compare_transfer(bare, recorded, held) == T.CREATE_TRANSFER_RESULT_EXISTS
    # ... but not as a post of 60 of a pending 100 (TigerBeetle's
    # post_or_void_pending_transfer_exists).
    assert (
        compare_transfer(bare, recorded, replace(held, amount=100))
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT
    )
    assert compare_transfer(replace(bare, amount=60), recorded) == T.CREATE_TRANSFER_RESULT_EXISTS
    assert (
        compare_transfer(replace(bare, amount=59), recorded)
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT
    )
    assert (
        compare_transfer(replace(bare, debit_account_id="wallet"), recorded, held)
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    )
    assert (
        compare_transfer(replace(bare, user_data="y"), recorded, held)
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA
    )
    # A post given its own user_data, retried without it: the pending's is not that one.
    assert (
        compare_transfer(bare, replace(recorded, user_data="own"), held)
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA
    )
    # Recorded empty, before posts inherited the pending transfer's: still the same post.
    assert (
        compare_transfer(bare, replace(recorded, user_data=""), held)
        == T.CREATE_TRANSFER_RESULT_EXISTS
    )


def test_the_flags_are_compared_whole_linked_included() -> None:
    recorded = _tx("t-1", flags=TransferFlags(linked=True))
    assert (
        compare_transfer(_tx("t-1", flags=TransferFlags(linked=True)), recorded)
        == T.CREATE_TRANSFER_RESULT_EXISTS
    )
    assert (
        compare_transfer(_tx("t-1"), recorded)
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FLAGS
    )


def test_a_balancing_replay_exists_when_it_allows_what_moved() -> None:
    balancing = TransferFlags(balancing_debit=True)
    recorded = _tx("b-1", amount=70, flags=balancing)
    assert (
        compare_transfer(_tx("b-1", amount=70, flags=balancing), recorded)
        == T.CREATE_TRANSFER_RESULT_EXISTS
    )
    assert (
        compare_transfer(_tx("b-1", amount=1_000, flags=balancing), recorded)
        == T.CREATE_TRANSFER_RESULT_EXISTS
    )
    assert (
        compare_transfer(_tx("b-1", amount=69, flags=balancing), recorded)
        == T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT
    )


def test_expiry_is_due_exactly_at_the_timeout() -> None:
    pending = Transfer(_tx("p", flags=PENDING, timeout=60), NOW, 0)
    assert not is_expired(pending, NOW + timedelta(seconds=59, microseconds=999_999))
    assert is_expired(pending, NOW + timedelta(seconds=60))
    assert not is_expired(Transfer(_tx("p", flags=PENDING), NOW, 0), NOW + timedelta(days=365))


def test_a_resolution_outranks_the_clock() -> None:
    assert check_pending_state(Resolution.POSTED, expired=True) == (
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED
    )
    assert (
        check_pending_state(None, expired=True) == T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED
    )
    assert check_pending_state(None, expired=False) is None


def test_closed_accounts_accept_voids_and_posts_of_their_closing_transfer() -> None:
    closed = _Totals(closed=True)
    closing = TransferFlags(pending=True, closing_debit=True)
    assert check_resolution_accounts(VOID, PENDING, closed, closed) is None
    assert check_resolution_accounts(POST, closing, closed, _Totals()) is None
    assert (
        check_resolution_accounts(POST, closing, closed, closed)
        == T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED
    )
    assert (
        check_resolution_accounts(POST, PENDING, closed, _Totals())
        == T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED
    )
