"""Typed calls to the services a payment passes through, each with a deadline.

Calls wait for their channel to be ready (within the deadline) instead of failing
at once while the channel backs off after an upstream restart: a service that is
back answers the next payment, and one that stays down costs one deadline.

A failed call becomes a DomainError (openloop_runtime.clients.upstream_error):
client mistakes pass through with the upstream's ErrorInfo, outages become
UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from openloop.common.v1 import money_pb2, party_pb2
from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.identity.v1 import service_pb2_grpc as identity_grpc
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop.ledger.v1 import service_pb2_grpc as ledger_grpc
from openloop.rules.v1 import resources_pb2 as rules_resources
from openloop.rules.v1 import service_pb2 as rules_pb2
from openloop.rules.v1 import service_pb2_grpc as rules_grpc
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_gateway.config import GatewaySettings
from openloop_gateway.ledger_streams import TransferStreams
from openloop_runtime.clients import open_channel, upstream_error
from openloop_runtime.money import thb


@dataclass(frozen=True)
class PaymentParties:
    payer: party_pb2.PartyFacts
    payee: party_pb2.PartyFacts
    payer_account: str
    """The ledger account holding the payer's wallet now."""
    payee_account: str


class Upstreams:
    def __init__(
        self,
        identity: grpc.aio.Channel,
        rules: grpc.aio.Channel,
        ledger: grpc.aio.Channel,
        settlement: grpc.aio.Channel,
        timeout: float,
    ) -> None:
        self._identity = identity_grpc.IdentityServiceStub(identity)
        self._rules = rules_grpc.RulesServiceStub(rules)
        self._ledger = ledger_grpc.LedgerServiceStub(ledger)
        self._settlement = settlement_grpc.SettlementServiceStub(settlement)
        self._transfer_streams = TransferStreams(ledger, timeout)
        self._timeout = timeout

    async def close(self) -> None:
        await self._transfer_streams.close()

    async def verify_parties(
        self,
        participant: str,
        payer: str,
        payee: str,
        authorization: str = "",
        request_binding: str = "",
        *,
        amount: money_pb2.Money | None = None,
    ) -> PaymentParties:
        """Both parties' facts, once identity has verified and spent the payer's
        authorisation of paying ``amount`` to ``payee`` (the token must name both)."""
        try:
            reply = await self._identity.VerifyPaymentParties(
                identity_pb2.VerifyPaymentPartiesRequest(
                    acting_participant=participant,
                    payer=payer,
                    payee=payee,
                    payer_authorization=authorization,
                    request_binding=request_binding,
                    amount=amount,
                ),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("identity", error) from error
        return PaymentParties(
            reply.payer, reply.payee, reply.payer_wallet_account, reply.payee_wallet_account
        )

    async def get_citizen(self, name: str) -> identity_resources.Citizen:
        try:
            reply = await self._identity.GetCitizen(
                identity_pb2.GetCitizenRequest(name=name),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("identity", error) from error
        return reply.citizen

    async def get_merchant(self, name: str) -> identity_resources.Merchant:
        try:
            reply = await self._identity.GetMerchant(
                identity_pb2.GetMerchantRequest(name=name),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("identity", error) from error
        return reply.merchant

    async def evaluate(
        self, scope: rules_resources.Scope.ValueType, facts: rules_resources.PaymentFacts
    ) -> rules_resources.Decision:
        try:
            reply = await self._rules.Evaluate(
                rules_pb2.EvaluateRequest(scope=scope, facts=facts),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("rules", error) from error
        return reply.decision

    async def create_transfer(
        self, transfer: ledger_resources.Transfer
    ) -> ledger_resources.CreateTransferResult.ValueType:
        """A payment's one transfer, sent on a stream (:mod:`openloop_gateway.ledger_streams`)."""
        (result,) = await self._transfer_streams.create_transfers([transfer])
        return result

    async def lookup_account(self, account_id: str) -> ledger_resources.Account | None:
        try:
            reply = await self._ledger.LookupAccounts(
                ledger_pb2.LookupAccountsRequest(ids=[account_id]),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("ledger", error) from error
        return reply.accounts[0] if reply.accounts else None

    async def participant_credentials(
        self, participant: str
    ) -> list[identity_resources.ParticipantCredential]:
        """The participant's registered credentials; none for a participant identity does not
        know."""
        try:
            reply = await self._identity.ListParticipantCredentials(
                identity_pb2.ListParticipantCredentialsRequest(parent=participant),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return []
            raise upstream_error("identity", error) from error
        return list(reply.credentials)

    async def begin_wallet_move(
        self, citizen: str, wallet_move_id: str, to_participant: str, assertion: str
    ) -> identity_resources.WalletMove:
        try:
            reply = await self._identity.BeginWalletMove(
                identity_pb2.BeginWalletMoveRequest(
                    parent=citizen,
                    wallet_move_id=wallet_move_id,
                    to_participant=to_participant,
                    identity_assertion=assertion,
                ),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("identity", error) from error
        return reply.wallet_move

    async def find_wallet_move(self, name: str) -> identity_resources.WalletMove | None:
        """Identity's record of a move, or None if identity never began it."""
        try:
            reply = await self._identity.GetWalletMove(
                identity_pb2.GetWalletMoveRequest(name=name),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise upstream_error("identity", error) from error
        return reply.wallet_move

    async def complete_wallet_move(self, name: str) -> identity_resources.WalletMove:
        try:
            reply = await self._identity.CompleteWalletMove(
                identity_pb2.CompleteWalletMoveRequest(name=name),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("identity", error) from error
        return reply.wallet_move

    async def create_account(
        self, account: ledger_resources.Account
    ) -> ledger_resources.CreateAccountResult.ValueType:
        try:
            reply = await self._ledger.CreateAccounts(
                ledger_pb2.CreateAccountsRequest(accounts=[account]),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("ledger", error) from error
        return reply.results[0]

    async def create_transfers(
        self, transfers: list[ledger_resources.Transfer]
    ) -> list[ledger_resources.CreateTransferResult.ValueType]:
        try:
            reply = await self._ledger.CreateTransfers(
                ledger_pb2.CreateTransfersRequest(transfers=transfers),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("ledger", error) from error
        return list(reply.results)

    async def lookup_transfer(self, transfer_id: str) -> ledger_resources.Transfer | None:
        try:
            reply = await self._ledger.LookupTransfers(
                ledger_pb2.LookupTransfersRequest(ids=[transfer_id]),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("ledger", error) from error
        return reply.transfers[0] if reply.transfers else None

    async def record_transfer(
        self, transfer_id: str, debit_participant: str, credit_participant: str, satang: int
    ) -> None:
        try:
            await self._settlement.RecordTransfer(
                settlement_pb2.RecordTransferRequest(
                    transfer_id=transfer_id,
                    debit_participant=debit_participant,
                    credit_participant=credit_participant,
                    amount=thb(satang),
                ),
                timeout=self._timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            raise upstream_error("settlement", error) from error


@asynccontextmanager
async def connect_upstreams(settings: GatewaySettings) -> AsyncIterator[Upstreams]:
    """One channel per upstream for the life of the process."""
    identity = open_channel(settings.identity_target)
    rules = open_channel(settings.rules_target)
    ledger = open_channel(settings.ledger_target)
    settlement = open_channel(settings.settlement_target)
    channels = (identity, rules, ledger, settlement)
    upstreams = Upstreams(
        identity, rules, ledger, settlement, timeout=settings.upstream_timeout_seconds
    )
    try:
        yield upstreams
    finally:
        await upstreams.close()
        for channel in channels:
            await channel.close()
