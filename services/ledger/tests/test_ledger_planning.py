"""How batches apply: two-phase flows, balancing, closing, history, linked chains, replays."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from openloop_ledger.model import (
    NO_FLAGS,
    AccountFlags,
    AccountSpec,
    AccountState,
    Balances,
    BalanceSnapshot,
    Resolution,
    Transfer,
    TransferFlags,
    TransferSpec,
    expiry_id,
)
from openloop_ledger.planning import (
    LedgerView,
    TransferBatch,
    account_ids_named,
    accounts_named,
    accounts_of,
    plan_accounts,
    transfer_ids_named,
)
from openloop_ledger.validation import A, T, TransferResult

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WALLET = AccountFlags(debits_must_not_exceed_credits=True)
PENDING = TransferFlags(pending=True)
POST = TransferFlags(post_pending_transfer=True)
VOID = TransferFlags(void_pending_transfer=True)
OK = T.CREATE_TRANSFER_RESULT_OK
FAILED = T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED
CHAIN_OPEN = T.CREATE_TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN


def _tx(
    transfer_id: str,
    debit: str = "bank",
    credit: str = "wallet",
    amount: int = 100,
    *,
    flags: TransferFlags = NO_FLAGS,
    pending_id: str = "",
    timeout: int = 0,
    user_data: str = "",
) -> TransferSpec:
    return TransferSpec(
        transfer_id, debit, credit, amount, 764, 1, user_data, flags, pending_id, timeout
    )


def _post(transfer_id: str, pending_id: str, amount: int = 0, **change: object) -> TransferSpec:
    spec = TransferSpec(transfer_id, "", "", amount, 0, 0, "", POST, pending_id)
    return replace(spec, **change)  # type: ignore[arg-type]


def _void(transfer_id: str, pending_id: str) -> TransferSpec:
    return TransferSpec(transfer_id, "", "", 0, 0, 0, "", VOID, pending_id)


def _linked(spec: TransferSpec) -> TransferSpec:
    return replace(spec, flags=replace(spec.flags, linked=True))


class Ledger:
    """A stand-in for the store: what committed batches left behind."""

    def __init__(self, *accounts: AccountSpec, funded: dict[str, int] | None = None) -> None:
        self.accounts = {
            spec.id: AccountState(spec, Balances(), spec.flags.closed) for spec in accounts
        }
        for account_id, amount in (funded or {}).items():
            state = self.accounts[account_id]
            self.accounts[account_id] = replace(state, balances=Balances(credits_posted=amount))
        self.transfers: dict[str, Transfer] = {}
        self.resolutions: dict[str, Resolution] = {}

    def batch(self, now: datetime = NOW) -> TransferBatch:
        return TransferBatch(
            LedgerView(dict(self.accounts), dict(self.transfers), dict(self.resolutions)), now
        )

    def commit(self, batch: TransferBatch) -> None:
        for state in batch.changed_accounts():
            self.accounts[state.spec.id] = state
        for transfer in batch.accepted:
            self.transfers[transfer.spec.id] = transfer
        self.resolutions.update(batch.resolved)

    def run(self, *request: TransferSpec, now: datetime = NOW) -> list[TransferResult]:
        batch = self.batch(now)
        results = batch.apply(request)
        self.commit(batch)
        return results

    def balances(self, account_id: str) -> Balances:
        return self.accounts[account_id].balances


def _account(account_id: str, flags: AccountFlags = AccountFlags()) -> AccountSpec:  # noqa: B008
    return AccountSpec(account_id, 764, 1, flags, "", "bank-a")


def _ledger(**wallet_flags: bool) -> Ledger:
    """A bank, and a wallet and a shop funded with 1,000 each."""
    return Ledger(
        _account("bank"),
        _account("wallet", replace(WALLET, **wallet_flags)),
        _account("shop"),
        funded={"wallet": 1_000, "shop": 1_000},
    )


# Two-phase transfers -----------------------------------------------------------------------


def test_a_pending_transfer_reserves_and_a_full_post_moves_it() -> None:
    ledger = _ledger()
    assert ledger.run(_tx("hold", "wallet", "shop", 300, flags=PENDING)) == [OK]
    assert ledger.balances("wallet") == Balances(debits_pending=300, credits_posted=1_000)
    assert ledger.balances("shop") == Balances(credits_pending=300, credits_posted=1_000)

    batch = ledger.batch()
    assert batch.apply([_post("capture", "hold", user_data="orders/1")]) == [OK]
    (post,) = batch.accepted
    assert post.spec == TransferSpec(
        "capture", "wallet", "shop", 300, 764, 1, "orders/1", POST, "hold"
    )
    assert batch.resolved == {"hold": Resolution.POSTED}
    ledger.commit(batch)
    assert ledger.balances("wallet") == Balances(debits_posted=300, credits_posted=1_000)
    assert ledger.balances("shop") == Balances(credits_posted=1_300)


def test_a_partial_post_releases_the_rest() -> None:
    ledger = _ledger()
    ledger.run(_tx("hold", "wallet", "shop", 300, flags=PENDING))
    batch = ledger.batch()
    assert batch.apply([_post("capture", "hold", 120)]) == [OK]
    assert batch.accepted[0].spec.amount == 120
    ledger.commit(batch)
    assert ledger.balances("wallet") == Balances(debits_posted=120, credits_posted=1_000)
    assert ledger.balances("shop") == Balances(credits_posted=1_120)


def test_a_void_releases_everything() -> None:
    ledger = _ledger()
    ledger.run(_tx("hold", "wallet", "shop", 300, flags=PENDING))
    batch = ledger.batch()
    assert batch.apply([_void("cancel", "hold")]) == [OK]
    assert batch.accepted[0].spec.amount == 300
    assert batch.resolved == {"hold": Resolution.VOIDED}
    ledger.commit(batch)
    assert ledger.balances("wallet") == Balances(credits_posted=1_000)
    assert ledger.balances("shop") == Balances(credits_posted=1_000)


def test_a_pending_amount_counts_against_the_wallet_until_voided() -> None:
    ledger = _ledger()
    assert ledger.run(
        _tx("hold", "wallet", "shop", 800, flags=PENDING),
        _tx("spend", "wallet", "shop", 300),
        _void("cancel", "hold"),
        _tx("spend-again", "wallet", "shop", 300),
    ) == [OK, T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS, OK, OK]


def test_posting_twice_or_after_a_void_fails_within_and_across_batches() -> None:
    ledger = _ledger()
    assert ledger.run(
        _tx("a", "wallet", "shop", 10, flags=PENDING),
        _tx("b", "wallet", "shop", 10, flags=PENDING),
        _post("post-a", "a"),
        _post("post-a-again", "a"),
        _void("void-b", "b"),
        _post("post-b", "b"),
    ) == [
        OK,
        OK,
        OK,
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED,
        OK,
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED,
    ]
    assert ledger.run(_void("void-a", "a"), _void("void-b-again", "b")) == [
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED,
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED,
    ]
    assert ledger.balances("wallet") == Balances(debits_posted=10, credits_posted=1_000)


def test_a_pending_transfer_with_a_timeout_is_scheduled_to_expire() -> None:
    batch = _ledger().batch()
    batch.apply([_tx("hold", "wallet", "shop", 5, flags=PENDING, timeout=90)])
    assert batch.timeouts == [("hold", NOW + timedelta(seconds=90))]


def test_an_overdue_pending_transfer_cannot_be_posted_and_expires() -> None:
    ledger = _ledger()
    ledger.run(_tx("hold", "wallet", "shop", 300, flags=PENDING, timeout=60))
    later = NOW + timedelta(seconds=60)

    batch = ledger.batch(later)
    assert batch.apply([_post("late", "hold")]) == [
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED
    ]
    assert batch.accepted == []
    assert batch.expire(["hold", "hold", "ghost", "bad id"]) == 1
    (expiry,) = batch.accepted
    assert expiry.spec == TransferSpec(
        expiry_id("hold"), "wallet", "shop", 300, 764, 1, "", VOID, "hold"
    )
    assert expiry.create_time == later
    assert batch.resolved == {"hold": Resolution.EXPIRED}
    assert batch.apply([_void("late-void", "hold")]) == [
        T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED
    ]
    ledger.commit(batch)
    assert ledger.balances("wallet") == Balances(credits_posted=1_000)
    assert ledger.balances("shop") == Balances(credits_posted=1_000)
    assert ledger.batch(later).expire(["hold"]) == 0


def test_expire_skips_what_is_not_due_or_not_pending() -> None:
    ledger = _ledger()
    ledger.run(
        _tx("due-later", "wallet", "shop", 1, flags=PENDING, timeout=3600),
        _tx("never", "wallet", "shop", 1, flags=PENDING),
        _tx("plain", "wallet", "shop", 1),
        _tx("posted", "wallet", "shop", 1, flags=PENDING, timeout=1),
        _post("post", "posted"),
    )
    batch = ledger.batch(NOW + timedelta(seconds=10))
    assert batch.expire(["due-later", "never", "plain", "posted"]) == 0
    fresh = ledger.batch(NOW + timedelta(days=1))
    fresh.apply([_tx("new", "wallet", "shop", 1, flags=PENDING, timeout=1)])
    assert fresh.expire(["new"]) == 0


def test_planning_refuses_a_view_without_the_pending_transfers_accounts() -> None:
    ledger = _ledger()
    ledger.run(_tx("hold", "wallet", "shop", 5, flags=PENDING))
    view = LedgerView({}, ledger.transfers, {})
    with pytest.raises(LookupError, match="wallet"):
        TransferBatch(view, NOW).apply([_post("p", "hold")])


# Balancing ---------------------------------------------------------------------------------


def test_a_balancing_transfer_moves_what_the_wallet_holds_then_nothing() -> None:
    ledger = _ledger()
    ledger.run(
        _tx("spend", "wallet", "shop", 300), _tx("hold", "wallet", "shop", 200, flags=PENDING)
    )
    sweep = _tx("sweep", "wallet", "bank", 10_000, flags=TransferFlags(balancing_debit=True))
    batch = ledger.batch()
    assert batch.apply([sweep, replace(sweep, id="sweep-2")]) == [OK, OK]
    assert [t.spec.amount for t in batch.accepted] == [500, 0]
    assert batch.apply([sweep, replace(sweep, amount=499)]) == [
        T.CREATE_TRANSFER_RESULT_EXISTS,
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT,
    ]
    ledger.commit(batch)
    assert ledger.balances("wallet") == Balances(
        debits_pending=200, debits_posted=800, credits_posted=1_000
    )


def test_a_balancing_credit_fills_up_to_the_credit_accounts_debits() -> None:
    capped = _account("capped", AccountFlags(credits_must_not_exceed_debits=True))
    ledger = Ledger(_account("bank"), capped)
    ledger.run(_tx("load", "capped", "bank", 250))
    topup = _tx("top", "bank", "capped", 1_000, flags=TransferFlags(balancing_credit=True))
    assert ledger.run(topup, _tx("more", "bank", "capped", 1)) == [
        OK,
        T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS,
    ]
    assert ledger.balances("capped") == Balances(debits_posted=250, credits_posted=250)


# Closing -----------------------------------------------------------------------------------


def _closing(transfer_id: str, debit: str = "wallet", credit: str = "bank") -> TransferSpec:
    flags = TransferFlags(pending=True, closing_debit=True)
    return _tx(transfer_id, debit, credit, 1, flags=flags, timeout=60)


def test_a_closing_transfer_closes_and_its_void_reopens() -> None:
    ledger = _ledger()
    batch = ledger.batch()
    assert batch.apply(
        [_closing("close"), _tx("spend", "wallet", "shop", 1), _tx("refund", "shop", "wallet", 1)]
    ) == [
        OK,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED,
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED,
    ]
    (wallet,) = [s for s in batch.changed_accounts() if s.spec.id == "wallet"]
    assert wallet.closed
    ledger.commit(batch)
    assert ledger.run(_closing("close-again")) == [
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED
    ]
    assert ledger.run(_void("reopen", "close"), _tx("spend", "wallet", "shop", 1)) == [OK, OK]
    assert not ledger.accounts["wallet"].closed


def test_an_emptied_wallet_closes_by_tigerbeetles_recipe_with_a_zero_closing_transfer() -> None:
    """docs.tigerbeetle.com/coding/recipes/close-account: a balancing transfer empties the
    account, linked to a pending closing transfer of 0. A wallet that may not go below zero
    can only close that way: a closing transfer of 1 would exceed its credits."""
    ledger = _ledger()
    sweep = TransferFlags(linked=True, balancing_debit=True)
    close = TransferFlags(pending=True, closing_debit=True)
    assert ledger.run(
        _linked(_tx("sweep", "wallet", "bank", 1_000_000, flags=sweep)),
        _tx("close-1", "wallet", "bank", 1, flags=close),
    ) == [FAILED, T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS]
    assert ledger.run(
        _tx("sweep", "wallet", "bank", 1_000_000, flags=sweep),
        _tx("close", "wallet", "bank", 0, flags=close),
    ) == [OK, OK]
    assert ledger.transfers["sweep"].spec.amount == 1_000
    assert ledger.accounts["wallet"].closed
    assert ledger.balances("wallet") == Balances(debits_posted=1_000, credits_posted=1_000)
    assert ledger.run(_tx("spend", "wallet", "shop", 1)) == [
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED
    ]
    assert ledger.run(_void("reopen", "close")) == [OK]
    assert not ledger.accounts["wallet"].closed


def test_posting_a_closing_transfer_keeps_the_account_closed() -> None:
    ledger = _ledger()
    ledger.run(_closing("close"))
    assert ledger.run(_post("final", "close"), _tx("spend", "wallet", "shop", 1)) == [
        OK,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED,
    ]
    assert ledger.accounts["wallet"].closed
    assert ledger.balances("wallet") == Balances(debits_posted=1, credits_posted=1_000)


def test_an_expired_closing_transfer_reopens_the_account() -> None:
    ledger = _ledger()
    ledger.run(_closing("close"))
    batch = ledger.batch(NOW + timedelta(minutes=5))
    assert batch.expire(["close"]) == 1
    ledger.commit(batch)
    assert not ledger.accounts["wallet"].closed


def test_a_closed_account_still_voids_but_does_not_post_other_pending_transfers() -> None:
    ledger = _ledger()
    ledger.run(
        _tx("a", "wallet", "shop", 5, flags=PENDING),
        _tx("b", "wallet", "shop", 5, flags=PENDING),
        _closing("close"),
    )
    assert ledger.run(_void("void-a", "a"), _post("post-b", "b")) == [
        OK,
        T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED,
    ]


def test_an_account_created_closed_accepts_nothing() -> None:
    ledger = Ledger(_account("bank"), _account("vault", AccountFlags(closed=True)))
    assert ledger.run(_tx("t", "bank", "vault", 1)) == [
        T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_ALREADY_CLOSED
    ]


# History -----------------------------------------------------------------------------------


def test_history_snapshots_follow_each_transfer_for_accounts_that_keep_it() -> None:
    ledger = _ledger(history=True)
    batch = ledger.batch()
    batch.apply(
        [
            _tx("hold", "wallet", "shop", 40, flags=PENDING),
            _tx("too-much", "wallet", "shop", 5_000),
            _tx("shop-pays", "shop", "bank", 1),
            _post("post", "hold", 30),
        ]
    )
    assert batch.history == [
        BalanceSnapshot("wallet", "hold", Balances(debits_pending=40, credits_posted=1_000)),
        BalanceSnapshot("wallet", "post", Balances(debits_posted=30, credits_posted=1_000)),
    ]
    both = Ledger(
        _account("a", AccountFlags(history=True)), _account("b", AccountFlags(history=True))
    )
    batch = both.batch()
    batch.apply([_tx("t", "a", "b", 7)])
    assert [(s.account_id, s.transfer_id) for s in batch.history] == [("a", "t"), ("b", "t")]


# Linked chains -----------------------------------------------------------------------------


def test_a_failure_in_the_middle_undoes_the_whole_chain() -> None:
    ledger = _ledger(history=True)
    ledger.run(_tx("hold", "wallet", "shop", 100, flags=PENDING, timeout=60))
    batch = ledger.batch()
    results = batch.apply(
        [
            _linked(_tx("first", "wallet", "shop", 10)),
            _linked(_post("capture", "hold")),
            _linked(_tx("second", "wallet", "shop", 10, flags=PENDING, timeout=5)),
            _linked(_closing("close")),
            _linked(_tx("third", "shop", "bank", 0)),
            _tx("last", "shop", "bank", 10),
            _tx("after", "wallet", "shop", 10),
        ]
    )
    assert results == [FAILED] * 4 + [T.CREATE_TRANSFER_RESULT_AMOUNT_MUST_NOT_BE_ZERO, FAILED, OK]
    assert [t.spec.id for t in batch.accepted] == ["after"]
    assert batch.resolved == {}
    assert batch.timeouts == []
    assert [s.transfer_id for s in batch.history] == ["after"]
    (wallet,) = [s for s in batch.changed_accounts() if s.spec.id == "wallet"]
    assert wallet == AccountState(
        wallet.spec, Balances(debits_pending=100, debits_posted=10, credits_posted=1_000), False
    )
    assert batch.apply([_post("capture", "hold"), _tx("first", "wallet", "shop", 10)]) == [OK, OK]


def test_a_chain_sees_its_own_earlier_events() -> None:
    ledger = _ledger()
    assert ledger.run(
        _linked(_tx("fund", "bank", "wallet", 500)),
        _linked(_tx("spend", "wallet", "shop", 1_500)),
        _linked(_tx("hold", "shop", "bank", 10, flags=PENDING)),
        _post("capture", "hold"),
    ) == [OK, OK, OK, OK]
    assert ledger.balances("wallet") == Balances(debits_posted=1_500, credits_posted=1_500)


def test_a_chain_left_open_is_tried_in_order_and_fails_whole() -> None:
    """As in TigerBeetle: the open chain's events are checked in order, one failing for a
    reason of its own answers with it, the last answers CHAIN_OPEN, nothing is applied."""
    ledger = _ledger()
    before = ledger.balances("wallet")
    assert ledger.run(
        _tx("alone", "wallet", "shop", 1),
        _linked(_tx("a", "wallet", "shop", 1)),
        _linked(_tx("", "wallet", "shop", 1)),
        _linked(_tx("c", "wallet", "shop", 1)),
    ) == [OK, FAILED, T.CREATE_TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY, CHAIN_OPEN]
    assert ledger.run(
        _linked(_tx("d", "wallet", "shop", 1)), _linked(_tx("e", "wallet", "shop", 1))
    ) == [FAILED, CHAIN_OPEN]
    assert ledger.run(
        _linked(_tx("f", "nobody", "shop", 1)), _linked(_tx("g", "wallet", "shop", 1))
    ) == [T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND, CHAIN_OPEN]
    assert set(ledger.transfers) == {"alone"}
    assert ledger.balances("wallet") == replace(before, debits_posted=before.debits_posted + 1)
    assert ledger.run(_linked(_tx("solo", "wallet", "shop", 1))) == [CHAIN_OPEN]


def test_an_exists_inside_a_chain_fails_the_chain() -> None:
    ledger = _ledger()
    ledger.run(_tx("done", "wallet", "shop", 1))
    assert ledger.run(
        _linked(_tx("new", "wallet", "shop", 1)), _tx("done", "wallet", "shop", 1)
    ) == [
        FAILED,
        T.CREATE_TRANSFER_RESULT_EXISTS,
    ]
    assert "new" not in ledger.transfers


def test_replaying_a_chain_reports_the_first_exists_only() -> None:
    ledger = _ledger()
    chain = [_linked(_tx("a", "wallet", "shop", 1)), _linked(_tx("b", "shop", "bank", 1)), _tx("c")]
    assert ledger.run(*chain) == [OK, OK, OK]
    before = dict(ledger.accounts)
    assert ledger.run(*chain) == [T.CREATE_TRANSFER_RESULT_EXISTS, FAILED, FAILED]
    assert ledger.accounts == before


# Idempotent replay -------------------------------------------------------------------------


def test_a_post_or_void_without_user_data_records_the_pending_transfers() -> None:
    """As TigerBeetle: an empty user_data on a post or void (or an expiry) inherits the
    pending transfer's, so the journal ties the resolution to what was reserved; a retry
    that leaves it empty is the same transfer."""
    ledger = _ledger()
    ledger.run(
        replace(_tx("hold-1", "wallet", "shop", 10, flags=PENDING), user_data="orders/1"),
        replace(_tx("hold-2", "wallet", "shop", 10, flags=PENDING), user_data="orders/2"),
        replace(_tx("hold-3", "wallet", "shop", 10, flags=PENDING, timeout=60), user_data="o/3"),
    )
    assert ledger.run(_post("capture", "hold-1"), _void("release", "hold-2")) == [OK, OK]
    assert ledger.transfers["capture"].spec.user_data == "orders/1"
    assert ledger.transfers["release"].spec.user_data == "orders/2"
    assert ledger.run(_post("capture", "hold-1"), _void("release", "hold-2")) == [
        T.CREATE_TRANSFER_RESULT_EXISTS,
        T.CREATE_TRANSFER_RESULT_EXISTS,
    ]
    assert ledger.run(_post("capture", "hold-1", user_data="orders/9")) == [
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_USER_DATA
    ]
    batch = ledger.batch(NOW + timedelta(minutes=5))
    assert batch.expire(["hold-3"]) == 1
    (expiry,) = batch.accepted
    assert expiry.spec.user_data == "o/3"


def test_a_replay_in_the_same_batch_or_a_later_one_moves_nothing() -> None:
    ledger = _ledger()
    request = [
        _tx("pay", "wallet", "shop", 100),
        _tx("hold", "wallet", "shop", 50, flags=PENDING, timeout=600),
        _post("capture", "hold", 20),
    ]
    batch = ledger.batch()
    assert batch.apply(request) == [OK, OK, OK]
    assert batch.apply(request) == [T.CREATE_TRANSFER_RESULT_EXISTS] * 3
    assert len(batch.accepted) == 3
    ledger.commit(batch)
    later = ledger.batch(NOW + timedelta(seconds=30))
    assert later.apply(request) == [T.CREATE_TRANSFER_RESULT_EXISTS] * 3
    # A capture of 20 of the 50, retried as a capture of all of it (amount 0), is not the
    # same transfer: TigerBeetle answers EXISTS_WITH_DIFFERENT_AMOUNT, and so do we.
    bare_replay = [*request[:2], _post("capture", "hold", 0)]
    assert later.apply(bare_replay) == [
        T.CREATE_TRANSFER_RESULT_EXISTS,
        T.CREATE_TRANSFER_RESULT_EXISTS,
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_AMOUNT,
    ]
    assert later.accepted == []
    assert later.changed_accounts() == []


def test_a_failed_transfer_leaves_no_trace_and_its_id_can_be_used_again() -> None:
    ledger = _ledger()
    assert ledger.run(_tx("t", "wallet", "shop", 5_000)) == [
        T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
    ]
    assert ledger.run(_tx("t", "wallet", "shop", 500)) == [OK]


def test_accepted_transfers_carry_the_batch_clock_and_no_position() -> None:
    batch = _ledger().batch()
    batch.apply([_tx("t", "wallet", "shop", 5)])
    assert [(t.create_time, t.position) for t in batch.accepted] == [(NOW, -1)]


def test_changed_accounts_lists_only_what_changed_sorted_by_id() -> None:
    ledger = _ledger()
    batch = ledger.batch()
    batch.apply(
        [
            _tx("t", "wallet", "bank", 5),
            _tx("hold", "shop", "wallet", 5, flags=PENDING),
            _void("v", "hold"),
        ]
    )
    assert [s.spec.id for s in batch.changed_accounts()] == ["bank", "wallet"]


# What the store loads ----------------------------------------------------------------------


def test_the_named_helpers_list_well_formed_ids_sorted() -> None:
    specs = [
        _tx("t-2", "wallet", "shop"),
        _tx("bad id", "bank", "bad account"),
        _post("t-1", "hold"),
        _post("t-3", "bad pending"),
    ]
    assert transfer_ids_named(specs) == ["hold", "t-1", "t-2", "t-3"]
    assert transfer_ids_named([], expiring=["hold", "bad id"]) == [expiry_id("hold"), "hold"]
    assert accounts_named(specs) == ["bank", "shop", "wallet"]
    pending = Transfer(_tx("hold", "wallet", "shop", flags=PENDING), NOW, 0)
    assert accounts_of([pending]) == ["shop", "wallet"]
    assert account_ids_named([_account("b"), _account("a"), _account("a"), _account("")]) == [
        "a",
        "b",
    ]


# Accounts ----------------------------------------------------------------------------------


def test_accounts_repeated_in_a_request_are_created_once() -> None:
    plan = plan_accounts(
        [_account("a"), _account("a"), replace(_account("a"), code=2), _account("b")],
        existing={},
    )
    assert plan.results == [
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_EXISTS,
        A.CREATE_ACCOUNT_RESULT_EXISTS_WITH_DIFFERENT_CODE,
        A.CREATE_ACCOUNT_RESULT_OK,
    ]
    assert [spec.id for spec in plan.created] == ["a", "b"]


def test_a_linked_account_chain_is_created_whole_or_not_at_all() -> None:
    plan = plan_accounts(
        [
            replace(_account("a"), linked=True),
            replace(_account("b"), linked=True),
            _account("a"),
            _account("c"),
            replace(_account("d"), linked=True),
            _account("e"),
        ],
        existing={},
    )
    assert plan.results == [
        A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_FAILED,
        A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_FAILED,
        A.CREATE_ACCOUNT_RESULT_EXISTS,
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_OK,
    ]
    assert [spec.id for spec in plan.created] == ["c", "d", "e"]
    open_chain = plan_accounts(
        [_account("x"), replace(_account("y"), linked=True), replace(_account("z"), linked=True)],
        existing={},
    )
    assert open_chain.results == [
        A.CREATE_ACCOUNT_RESULT_OK,
        A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_FAILED,
        A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_CHAIN_OPEN,
    ]
    assert [spec.id for spec in open_chain.created] == ["x"]
    # The open chain is still checked in order: an account failing on its own says why.
    failing = plan_accounts(
        [replace(_account(""), linked=True), replace(_account("w"), linked=True)], existing={}
    )
    assert failing.results == [
        A.CREATE_ACCOUNT_RESULT_ID_MUST_NOT_BE_EMPTY,
        A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_CHAIN_OPEN,
    ]
    assert failing.created == []
