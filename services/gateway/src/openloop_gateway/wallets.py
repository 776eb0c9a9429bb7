"""Wallet balances, readable only by the participant hosting the wallet.

The balance is read from the account identity names as the wallet's current one (a moved
wallet's earlier accounts are closed and hold nothing)."""

from __future__ import annotations

from openloop.gateway.v1 import resources_pb2
from openloop_gateway.accounts import wallet_account_id
from openloop_gateway.upstreams import Upstreams
from openloop_runtime.errors import ErrorReason, invalid_field, not_found
from openloop_runtime.money import thb
from openloop_runtime.names import format_name, parse_name

_SUFFIX = "/wallet"


async def get_wallet(upstreams: Upstreams, participant_id: str, name: str) -> resources_pb2.Wallet:
    if name.startswith("citizens/"):
        party = format_name("citizens", parse_name(name, "citizens", suffix=_SUFFIX))
        citizen = await upstreams.get_citizen(party)
        host, account_id = citizen.hosting_participant, citizen.wallet_account
    elif name.startswith("merchants/"):
        party = format_name("merchants", parse_name(name, "merchants", suffix=_SUFFIX))
        merchant = await upstreams.get_merchant(party)
        host, account_id = merchant.hosting_participant, merchant.wallet_account
    else:
        raise invalid_field(
            "name", "name must be 'citizens/{id}/wallet' or 'merchants/{id}/wallet'"
        )
    if host != format_name("participants", participant_id):
        # Like GetPayment: another participant's party is reported as absent, so its
        # existence is not learnt from the answer.
        reason = (
            ErrorReason.ERROR_REASON_CITIZEN_NOT_FOUND
            if party.startswith("citizens/")
            else ErrorReason.ERROR_REASON_MERCHANT_NOT_FOUND
        )
        raise not_found(reason, party)
    account = await upstreams.lookup_account(account_id or wallet_account_id(party))
    if account is None:
        raise not_found(ErrorReason.ERROR_REASON_ACCOUNT_NOT_FOUND, name)
    return resources_pb2.Wallet(
        name=name,
        balance=thb(account.credits_posted - account.debits_posted),
        hosting_participant=host,
    )
