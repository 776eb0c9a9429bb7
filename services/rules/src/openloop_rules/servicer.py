"""The RulesService over gRPC.

Evaluate and EvaluateBatch are pure CPU on this replica's in-memory schedule: one snapshot
of the rule set in effect per call, facts converted once, one CEL execution per decision,
and the decision handed to the recorder without waiting for it. The other methods are the
operators', each checking the caller's token first.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine
from typing_extensions import override

from openloop.rules.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_rules import decision, errors, facts
from openloop_rules.convert import (
    activation_to_proto,
    cached_decision_proto,
    parse_program_name,
    parse_rule_set_name,
    program_name,
    rule_set_to_proto,
)
from openloop_rules.decision import Decision
from openloop_rules.evaluator import CompiledRuleSet
from openloop_rules.governance import Governance, page_size
from openloop_rules.operators import READERS, WRITERS, OperatorVerifier
from openloop_rules.recorder import DecisionRecorder
from openloop_rules.ruleset import RULE_SET_VERSION
from openloop_rules.schedule import RuleSchedule
from openloop_rules.scopes import scope_name
from openloop_rules.simulation import Simulation
from openloop_rules.store import activations, catalog
from openloop_rules.wire import Moment
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.timestamps import to_timestamp

_ENROLMENT = "enrolment"


class RulesServicer(service_pb2_grpc.RulesServiceServicer):
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        schedule: RuleSchedule,
        recorder: DecisionRecorder,
        governance: Governance,
        simulation: Simulation,
        operators: OperatorVerifier,
        default_program: str,
        max_batch: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._schedule = schedule
        self._recorder = recorder
        self._governance = governance
        self._simulation = simulation
        self._operators = operators
        self._default_program = default_program
        self._max_batch = max_batch
        self._clock = clock

    def _program(self, name: str, field: str = "program") -> str:
        if not name:
            return self._default_program
        program_id = parse_program_name(name, field)
        if program_id != self._default_program and not self._schedule.knows(program_id):
            raise errors.program_not_found(program_id)
        return program_id

    def _decide(
        self,
        request: service_pb2.EvaluateRequest,
        rule_set: CompiledRuleSet | None,
        moment: Moment,
        index: int | None = None,
    ) -> tuple[str, Decision]:
        """The request's scope and decision; ``index`` is its place in a batch, named in
        errors (``requests[3].facts...``)."""
        scope = scope_name(request.scope)
        if (
            scope is not None
            and scope != _ENROLMENT
            and rule_set is not None
            and request.HasField("facts")
        ):
            decided = rule_set.evaluate_wire(scope, request.facts, moment)
            if decided is not None:
                return scope, decided
        prefix = "" if index is None else f"requests[{index}]."
        if scope is None:
            raise invalid_field(f"{prefix}scope", f"{prefix}scope must be set to a known scope")
        now = moment.now
        if scope == _ENROLMENT:
            if not request.HasField("enrolment_facts"):
                raise invalid_field(
                    f"{prefix}enrolment_facts", "the enrolment scope needs enrolment_facts"
                )
            values = facts.enrolment_facts(request.enrolment_facts, now, f"{prefix}enrolment_facts")
        else:
            if not request.HasField("facts"):
                raise invalid_field(f"{prefix}facts", f"{prefix}facts must be set")
            months = None if rule_set is None else rule_set.spending_deadline_months
            wanted = facts.EVERYTHING if rule_set is None else rule_set.variables(scope)
            values = facts.payment_facts(request.facts, now, months, f"{prefix}facts", wanted)
        if rule_set is None:
            return scope, decision.no_active_rule_set()
        return scope, rule_set.evaluate(scope, values)

    @override
    async def Evaluate(
        self, request: service_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.EvaluateResponse:
        now = self._clock()
        program_id = self._program(request.program)
        rule_set = self._schedule.in_effect(program_id, now)
        scope, result = self._decide(request, rule_set, Moment.of(now))
        self._recorder.offer(now, program_id, scope, result, _payment_facts(request, scope))
        return service_pb2.EvaluateResponse(
            decision=cached_decision_proto(result, program_name(program_id))
        )

    @override
    async def EvaluateBatch(
        self, request: service_pb2.EvaluateBatchRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.EvaluateBatchResponse:
        items = request.requests
        if len(items) > self._max_batch:
            raise DomainError(
                grpc.StatusCode.INVALID_ARGUMENT,
                ErrorReason.ERROR_REASON_BATCH_TOO_LARGE,
                f"a batch holds at most {self._max_batch} requests",
                {"field": "requests", "max": str(self._max_batch)},
            )
        now = self._clock()
        program_id = self._program(items[0].program if items else "", "requests[0].program")
        for index, item in enumerate(items):
            if item.program and self._program(item.program, f"requests[{index}].program") != (
                program_id
            ):
                raise invalid_field(
                    f"requests[{index}].program", "every request of a batch names one program"
                )
        rule_set = self._schedule.in_effect(program_id, now)
        program = program_name(program_id)
        moment = Moment.of(now)
        decide = self._decide
        decided = [decide(item, rule_set, moment, index) for index, item in enumerate(items)]
        offer = self._recorder.offer
        skip = max(0, len(decided) - self._recorder.capacity)  # the rest would be dropped
        for index in range(skip, len(decided)):
            scope, result = decided[index]
            offer(now, program_id, scope, result, _payment_facts(items[index], scope))
        return service_pb2.EvaluateBatchResponse(
            decisions=[cached_decision_proto(result, program) for _, result in decided]
        )

    @override
    async def SimulateRuleSet(
        self, request: service_pb2.SimulateRuleSetRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.SimulateRuleSetResponse:
        self._operators.require(context.invocation_metadata(), READERS)
        return await self._simulation.run(request)

    @override
    async def PublishRuleSet(
        self, request: service_pb2.PublishRuleSetRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.PublishRuleSetResponse:
        operator = self._operators.require(context.invocation_metadata(), WRITERS)
        stored = await self._governance.publish(
            operator, request.document, request.program_document, request.reason
        )
        return service_pb2.PublishRuleSetResponse(
            rule_set=rule_set_to_proto(stored, active=self._is_active(stored.program_id,
                                                                        stored.version))
        )  # fmt: skip

    @override
    async def ActivateRuleSet(
        self, request: service_pb2.ActivateRuleSetRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ActivateRuleSetResponse:
        operator = self._operators.require(context.invocation_metadata(), WRITERS)
        version = parse_rule_set_name(request.name)
        effective = (
            facts.timestamp_fact(request.effective_time, "effective_time")
            if request.HasField("effective_time")
            else None
        )
        activation = await self._governance.activate(
            operator,
            version=version,
            effective_at=effective,
            reason=request.reason,
            request_id=request.request_id,
        )
        return service_pb2.ActivateRuleSetResponse(activation=activation_to_proto(activation))

    @override
    async def RollbackRuleSet(
        self, request: service_pb2.RollbackRuleSetRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.RollbackRuleSetResponse:
        operator = self._operators.require(context.invocation_metadata(), WRITERS)
        program_id = parse_program_name(request.program)
        version = parse_rule_set_name(request.rule_set, "rule_set") if request.rule_set else None
        effective = (
            facts.timestamp_fact(request.effective_time, "effective_time")
            if request.HasField("effective_time")
            else None
        )
        activation = await self._governance.rollback(
            operator,
            program_id=program_id,
            version=version,
            effective_at=effective,
            reason=request.reason,
            request_id=request.request_id,
        )
        return service_pb2.RollbackRuleSetResponse(activation=activation_to_proto(activation))

    def _is_active(self, program_id: str, version: str) -> bool:
        current = self._schedule.in_effect(program_id, self._clock())
        return current is not None and current.version == version

    @override
    async def GetRuleSet(
        self, request: service_pb2.GetRuleSetRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetRuleSetResponse:
        self._operators.require(context.invocation_metadata(), READERS)
        version = parse_rule_set_name(request.name)
        async with self._engine.connect() as conn:
            stored = await catalog.get_rule_set(conn, version)
        if stored is None:
            raise errors.rule_set_not_found(version)
        return service_pb2.GetRuleSetResponse(
            rule_set=rule_set_to_proto(stored, active=self._is_active(stored.program_id, version))
        )

    @override
    async def ListRuleSets(
        self, request: service_pb2.ListRuleSetsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListRuleSetsResponse:
        self._operators.require(context.invocation_metadata(), READERS)
        program_id = parse_program_name(request.program) if request.program else None
        limit = page_size(request.page_size)
        position = _rule_sets_after(request.page_token)
        async with self._engine.connect() as conn:
            rows = await catalog.list_rule_sets(
                conn, program_id=program_id, after=position, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = (
            _encode_token({"c": page[-1].created_at.isoformat(), "v": page[-1].version})
            if more
            else ""
        )
        return service_pb2.ListRuleSetsResponse(
            rule_sets=[
                rule_set_to_proto(
                    stored,
                    active=self._is_active(stored.program_id, stored.version),
                    with_document=False,
                )
                for stored in page
            ],
            next_page_token=token,
        )

    @override
    async def ListActivations(
        self, request: service_pb2.ListActivationsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListActivationsResponse:
        self._operators.require(context.invocation_metadata(), READERS)
        program_id = parse_program_name(request.program)
        limit = page_size(request.page_size)
        before_id = _activations_before(request.page_token)
        now = self._clock()
        async with self._engine.connect() as conn:
            page = await activations.of_program(
                conn, program_id, before_id=before_id, limit=limit + 1
            )
            history = await activations.of_program(conn, program_id)
        if not history and not self._schedule.knows(program_id):
            raise errors.program_not_found(program_id)
        more, page = len(page) > limit, page[:limit]
        current = activations.in_effect(history, now)
        return service_pb2.ListActivationsResponse(
            activations=[activation_to_proto(a) for a in page],
            next_page_token=_encode_token({"a": page[-1].activation_id}) if more else "",
            current=activation_to_proto(current).name if current is not None else "",
            read_time=to_timestamp(now),
        )


def _payment_facts(
    request: service_pb2.EvaluateRequest, scope: str
) -> resources_pb2.PaymentFacts | None:
    """What the recorder may keep: payment facts, never an applicant's."""
    return None if scope == _ENROLMENT else request.facts


