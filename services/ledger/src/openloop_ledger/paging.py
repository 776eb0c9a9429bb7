"""Opaque page tokens (AIP-158) for the ledger's paginated lists.

A token names the last journal position a page returned and a digest of the
filter it was made for, so a token replayed with another filter is refused
instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import hashlib
import json

from openloop_runtime.errors import DomainError, invalid_field

DEFAULT_PAGE_SIZE = 100
MAX_POSITION = 2**63 - 1
MAX_PAGE_SIZE = 8189


def page_size(requested: int) -> int:
    if requested < 0:
        raise invalid_field("page_size", "page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _digest(filter_key: str) -> str:
    return hashlib.sha256(filter_key.encode()).hexdigest()[:16]


def encode(last_position: int, filter_key: str) -> str:
    payload = json.dumps({"after": last_position, "filter": _digest(filter_key)})
    return base64.urlsafe_b64encode(payload.encode()).decode()


def decode(token: str, filter_key: str) -> int | None:
    """The last position the previous page returned; ``None`` for the first page."""
    if not token:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = payload["after"]
        digest = payload["filter"]
    except (ValueError, KeyError, TypeError) as error:
        raise _bad_token("page_token is not a token this ledger issued") from error
    if not isinstance(after, int) or not 0 <= after <= MAX_POSITION:
        raise _bad_token("page_token is not a token this ledger issued")
    if digest != _digest(filter_key):
        raise _bad_token("page_token was issued for a different filter")
    return after


def _bad_token(message: str) -> DomainError:
    return invalid_field("page_token", message)
