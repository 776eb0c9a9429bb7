"""Random batches against the planner, checked against the ledger's invariants.

A tiny stand-in store runs the batches the way the real one does: it loads only what the
``*_named`` helpers name, lets the clock advance between batches, expires what is due and
keeps what each batch accepted. After every request and batch the test checks that money
is conserved, limits hold, linked chains are all or nothing, replays move nothing, and that
the balances equal an independent replay of the journal from zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openloop_ledger.model import (
    MAX_AMOUNT,
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
    accounts_named,
    accounts_of,
    transfer_ids_named,
)
from openloop_ledger.validation import T, TransferResult

START = datetime(2026, 3, 1, tzinfo=UTC)
OK = T.CREATE_TRANSFER_RESULT_OK
ACCOUNTS = [
    AccountSpec("bank", 764, 1, AccountFlags(), "", "bank-a"),
    AccountSpec(
        "w1", 764, 2, AccountFlags(debits_must_not_exceed_credits=True, history=True), "", "bank-a"
    ),
    AccountSpec("w2", 764, 2, AccountFlags(debits_must_not_exceed_credits=True), "", "bank-b"),
    AccountSpec("m1", 764, 3, AccountFlags(credits_must_not_exceed_debits=True), "", "bank-a"),
    AccountSpec("m2", 764, 3, AccountFlags(history=True), "", "bank-b"),
    AccountSpec("x1", 840, 2, AccountFlags(debits_must_not_exceed_credits=True), "", "bank-a"),
    AccountSpec("x2", 840, 1, AccountFlags(), "", "bank-a"),
]
BY_LEDGER = {764: ["bank", "w1", "w2", "m1", "m2"], 840: ["x1", "x2"]}
PLAIN_IDS = [f"t{n}" for n in range(30)]
PENDING_IDS = [f"p{n}" for n in range(16)]
RESOLVING_IDS = [f"r{n}" for n in range(12)]
ANY_ID = st.sampled_from(PLAIN_IDS[:4] + PENDING_IDS[:4] + RESOLVING_IDS[:4])
"""Now and then an event reuses an id another kind of event took."""

# Strategies --------------------------------------------------------------------------------

small = st.integers(1, 300)
amounts = st.integers(0, 19).flatmap(
    lambda roll: st.sampled_from([0, MAX_AMOUNT, MAX_AMOUNT + 1, 2**64 - 1]) if roll == 0 else small
)
timeouts = st.sampled_from([0, 0, 5, 30, 120])


def _id(draw: st.DrawFn, pool: list[str]) -> str:
    return draw(ANY_ID) if draw(st.integers(0, 9)) == 0 else draw(st.sampled_from(pool))


@st.composite
def events(
    draw: st.DrawFn, *, extreme: bool = True, pending_seen: list[str] | None = None
) -> TransferSpec:
    """One event of any kind; ``extreme`` adds closing transfers and overflowing amounts.

    Posts and voids mostly name a pending transfer drawn earlier into ``pending_seen``.
    """
    seen = [] if pending_seen is None else pending_seen
    kinds = ["plain", "plain", "pending", "pending", "post", "void", "balancing"]
    closes = extreme and draw(st.integers(0, 19)) == 0
    kind = "closing" if closes else draw(st.sampled_from(kinds))
    ledger = draw(st.sampled_from([764, 764, 764, 840]))
    names = BY_LEDGER[ledger]
    debit, credit = draw(st.permutations(names))[:2]
    if draw(st.integers(0, 19)) == 0:
        debit, credit = draw(st.sampled_from([("ghost", credit), (debit, debit), (debit, "x2")]))
    linked = draw(st.integers(0, 5)) == 0
    if kind in ("post", "void"):
        named = draw(st.integers(0, 3)) == 0
        recent = bool(seen) and draw(st.integers(0, 4)) > 0
        pending_id = draw(st.sampled_from(seen[-4:])) if recent else _id(draw, PENDING_IDS)
        return TransferSpec(
            _id(draw, RESOLVING_IDS),
            debit if named else "",
            credit if named else "",
            draw(st.sampled_from([0, 0, 0, 10, 50, 1_000])),
            0,
            0,
            "",
            TransferFlags(
                linked=linked,
                post_pending_transfer=kind == "post",
                void_pending_transfer=kind == "void",
            ),
            pending_id,
        )
    pending = kind in ("pending", "closing") or (kind == "balancing" and draw(st.booleans()))
    closing = draw(st.sampled_from([(True, False), (False, True), (True, True)]))
    flags = TransferFlags(
        linked=linked,
        pending=pending,
        balancing_debit=kind == "balancing" and draw(st.booleans()),
        balancing_credit=kind == "balancing" and draw(st.booleans()),
        closing_debit=kind == "closing" and closing[0],
        closing_credit=kind == "closing" and closing[1],
    )
    transfer_id = _id(draw, PENDING_IDS if pending else PLAIN_IDS)
    if pending:
        seen.append(transfer_id)
    timeout = draw(timeouts) if pending else 0
    amount = draw(amounts if extreme else small)
    return TransferSpec(transfer_id, debit, credit, amount, ledger, 1, "", flags, "", timeout)


@st.composite
def requests(draw: st.DrawFn, pending_seen: list[str]) -> list[TransferSpec]:
    """1-6 events; the last one mostly closes its chain."""
    request = draw(st.lists(events(pending_seen=pending_seen), min_size=1, max_size=6))
    if draw(st.integers(0, 4)) > 0:
        last = request[-1]
        request[-1] = replace(last, flags=replace(last.flags, linked=False))
    return request


@dataclass(frozen=True)
class Step:
    advance: int
    """Seconds the clock moves before the batch."""
    requests: list[list[TransferSpec] | None]
    """None replays the request applied just before."""
    expire: bool


@st.composite
def plans(draw: st.DrawFn) -> list[Step]:
    """1-10 batches of 1-3 requests, some of them replays."""
    pending_seen: list[str] = []
    plan: list[Step] = []
    for _ in range(draw(st.integers(1, 10))):
        batch: list[list[TransferSpec] | None] = []
        for _ in range(draw(st.integers(1, 3))):
            replay = draw(st.integers(0, 3)) == 0
            batch.append(None if replay else draw(requests(pending_seen)))
        advance = draw(st.sampled_from([0, 1, 10, 60, 600]))
        plan.append(Step(advance, batch, draw(st.booleans())))
    return plan


# The stand-in store and an independent model ----------------------------------------------


@dataclass
class Model:
    """Balances replayed from the journal alone, knowing nothing of the planner."""

    balances: dict[str, list[int]] = field(
        default_factory=lambda: {spec.id: [0, 0, 0, 0] for spec in ACCOUNTS}
    )
    closed: dict[str, bool] = field(
        default_factory=lambda: {s.id: s.flags.closed for s in ACCOUNTS}
    )
    pending: dict[str, TransferSpec] = field(default_factory=dict)

    def apply(self, spec: TransferSpec) -> None:
        flags = spec.flags
        if flags.post_pending_transfer or flags.void_pending_transfer:
            p = self.pending.pop(spec.pending_id)
            assert (spec.debit_account_id, spec.credit_account_id) == (
                p.debit_account_id,
                p.credit_account_id,
            )
            self.balances[p.debit_account_id][0] -= p.amount
            self.balances[p.credit_account_id][2] -= p.amount
            if flags.post_pending_transfer:
                assert spec.amount <= p.amount
                self.balances[p.debit_account_id][1] += spec.amount
                self.balances[p.credit_account_id][3] += spec.amount
            else:
                assert spec.amount == p.amount
                if p.flags.closing_debit:
                    self.closed[p.debit_account_id] = False
                if p.flags.closing_credit:
                    self.closed[p.credit_account_id] = False
        elif flags.pending:
            self.balances[spec.debit_account_id][0] += spec.amount
            self.balances[spec.credit_account_id][2] += spec.amount
            self.pending[spec.id] = spec
            if flags.closing_debit:
                self.closed[spec.debit_account_id] = True
            if flags.closing_credit:
                self.closed[spec.credit_account_id] = True
        else:
            self.balances[spec.debit_account_id][1] += spec.amount
            self.balances[spec.credit_account_id][3] += spec.amount

    def snapshot(self, account_id: str) -> Balances:
        return Balances(*self.balances[account_id])


@dataclass
class Store:
    accounts: dict[str, AccountState] = field(
        default_factory=lambda: {
            s.id: AccountState(s, Balances(), s.flags.closed) for s in ACCOUNTS
        }
    )
    transfers: dict[str, Transfer] = field(default_factory=dict)
    resolutions: dict[str, Resolution] = field(default_factory=dict)

    def view(self, requests: list[list[TransferSpec]], expiring: list[str]) -> LedgerView:
        ids = set(transfer_ids_named([], expiring=expiring))
        account_ids: set[str] = set()
        for request in requests:
            ids.update(transfer_ids_named(request))
            account_ids.update(accounts_named(request))
        transfers = {i: self.transfers[i] for i in ids if i in self.transfers}
        account_ids.update(accounts_of(transfers.values()))
        return LedgerView(
            {i: self.accounts[i] for i in account_ids if i in self.accounts},
            transfers,
            {i: self.resolutions[i] for i in transfers if i in self.resolutions},
        )

    def still_pending(self) -> list[str]:
        return sorted(
            i
            for i, t in self.transfers.items()
            if t.spec.flags.pending and i not in self.resolutions
        )


def _current(batch: TransferBatch) -> dict[str, AccountState]:
    states = dict(batch.view.accounts)
    states.update((s.spec.id, s) for s in batch.changed_accounts())
    return states


def _chains(request: list[TransferSpec]) -> list[range]:
    chains: list[range] = []
    start = 0
    for index, spec in enumerate(request):
        if not spec.flags.linked or index == len(request) - 1:
            chains.append(range(start, index + 1))
            start = index + 1
    return chains


def _check_request(
    batch: TransferBatch,
    request: list[TransferSpec],
    results: list[TransferResult],
    *,
    before: dict[str, AccountState],
    accepted_before: int,
    first_results: list[TransferResult] | None,
) -> None:
    assert len(results) == len(request)
    assert T.CREATE_TRANSFER_RESULT_UNSPECIFIED not in results
    # What was accepted is exactly the events that got OK, in request order.
    accepted = batch.accepted[accepted_before:]
    assert [t.spec.id for t in accepted] == [
        s.id for s, r in zip(request, results, strict=True) if r == OK
    ]
    # A linked chain is all or nothing.
    for chain in _chains(request):
        outcomes = {results[i] == OK for i in chain}
        assert len(outcomes) == 1, [results[i] for i in chain]
    if request[-1].flags.linked:
        assert results[-1] == T.CREATE_TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN
    # A balancing transfer moves less rather than pass the limit it balances.
    for spec, result in zip(request, results, strict=True):
        if spec.flags.balancing_debit:
            assert result != T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS
        if spec.flags.balancing_credit:
            assert result != T.CREATE_TRANSFER_RESULT_EXCEEDS_DEBITS
    after = _current(batch)
    # No limited account ever passes its limit, pending amounts included.
    for state in after.values():
        b = state.balances
        flags = state.spec.flags
        if flags.debits_must_not_exceed_credits:
            assert b.debits_pending + b.debits_posted <= b.credits_posted
        if flags.credits_must_not_exceed_debits:
            assert b.credits_pending + b.credits_posted <= b.debits_posted
        assert min(b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted) >= 0
        assert (
            max(b.debits_pending + b.debits_posted, b.credits_pending + b.credits_posted)
            <= MAX_AMOUNT
        )
    # A replay never applies again what the first application accepted.
    if first_results is not None:
        for first, again in zip(first_results, results, strict=True):
            if first == OK:
                assert again != OK
        if all(first == OK for first in first_results):
            assert after == before
            assert accepted == []


def _check_batch(batch: TransferBatch, model: Model, store: Store, now: datetime) -> None:
    """Replay what the batch accepted on the model; the batch's outputs must agree."""
    history: list[BalanceSnapshot] = []
    resolved: dict[str, Resolution] = {}
    timeouts: list[tuple[str, datetime]] = []
    created = {t.spec.id: t for t in batch.accepted}
    for transfer in batch.accepted:
        spec = transfer.spec
        assert (transfer.create_time, transfer.position) == (now, -1)
        if spec.pending_id:
            # Only the expirer resolves a pending transfer once its timeout has passed.
            pending = store.transfers.get(spec.pending_id) or created[spec.pending_id]
            timeout = timedelta(seconds=pending.spec.timeout)
            overdue = pending.spec.timeout > 0 and now >= pending.create_time + timeout
            assert overdue == (spec.id == expiry_id(spec.pending_id))
        model.apply(spec)
        if spec.flags.post_pending_transfer:
            resolved[spec.pending_id] = Resolution.POSTED
        elif spec.flags.void_pending_transfer:
            expired = spec.id == expiry_id(spec.pending_id)
            resolved[spec.pending_id] = Resolution.EXPIRED if expired else Resolution.VOIDED
        elif spec.flags.pending and spec.timeout:
            timeouts.append((spec.id, now + timedelta(seconds=spec.timeout)))
        for account_id in (spec.debit_account_id, spec.credit_account_id):
            if batch.view.accounts[account_id].spec.flags.history:
                history.append(BalanceSnapshot(account_id, spec.id, model.snapshot(account_id)))
    assert batch.history == history
    assert batch.resolved == resolved
    assert batch.timeouts == timeouts


