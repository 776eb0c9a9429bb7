"""Server-chosen ids for citizens and merchants.

Opaque and random so that a resource name says nothing about the person or shop
behind it and cannot be enumerated; the one-letter prefix tells the kinds apart
in logs. 80 random bits make a collision practically impossible, and the primary
key would refuse one anyway.
"""

from __future__ import annotations

import secrets

_RANDOM_HEX_DIGITS = 20


def new_citizen_id() -> str:
    return "c" + secrets.token_hex(_RANDOM_HEX_DIGITS // 2)


def new_merchant_id() -> str:
    return "m" + secrets.token_hex(_RANDOM_HEX_DIGITS // 2)
