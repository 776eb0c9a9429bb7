"""The RulesService over gRPC. Evaluate is pure CPU on the in-memory rule set."""

from __future__ import annotations

import grpc
from typing_extensions import override

from openloop.rules.v1 import service_pb2, service_pb2_grpc
from openloop_rules import decision
from openloop_rules.convert import decision_to_proto
from openloop_rules.facts import payment_facts
from openloop_rules.registry import ActiveRuleSet
from openloop_rules.scopes import scope_name
from openloop_runtime.errors import invalid_field


class RulesServicer(service_pb2_grpc.RulesServiceServicer):
    def __init__(self, active: ActiveRuleSet) -> None:
        self._active = active

    @override
    async def Evaluate(
        self, request: service_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.EvaluateResponse:
        scope = scope_name(request.scope)
        if scope is None:
            raise invalid_field("scope", "scope must be set to a known scope")
        if not request.HasField("facts"):
            raise invalid_field("facts", "facts must be set")
        rule_set = self._active.current
        if rule_set is None:
            return service_pb2.EvaluateResponse(
                decision=decision_to_proto(decision.no_active_rule_set())
            )
        result = rule_set.evaluate(scope, payment_facts(request.facts))
        return service_pb2.EvaluateResponse(decision=decision_to_proto(result))