def _check_store(store: Store, model: Model) -> None:
    for account_id, state in store.accounts.items():
        assert state.balances == model.snapshot(account_id), account_id
        assert state.closed == model.closed[account_id], account_id
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for state in store.accounts.values():
        b = state.balances
        total = totals[state.spec.ledger]
        total[0] += b.debits_pending
        total[1] += b.debits_posted
        total[2] += b.credits_pending
        total[3] += b.credits_posted
    for debits_pending, debits_posted, credits_pending, credits_posted in totals.values():
        assert debits_posted == credits_posted
        assert debits_pending == credits_pending
    # What is reserved is exactly what the still-pending transfers hold: a void or an
    # expiry gives back all of it.
    reserved: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pending_id in store.still_pending():
        spec = store.transfers[pending_id].spec
        reserved[spec.debit_account_id][0] += spec.amount
        reserved[spec.credit_account_id][1] += spec.amount
    for account_id, state in store.accounts.items():
        expected = reserved.get(account_id, [0, 0])
        assert [state.balances.debits_pending, state.balances.credits_pending] == expected


FUNDING = Step(
    advance=0,
    requests=[
        [
            TransferSpec("fund-w1", "bank", "w1", 400, 764, 1, ""),
            TransferSpec("fund-w2", "bank", "w2", 400, 764, 1, ""),
            TransferSpec("fund-m1", "m1", "bank", 400, 764, 1, ""),
            TransferSpec("fund-x1", "x2", "x1", 400, 840, 1, ""),
        ]
    ],
    expire=False,
)
"""Every random plan starts with money in the limited accounts."""


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plans())
def test_random_batches_keep_the_books(plan: list[Step]) -> None:
    store = Store()
    model = Model()
    now = START
    last: tuple[list[TransferSpec], list[TransferResult]] | None = None
    for step in [FUNDING, *plan]:
        now += timedelta(seconds=step.advance)
        requests: list[tuple[list[TransferSpec], bool]] = []
        previous = last[0] if last else None
        for request in step.requests:
            if request is None:
                if previous is not None:
                    requests.append((previous, True))
            else:
                requests.append((request, False))
                previous = request
        expiring = store.still_pending() if step.expire else []
        batch = TransferBatch(store.view([r for r, _ in requests], expiring), now)
        for request, is_replay in requests:
            before = _current(batch)
            accepted_before = len(batch.accepted)
            results = batch.apply(request)
            first = last[1] if is_replay and last is not None else None
            _check_request(
                batch,
                request,
                results,
                before=before,
                accepted_before=accepted_before,
                first_results=first,
            )
            last = (request, results)
        if expiring:
            accepted_before = len(batch.accepted)
            expired = batch.expire(expiring)
            assert expired == len(batch.accepted) - accepted_before
            assert all(t.spec.id.startswith("@expiry:") for t in batch.accepted[accepted_before:])
        _check_batch(batch, model, store, now)
        for state in batch.changed_accounts():
            store.accounts[state.spec.id] = state
        for transfer in batch.accepted:
            assert transfer.spec.id not in store.transfers
            store.transfers[transfer.spec.id] = transfer
        store.resolutions.update(batch.resolved)
        _check_store(store, model)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(events(extreme=False), min_size=1, max_size=8), st.sampled_from([0, 30, 600]))
