"""A round-1 payment, from a bank's request to money moved and positions updated.

The order is chosen so that nothing is half-made whatever fails:

1. validate the request (INVALID_ARGUMENT, nothing stored);
2. identity checks the caller hosts the payer, verifies and spends the payer's authorisation
   of this payment (its payee and amount) and returns both parties' facts;
3. rules decide; a denial is stored as a REJECTED payment and returned as
   FAILED_PRECONDITION naming the rule;
4. the payment is stored PENDING with a ledger transfer id derived from it;
5. the ledger applies the transfer (idempotent by id), then settlement records it
   (idempotent by the same id), then the payment becomes COMPLETED.

If anything fails after step 4 the payment stays PENDING and the call returns
UNAVAILABLE; replaying the same idempotency key, or the reconciler, drives the
same steps again, and the ledger's and settlement's idempotency make sure money
moves and positions change exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets

import grpc

from openloop.gateway.v1 import service_pb2
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.rules.v1 import resources_pb2 as rules_resources
from openloop_gateway.accounts import TransferCode, wallet_account_id
from openloop_gateway.defects import pending_defect
from openloop_gateway.idempotency import idempotency_key
from openloop_gateway.rule_facts import round1_payment_facts
from openloop_gateway.store import Failure, PaymentRecord, PaymentState, PaymentStore
from openloop_gateway.upstreams import Upstreams
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field, reason_name
from openloop_runtime.money import LEDGER_THB, positive_satang
from openloop_runtime.names import format_name, parse_name
from openloop_runtime.telemetry import current_trace_id

_log = logging.getLogger(__name__)
_CreateTransferResult = ledger_resources.CreateTransferResult
_APPLIED_ELSEWHERE = frozenset(
    value
    for name, value in _CreateTransferResult.items()
    if name.startswith("CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_")
)
_APPLIED = frozenset(
    {
        _CreateTransferResult.CREATE_TRANSFER_RESULT_OK,
        _CreateTransferResult.CREATE_TRANSFER_RESULT_EXISTS,
    }
)


def _request_hash(request: service_pb2.PayRequest) -> str:
    canonical = "\x1f".join(
        [
            request.payer,
            request.payee,
            request.amount.currency_code,
            str(request.amount.amount_satang),
        ]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _request_binding(participant: str, key: str, request_hash: str) -> str:
    """The name identity keeps a spent authorisation under: this participant's request under
    this key (the same payment, whatever the authorisation sent with it)."""
    canonical = "\x1f".join(["pay", participant, key, request_hash])
    return hashlib.sha256(canonical.encode()).hexdigest()


def failure_error(record: PaymentRecord) -> DomainError:
    """The error Pay returns for a rejected or failed payment, the same on every replay."""
    failure = record.failure
    assert failure is not None
    metadata = {"payment": format_name("payments", record.payment_id)}
    if failure.rule_id:
        metadata.update(
            rule_id=failure.rule_id,
            rule_reason=failure.rule_reason,
            rule_set_version=record.rule_set_version,
        )
    return DomainError.from_wire(
        grpc.StatusCode.FAILED_PRECONDITION, failure.reason, failure.message, metadata
    )


class PaymentFlow:
    def __init__(self, store: PaymentStore, upstreams: Upstreams) -> None:
        self._store = store
        self._upstreams = upstreams

    async def pay(self, participant_id: str, request: service_pb2.PayRequest) -> PaymentRecord:
        idempotency_key(request.idempotency_key)
        parse_name(request.payer, "citizens", field="payer")
        parse_name(request.payee, "merchants", field="payee")
        if not request.HasField("amount"):
            raise invalid_field("amount", "amount is required")
        satang = positive_satang(request.amount)
        request_hash = _request_hash(request)

        existing = await self._store.find_by_key(participant_id, request.idempotency_key)
        if existing is not None:
            return await self._replay(existing, request_hash)

        participant = format_name("participants", participant_id)
        # The payer's first use is read from our own database while identity answers, so
        # the spending deadline adds no round trip to the payment's path.
        parties, first_use = await asyncio.gather(
            self._upstreams.verify_parties(
                participant,
                request.payer,
                request.payee,
                request.payer_authorization,
                # Identity spends the authorisation before the payment is stored: this
                # request's retries (an outage, a copy sent at once) may use it again.
                _request_binding(participant, request.idempotency_key, request_hash),
                # The authorisation names the payee and this amount (dynamic linking):
                # identity refuses one signed for another payment, and nothing is stored.
                amount=request.amount,
            ),
            self._store.first_use(request.payer),
        )
        decision = await self._upstreams.evaluate(
            rules_resources.Scope.SCOPE_ROUND1_PAYMENT,
            round1_payment_facts(parties.payer, parties.payee, request.amount, first_use),
        )
        payment_id = "p" + secrets.token_hex(12)
        record = PaymentRecord(
            payment_id=payment_id,
            participant_id=participant_id,
            idempotency_key=request.idempotency_key,
            request_hash=request_hash,
            payer=request.payer,
            payee=request.payee,
            amount_satang=satang,
            currency_code=request.amount.currency_code,
            state=PaymentState.PENDING,
            payee_participant_id=parse_name(
                parties.payee.hosting_participant, "participants", field="payee"
            ),
            payer_account=parties.payer_account,
            payee_account=parties.payee_account,
            ledger_transfer_id=f"pay:{payment_id}",
            rule_set_version=decision.rule_set_version,
            trace_id=current_trace_id(),
        )
        if decision.outcome != rules_resources.Outcome.OUTCOME_ALLOW:
            record = record.with_failure(PaymentState.REJECTED, _denial(decision))
        stored = await self._store.insert(record)
        if stored.payment_id != payment_id:  # a concurrent request with this key won
            return await self._replay(stored, request_hash)
        return await self.advance(stored)

    async def _replay(self, record: PaymentRecord, request_hash: str) -> PaymentRecord:
        if record.request_hash != request_hash:
            raise DomainError(
                grpc.StatusCode.INVALID_ARGUMENT,
                ErrorReason.ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
                "this idempotency key was used for a different payment",
                {"field": "idempotency_key", "payment": format_name("payments", record.payment_id)},
            )
        return await self.advance(record)

    async def advance(self, record: PaymentRecord) -> PaymentRecord:
        """Drive a payment to its final state; raise its error if that state is a failure."""
        if record.state is PaymentState.PENDING:
            try:
                record = await self._move_money(record)
            except DomainError as error:
                # The caller retries with the same key, or polls this payment.
                error.metadata.setdefault("payment", format_name("payments", record.payment_id))
                raise
        if record.state in (PaymentState.REJECTED, PaymentState.FAILED):
            raise failure_error(record)
        return record

    async def _move_money(self, record: PaymentRecord) -> PaymentRecord:
        result = await self._upstreams.create_transfer(
            ledger_resources.Transfer(
                id=record.ledger_transfer_id,
                debit_account_id=record.payer_account or wallet_account_id(record.payer),
                credit_account_id=record.payee_account or wallet_account_id(record.payee),
                amount=record.amount_satang,
                ledger=LEDGER_THB,
                code=TransferCode.ROUND1_PAYMENT,
                user_data=format_name("payments", record.payment_id),
            )
        )
        if result in _APPLIED_ELSEWHERE:
            # The id was applied with other fields: a defect on our side, never the bank's.
            # Money may have moved, so the payment stays PENDING for an engineer to resolve.
            _log.error(
                "ledger transfer id collision",
                extra={
                    "payment_id": record.payment_id,
                    "ledger_result": _CreateTransferResult.Name(result),
                },
            )
            raise _defect("ledger", record)
        if result not in _APPLIED:
            # Every other result means the ledger applied nothing: a final failure.
            return await self._store.finish(
                record.with_failure(PaymentState.FAILED, _ledger_refusal(result))
            )
        try:
            await self._upstreams.record_transfer(
                record.ledger_transfer_id,
                format_name("participants", record.participant_id),
                format_name("participants", record.payee_participant_id),
                record.amount_satang,
            )
        except DomainError as error:
            if error.code == grpc.StatusCode.UNAVAILABLE:
                raise
            # Money has moved; settlement refusing it is our defect, not the bank's mistake.
            _log.error(
                "settlement refused a ledger transfer",
                extra={"payment_id": record.payment_id, "reason": error.reason},
            )
            raise _defect("settlement", record) from error
        return await self._store.finish(dataclasses.replace(record, state=PaymentState.COMPLETED))


def _defect(upstream: str, record: PaymentRecord) -> DomainError:
    return pending_defect(
        upstream, "the payment", "payment", format_name("payments", record.payment_id)
    )


def _denial(decision: rules_resources.Decision) -> Failure:
    if not decision.violations:
        return Failure(
            reason_name(ErrorReason.ERROR_REASON_NO_ACTIVE_RULE_SET),
            "no rule set allowed this payment",
        )
    first = decision.violations[0]
    if first.reason_code == reason_name(ErrorReason.ERROR_REASON_NO_ACTIVE_RULE_SET):
        return Failure(
            reason_name(ErrorReason.ERROR_REASON_NO_ACTIVE_RULE_SET), first.explanation_en
        )
    prefix = f"{first.rule_id}: " if first.rule_id else ""
    return Failure(
        reason=reason_name(ErrorReason.ERROR_REASON_RULE_VIOLATION),
        message=f"{prefix}{first.explanation_en}",
        rule_id=first.rule_id,
        rule_reason=first.reason_code,
    )


def _ledger_refusal(result: ledger_resources.CreateTransferResult.ValueType) -> Failure:
    name = _CreateTransferResult.Name(result).removeprefix("CREATE_TRANSFER_RESULT_")
    if result == _CreateTransferResult.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS:
        return Failure(
            reason_name(ErrorReason.ERROR_REASON_INSUFFICIENT_FUNDS),
            "the payer's wallet does not hold enough money",
        )
    if result == _CreateTransferResult.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_ALREADY_CLOSED:
        return Failure(
            reason_name(ErrorReason.ERROR_REASON_TRANSFER_REJECTED),
            "the payer's wallet moved to another participant while this payment was made; "
            "nothing moved",
        )
    return Failure(
        reason_name(ErrorReason.ERROR_REASON_TRANSFER_REJECTED),
        f"the ledger refused the transfer: {name}",
    )
