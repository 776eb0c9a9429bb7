"""AIP-158 pagination of lifetime positions: page sizes and opaque page tokens.

A token is the URL-safe base64 of the last participant id on the previous page;
positions are listed in participant order, so the next page starts after it. The
token carries nothing secret; it is opaque only so that clients do not build it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from openloop_runtime.errors import invalid_field
from openloop_runtime.names import is_valid_id

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PageRequest:
    size: int
    after: str | None
    """The last participant id already returned; ``None`` for the first page."""


def page_request(page_size: int, page_token: str) -> PageRequest:
    return PageRequest(
        size=page_size_of(page_size), after=decode_token(page_token) if page_token else None
    )


def page_size_of(page_size: int) -> int:
    """The size of a page of any of settlement's lists: 0 is the default, more than the
    maximum is the maximum (AIP-158), negative is refused."""
    if page_size < 0:
        raise invalid_field("page_size", "page_size must not be negative")
    return min(page_size, MAX_PAGE_SIZE) if page_size else DEFAULT_PAGE_SIZE


def encode_token(participant_id: str) -> str:
    return base64.urlsafe_b64encode(participant_id.encode()).decode("ascii")


def decode_token(token: str) -> str:
    try:
        participant_id = base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        participant_id = ""
    if not is_valid_id(participant_id):
        raise invalid_field("page_token", "page_token is not one this service returned")
    return participant_id
