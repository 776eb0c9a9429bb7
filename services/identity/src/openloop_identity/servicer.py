"""The IdentityService over gRPC: check the caller, validate, call the store, answer with
protos.

Each operator method first checks the caller's operator token against the roles
:mod:`openloop_identity.access` gives it, before it reads the request: a caller without a
token learns nothing, not even whether a name exists. The gateway's methods (``access.INTERNAL``)
take no token. Logs name resources ("citizens/c...") and the operator's subject, never
citizen IDs or personal data.

Every operator change, and every export of personal data, is also written to the audit trail
(:mod:`openloop_identity.store.audit`) by the store, in the change's own transaction: the
operator is handed down for that. ListAuditEvents reads it back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine
from typing_extensions import override

from openloop.identity.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_identity import access, audit_trail, convert, directory, requests
from openloop_identity.bulk import CitizenImport
from openloop_identity.domain.districts import DistrictTable
from openloop_identity.enrolment import Enrolment
from openloop_identity.lifecycle import ParticipantLifecycle
from openloop_identity.payments import PaymentVerification
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.privacy import Privacy
from openloop_identity.qr_amounts import check_qr_amount
from openloop_identity.store import (
    aliases,
    citizens,
    credentials,
    merchants,
    participants,
)
from openloop_identity.wallet_moves import WalletMoves
from openloop_runtime.money import positive_satang
from openloop_runtime.names import parse_name
from openloop_runtime.operators import Operator, OperatorVerifier
from openloop_runtime.timestamps import utc_now

_log = logging.getLogger(__name__)


class IdentityServicer(service_pb2_grpc.IdentityServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        tokenizer: CitizenIdTokenizer,
        districts: DistrictTable,
        enrolment: Enrolment,
        lifecycle: ParticipantLifecycle,
        participant_uri_prefix: str,
        privacy: Privacy,
        payments: PaymentVerification,
        imports: CitizenImport,
        wallet_moves: WalletMoves,
        operators: OperatorVerifier,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._operators = operators
        self._imports = imports
        self._wallet_moves = wallet_moves
        self._payments = payments
        self._privacy = privacy
        self._participant_uri_prefix = participant_uri_prefix
        self._engine = engine
        self._lifecycle = lifecycle
        self._enrolment = enrolment
        self._clock = clock
        # Reads run in autocommit: no BEGIN/ROLLBACK round trips around a single SELECT.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._tokenizer = tokenizer
        self._districts = districts

    def _operator(self, context: grpc.aio.ServicerContext, method: str) -> Operator:
        """The operator calling ``method``, if their token is good and their role may."""
        return self._operators.require(
            context.invocation_metadata(), access.OPERATOR_METHODS[method]
        )

    @override
    async def CreateParticipant(
        self, request: service_pb2.CreateParticipantRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CreateParticipantResponse:
        operator = self._operator(context, "CreateParticipant")
        new = requests.create_participant(request)
        participant = await participants.create_participant(self._engine, new, operator)
        _log.info(
            "participant created",
            extra={"participant": participant.participant_id, "operator": operator.subject},
        )
        return service_pb2.CreateParticipantResponse(
            participant=convert.participant_to_proto(participant)
        )

    @override
    async def GetParticipant(
        self, request: service_pb2.GetParticipantRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetParticipantResponse:
        self._operator(context, "GetParticipant")
        participant_id = parse_name(request.name, "participants")
        participant = await participants.get_participant(self._reader, participant_id)
        return service_pb2.GetParticipantResponse(
            participant=convert.participant_to_proto(participant)
        )

    @override
    async def SuspendParticipant(
        self, request: service_pb2.SuspendParticipantRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.SuspendParticipantResponse:
        operator = self._operator(context, "SuspendParticipant")
        participant = await self._lifecycle.suspend(
            parse_name(request.name, "participants"), operator
        )
        _log.info(
            "participant suspended",
            extra={"participant": participant.participant_id, "operator": operator.subject},
        )
        return service_pb2.SuspendParticipantResponse(
            participant=convert.participant_to_proto(participant)
        )

    @override
    async def ReactivateParticipant(
        self,
        request: service_pb2.ReactivateParticipantRequest,
        context: grpc.aio.ServicerContext,
    ) -> service_pb2.ReactivateParticipantResponse:
        operator = self._operator(context, "ReactivateParticipant")
        participant = await self._lifecycle.reactivate(
            parse_name(request.name, "participants"), operator
        )
        _log.info(
            "participant reactivated",
            extra={"participant": participant.participant_id, "operator": operator.subject},
        )
        return service_pb2.ReactivateParticipantResponse(
            participant=convert.participant_to_proto(participant)
        )

    @override
    async def CloseParticipant(
        self, request: service_pb2.CloseParticipantRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CloseParticipantResponse:
        operator = self._operator(context, "CloseParticipant")
        participant = await self._lifecycle.close(
            parse_name(request.name, "participants"), operator
        )
        _log.info(
            "participant closed",
            extra={"participant": participant.participant_id, "operator": operator.subject},
        )
        return service_pb2.CloseParticipantResponse(
            participant=convert.participant_to_proto(participant)
        )

    @override
    async def CreateParticipantCredential(
        self,
        request: service_pb2.CreateParticipantCredentialRequest,
        context: grpc.aio.ServicerContext,
    ) -> service_pb2.CreateParticipantCredentialResponse:
        operator = self._operator(context, "CreateParticipantCredential")
        new = requests.create_credential(
            request, now=self._clock(), participant_uri_prefix=self._participant_uri_prefix
        )
        credential = await credentials.create_credential(self._engine, new, operator)
        _log.info(
            "participant credential added",
            extra={
                "participant": credential.participant_id,
                "credential": credential.credential_id,
                "operator": operator.subject,
            },
        )
        return service_pb2.CreateParticipantCredentialResponse(
            credential=convert.credential_to_proto(credential)
        )

    @override
    async def ListParticipantCredentials(
        self,
        request: service_pb2.ListParticipantCredentialsRequest,
        context: grpc.aio.ServicerContext,
    ) -> service_pb2.ListParticipantCredentialsResponse:
        participant_id = parse_name(request.parent, "participants", field="parent")
        found = await credentials.list_credentials(self._reader, participant_id)
        return service_pb2.ListParticipantCredentialsResponse(
            credentials=[convert.credential_to_proto(c) for c in found]
        )

    @override
    async def RevokeParticipantCredential(
        self,
        request: service_pb2.RevokeParticipantCredentialRequest,
        context: grpc.aio.ServicerContext,
    ) -> service_pb2.RevokeParticipantCredentialResponse:
        operator = self._operator(context, "RevokeParticipantCredential")
        participant_id, credential_id = requests.credential_name(request.name)
        credential = await credentials.revoke_credential(
            self._engine, participant_id, credential_id, self._clock(), operator
        )
        _log.info(
            "participant credential revoked",
            extra={
                "participant": participant_id,
                "credential": credential_id,
                "operator": operator.subject,
            },
        )
        return service_pb2.RevokeParticipantCredentialResponse(
            credential=convert.credential_to_proto(credential)
        )

    @override
    async def EnrollCitizen(
        self, request: service_pb2.EnrollCitizenRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.EnrollCitizenResponse:
        operator = self._operator(context, "EnrollCitizen")
        new = requests.enroll_citizen(request, self._tokenizer, self._districts, now=self._clock())
        citizen = await self._enrolment.enroll(new, operator)
        _log.info(
            "citizen enrolled", extra={"citizen": citizen.citizen_id, "operator": operator.subject}
        )
        return service_pb2.EnrollCitizenResponse(citizen=convert.citizen_to_proto(citizen))

    @override
    async def ImportCitizens(
        self,
        request_iterator: AsyncIterator[service_pb2.ImportCitizensRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[service_pb2.ImportCitizensResponse]:
        # Checked before the first batch is read: nothing of a refused stream is looked at.
        operator = self._operator(context, "ImportCitizens")
        _log.info("citizen import started", extra={"operator": operator.subject})

        async def batches() -> AsyncIterator[Sequence[service_pb2.CitizenRecord]]:
            async for request in request_iterator:
                yield request.citizens

        async for results in self._imports.import_stream(batches(), operator):
            yield service_pb2.ImportCitizensResponse(results=results)

    @override
    async def GetCitizen(
        self, request: service_pb2.GetCitizenRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetCitizenResponse:
        citizen_id = parse_name(request.name, "citizens")
        citizen = await citizens.get_citizen(self._reader, citizen_id)
        return service_pb2.GetCitizenResponse(citizen=convert.citizen_to_proto(citizen))

    @override
    async def ExportCitizenData(
        self, request: service_pb2.ExportCitizenDataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ExportCitizenDataResponse:
        operator = self._operator(context, "ExportCitizenData")
        citizen_id = parse_name(request.name, "citizens")
        acting = parse_name(request.acting_participant, "participants", field="acting_participant")
        citizen, personal = await self._privacy.export(citizen_id, acting, operator)
        # The trail of who opened a citizen's data, and for which bank: names only, never
        # the data itself.
        _log.info(
            "citizen data exported",
            extra={"citizen": citizen_id, "participant": acting, "operator": operator.subject},
        )
        response = service_pb2.ExportCitizenDataResponse(citizen=convert.citizen_to_proto(citizen))
        if personal is not None:
            response.personal_data.CopyFrom(resources_pb2.PersonalData(**personal))
        return response

    @override
    async def EraseCitizenData(
        self, request: service_pb2.EraseCitizenDataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.EraseCitizenDataResponse:
        operator = self._operator(context, "EraseCitizenData")
        citizen_id = parse_name(request.name, "citizens")
        acting = parse_name(request.acting_participant, "participants", field="acting_participant")
        citizen = await self._privacy.erase(citizen_id, acting, operator)
        _log.info(
            "citizen data erased",
            extra={"citizen": citizen_id, "participant": acting, "operator": operator.subject},
        )
        return service_pb2.EraseCitizenDataResponse(citizen=convert.citizen_to_proto(citizen))

    @override
    async def LookupCitizen(
        self, request: service_pb2.LookupCitizenRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.LookupCitizenResponse:
        self._operator(context, "LookupCitizen")
        token = self._tokenizer.token(requests.citizen_id(request.citizen_id))
        citizen = await citizens.lookup_citizen(self._reader, token)
        return service_pb2.LookupCitizenResponse(citizen=convert.citizen_to_proto(citizen))

    @override
    async def CreateMerchant(
        self, request: service_pb2.CreateMerchantRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CreateMerchantResponse:
        operator = self._operator(context, "CreateMerchant")
        new = requests.create_merchant(request, self._tokenizer, self._districts)
        merchant = await merchants.create_merchant(self._engine, new, operator)
        _log.info(
            "merchant created",
            extra={"merchant": merchant.merchant_id, "operator": operator.subject},
        )
        return service_pb2.CreateMerchantResponse(merchant=convert.merchant_to_proto(merchant))

    @override
    async def GetMerchant(
        self, request: service_pb2.GetMerchantRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetMerchantResponse:
        merchant_id = parse_name(request.name, "merchants")
        merchant = await merchants.get_merchant(self._reader, merchant_id)
        return service_pb2.GetMerchantResponse(merchant=convert.merchant_to_proto(merchant))

    @override
    async def ResolveAlias(
        self, request: service_pb2.ResolveAliasRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ResolveAliasResponse:
        self._operator(context, "ResolveAlias")
        query = directory.alias_query(request, self._tokenizer)
        party = await aliases.resolve(self._reader, query.alias)
        return convert.resolved_alias_to_proto(party, query.qr_amount_satang)

    @override
    async def GenerateMerchantQr(
        self, request: service_pb2.GenerateMerchantQrRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GenerateMerchantQrResponse:
        self._operator(context, "GenerateMerchantQr")
        merchant_id = parse_name(request.name, "merchants")
        amount = positive_satang(request.amount) if request.HasField("amount") else None
        merchant = await merchants.get_merchant(self._reader, merchant_id)
        return service_pb2.GenerateMerchantQrResponse(
            payload=directory.merchant_qr(merchant, amount)
        )

    @override
    async def VerifyPaymentParties(
        self, request: service_pb2.VerifyPaymentPartiesRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.VerifyPaymentPartiesResponse:
        acting = parse_name(request.acting_participant, "participants", field="acting_participant")
        payer = parse_name(request.payer, "citizens", field="payer")
        binding = requests.request_binding(request.request_binding)
        amount = requests.payment_amount(request)
        if request.payee or not request.HasField("payee_alias"):
            payee = parse_name(request.payee, "merchants", field="payee")
        else:
            query = directory.alias_query(request.payee_alias, self._tokenizer)
            check_qr_amount(query, amount)
            payee = await self._payments.payee_of(query.alias)
        verified = await self._payments.verify(
            acting_participant_id=acting,
            payer_id=payer,
            payee_id=payee,
            authorization=request.payer_authorization,
            amount=amount,
            request_binding=binding,
        )
        return service_pb2.VerifyPaymentPartiesResponse(
            payer=convert.party_facts_to_proto(verified.payer),
            payee=convert.party_facts_to_proto(verified.payee),
            payer_wallet_account=verified.payer_wallet_account,
            payee_wallet_account=verified.payee_wallet_account,
        )

    @override
    async def BeginWalletMove(
        self, request: service_pb2.BeginWalletMoveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.BeginWalletMoveResponse:
        move = await self._wallet_moves.begin(requests.begin_wallet_move(request))
        _log.info(
            "wallet move begun",
            extra={"citizen": move.citizen_id, "wallet_move": move.wallet_move_id},
        )
        return service_pb2.BeginWalletMoveResponse(wallet_move=convert.wallet_move_to_proto(move))

    @override
    async def CompleteWalletMove(
        self, request: service_pb2.CompleteWalletMoveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.CompleteWalletMoveResponse:
        move = await self._wallet_moves.complete(*requests.wallet_move_name(request.name))
        _log.info(
            "wallet move completed",
            extra={"citizen": move.citizen_id, "wallet_move": move.wallet_move_id},
        )
        return service_pb2.CompleteWalletMoveResponse(
            wallet_move=convert.wallet_move_to_proto(move)
        )

    @override
    async def GetWalletMove(
        self, request: service_pb2.GetWalletMoveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.GetWalletMoveResponse:
        move = await self._wallet_moves.get(*requests.wallet_move_name(request.name))
        return service_pb2.GetWalletMoveResponse(wallet_move=convert.wallet_move_to_proto(move))

    @override
    async def ListAuditEvents(
        self, request: service_pb2.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ListAuditEventsResponse:
        self._operator(context, "ListAuditEvents")
        return await audit_trail.list_events(self._reader, request)