def _encode_token(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


_MAX_ACTIVATION_ID = 2**63 - 1
"""activation_id is a bigint."""


def _decode_token(token: str, keys: frozenset[str]) -> dict[str, Any] | None:
    """The position in ``token``, a JSON object with exactly ``keys``; refused with
    INVALID_ARGUMENT (field page_token) when it is not one this method gave."""
    if not token:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error, RecursionError) as error:
        raise _bad_token() from error
    if not isinstance(position, dict) or position.keys() != keys:
        raise _bad_token()
    return position


def _bad_token() -> DomainError:
    return invalid_field("page_token", "page_token is not one this service gave")


def _rule_sets_after(token: str) -> tuple[datetime, str] | None:
    """The (created_at, version) of the last rule set a ListRuleSets page listed."""
    position = _decode_token(token, frozenset({"c", "v"}))
    if position is None:
        return None
    created, version = position["c"], position["v"]
    if not isinstance(created, str) or not isinstance(version, str):
        raise _bad_token()
    if re.fullmatch(RULE_SET_VERSION, version) is None:
        raise _bad_token()
    try:
        created_at = datetime.fromisoformat(created)
        if created_at.utcoffset() is None:
            raise _bad_token()
        return created_at.astimezone(UTC), version
    except (ValueError, OverflowError) as error:  # not a time; before year 1 in UTC
        raise _bad_token() from error


def _activations_before(token: str) -> int | None:
    """The activation_id below which the next ListActivations page starts."""
    position = _decode_token(token, frozenset({"a"}))
    if position is None:
        return None
    before = position["a"]
    if type(before) is not int or not 0 < before <= _MAX_ACTIVATION_ID:
        raise _bad_token()
    return before