def test_void_or_expiry_gives_back_exactly_what_was_reserved(
    request: list[TransferSpec], advance: int
) -> None:
    """Reserve on top of random activity, then void or expire: every total is as before."""
    store = Store()
    batch = TransferBatch(store.view([request], []), START)
    batch.apply(request)
    for state in batch.changed_accounts():
        store.accounts[state.spec.id] = state
    for transfer in batch.accepted:
        store.transfers[transfer.spec.id] = transfer
    store.resolutions.update(batch.resolved)
    before = dict(store.accounts)
    hold = TransferSpec("hold", "bank", "m2", 77, 764, 1, "", TransferFlags(pending=True), "", 30)
    first = TransferBatch(store.view([[hold]], []), START)
    assert first.apply([hold]) == [OK]
    for state in first.changed_accounts():
        store.accounts[state.spec.id] = state
    store.transfers["hold"] = first.accepted[0]
    later = START + timedelta(seconds=advance)
    release = TransferSpec(
        "release", "", "", 0, 0, 0, "", TransferFlags(void_pending_transfer=True), "hold"
    )
    second = TransferBatch(store.view([[release]], ["hold"]), later)
    if advance >= 30:
        assert second.apply([release]) == [T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED]
        assert second.expire(["hold"]) == 1
    else:
        assert second.apply([release]) == [OK]
        assert second.expire(["hold"]) == 0
    after = _current(second)
    for account_id in ("bank", "m2"):
        assert after[account_id].balances == before[account_id].balances
