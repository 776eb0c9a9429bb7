"""Applies a batch of events, in request order, to an in-memory view of the ledger.

The store loads (and locks) what a batch can touch, asks a planner what the
batch does, and writes the plan in one transaction. Planning is pure, so the
same batch against the same state always gives the same results, and the store
can re-plan cheaply when a racing request turns out to have claimed an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from openloop_ledger.model import AccountSpec, Balance, TransferSpec
from openloop_ledger.validation import (
    A,
    AccountResult,
    T,
    TransferResult,
    check_posting,
    compare_account,
    compare_transfer,
    is_well_formed_id,
    validate_account,
    validate_transfer,
)


@dataclass(frozen=True, slots=True)
class AccountPlan:
    results: list[AccountResult]
    """One result per submitted account, in request order."""
    created: list[AccountSpec]
    """The accounts to insert, in request order."""


def plan_accounts(specs: Sequence[AccountSpec], existing: Mapping[str, AccountSpec]) -> AccountPlan:
    """Results of creating ``specs`` given the ``existing`` accounts with the same ids."""
    known = dict(existing)
    results: list[AccountResult] = []
    created: list[AccountSpec] = []
    for spec in specs:
        outcome = validate_account(spec)
        if outcome is None and spec.id in known:
            outcome = compare_account(spec, known[spec.id])
        if outcome is None:
            known[spec.id] = spec
            created.append(spec)
            outcome = A.CREATE_ACCOUNT_RESULT_OK
        results.append(outcome)
    return AccountPlan(results, created)


@dataclass(frozen=True, slots=True)
class Posting:
    """What a batch adds to one account's posted totals."""

    debits: int = 0
    credits: int = 0


@dataclass(frozen=True, slots=True)
class TransferPlan:
    results: list[TransferResult]
    """One result per submitted transfer, in request order."""
    accepted: list[TransferSpec]
    """The transfers to record, in request order (the order they were applied in)."""
    postings: dict[str, Posting] = field(default_factory=dict)
    """Per touched account id, what the accepted transfers add to its totals."""


def plan_transfers(
    specs: Sequence[TransferSpec],
    balances: Mapping[str, Balance],
    existing: Mapping[str, TransferSpec],
) -> TransferPlan:
    """Results of ``specs`` applied one after the other.

    ``balances`` holds every existing account the batch names, ``existing`` every
    recorded transfer whose id the batch reuses. A transfer accepted earlier in
    the batch counts as existing for a later one with the same id, and its
    amounts count towards the later ones' limits.
    """
    current = dict(balances)
    recorded = dict(existing)
    results: list[TransferResult] = []
    accepted: list[TransferSpec] = []
    postings: dict[str, Posting] = {}
    for spec in specs:
        outcome = validate_transfer(spec)
        if outcome is None and spec.id in recorded:
            outcome = compare_transfer(spec, recorded[spec.id])
        if outcome is None:
            outcome = check_posting(
                spec, current.get(spec.debit_account_id), current.get(spec.credit_account_id)
            )
        if outcome is None:
            _post(spec, current, postings)
            recorded[spec.id] = spec
            accepted.append(spec)
            outcome = T.CREATE_TRANSFER_RESULT_OK
        results.append(outcome)
    return TransferPlan(results, accepted, postings)


def _post(spec: TransferSpec, current: dict[str, Balance], postings: dict[str, Posting]) -> None:
    debit = current[spec.debit_account_id]
    credit = current[spec.credit_account_id]
    current[spec.debit_account_id] = replace(debit, debits_posted=debit.debits_posted + spec.amount)
    current[spec.credit_account_id] = replace(
        credit, credits_posted=credit.credits_posted + spec.amount
    )
    before = postings.get(spec.debit_account_id, Posting())
    postings[spec.debit_account_id] = replace(before, debits=before.debits + spec.amount)
    before = postings.get(spec.credit_account_id, Posting())
    postings[spec.credit_account_id] = replace(before, credits=before.credits + spec.amount)


def accounts_named(specs: Iterable[TransferSpec]) -> list[str]:
    """Ids of the accounts well-formed transfers name, sorted: the order the store locks them."""
    ids: set[str] = set()
    for spec in specs:
        if validate_transfer(spec) is None:
            ids.update((spec.debit_account_id, spec.credit_account_id))
    return sorted(account_id for account_id in ids if is_well_formed_id(account_id))


def transfer_ids_named(specs: Iterable[TransferSpec]) -> list[str]:
    """Ids of the well-formed transfers, sorted: the ones an earlier request may have used."""
    return sorted({spec.id for spec in specs if validate_transfer(spec) is None})
